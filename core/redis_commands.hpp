// SPDX-License-Identifier: MIT
// Internal to core/redis_*.cpp: the commands both the blocking and the non-blocking paths send,
// built once here so that both speak to Redis identically.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "url.hpp"

namespace httpcache::detail {

// An argv for redis*CommandArgv that borrows its strings; the owner must outlive the call.
struct command {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  void add(std::string_view s) {
    argv.push_back(s.data());
    lens.push_back(s.size());
  }
  int argc() const { return static_cast<int>(argv.size()); }
  // hiredis 0.14 takes `const char **` although it never writes through it.
  const char** argv_data() const { return const_cast<const char**>(argv.data()); }
};

// AUTH and SELECT to send first on a new connection (none, one or both).
std::vector<command> connection_setup(const backend_url& url, std::string& db_text);

// SET key value PX ttl_ms; ttl_text must outlive the command.
command set_command(std::string_view key, std::string_view value, std::int64_t ttl_ms, std::string& ttl_text);

// DEL key...
command del_command(const std::vector<std::string_view>& keys);

// PTTL reply -> remaining ms for a key that GET just found. -1 (no expiry: written by someone else)
// and -2 (expired between the two commands) map to 0 and 1 so the hit is still served.
std::int64_t remaining_ttl_ms(const redisReply* pttl);

}  // namespace httpcache::detail
