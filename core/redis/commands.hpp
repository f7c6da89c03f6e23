// SPDX-License-Identifier: MIT
// Internal to core/redis/: the commands both the blocking and the non-blocking paths send, built
// once here so that both speak to Redis identically.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../backend.hpp"
#include "../url.hpp"

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

// Appends the command in RESP (an array of bulk strings), as redisFormatCommandArgv would
// format it, without its allocation.
void append_resp(std::string& out, const command& cmd);

// AUTH and SELECT to send first on a new connection (none, one or both).
std::vector<command> connection_setup(const backend_url& url, std::string& db_text);

// SET key value PX ttl_ms; ttl_text must outlive the command.
command set_command(std::string_view key, std::string_view value, std::int64_t ttl_ms, std::string& ttl_text);

// DEL key...
command del_command(const std::vector<std::string_view>& keys);

// GET key and PTTL key: a hit in one round trip when pipelined.
command get_command(std::string_view key);
command pttl_command(std::string_view key);
// MGET key... (one slot on a cluster: the caller's concern)
command mget_command(const std::vector<std::string_view>& keys);

// The lookup from the GET and PTTL replies. NIL is a miss, and so is WRONGTYPE (a value of another
// type that someone else wrote there). Throws backend_error if PTTL failed.
lookup_result parse_lookup(const redisReply* value, const redisReply* pttl);

// SET lock_key token NX PX ttl_ms, and the release that deletes the lock only if it is still ours.
command lock_command(std::string_view lock_key, std::string_view token, std::string_view ttl_text);
command unlock_command(std::string_view lock_key, std::string_view token);

// Whether an error reply means the server cannot serve anyone now (LOADING, BUSY, CLUSTERDOWN,
// MASTERDOWN, TRYAGAIN, READONLY after a failover, NOAUTH/WRONGPASS): an outage for the breaker.
// Any other error reply (WRONGTYPE, ERR ..., NOPERM, OOM) refuses one request of a server that is up.
bool is_outage_reply(std::string_view error_text);

// Leases (backend.hpp): SET key placeholder NX PX lease_ms, pipelined with GET and PTTL so a
// refusal also tells what the key holds (one round trip); lease_from reads the three replies.
// The fenced store is a script (EVAL, so the ACL needs EVAL): SET key value PX ttl only while
// GET key is still the placeholder; 1 stored, 0 refused. The release is unlock_command.
lease_result lease_from(const redisReply* set_nx, const redisReply* value, const redisReply* pttl);
command store_leased_command(std::string_view key, std::string_view placeholder, std::string_view value,
                             std::string_view ttl_text);

// PTTL reply -> remaining ms for a key that GET just found. -1 (no expiry: written by someone else)
// and -2 (expired between the two commands) map to 0 and 1 so the hit is still served.
std::int64_t remaining_ttl_ms(const redisReply* pttl);

}  // namespace httpcache::detail
