// SPDX-License-Identifier: MIT
// Backend URLs: memory://, redis://, unix://. Parsing is separate from connecting so that it can
// be tested (and fuzzed) alone, and so error messages never carry credentials.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace httpcache {

enum class url_scheme { memory, redis, unix_socket, redis_cluster };

struct backend_url {
  url_scheme scheme = url_scheme::memory;
  std::string host;         // redis:// (redis+cluster://: the first seed)
  int port = 6379;          // redis://
  // redis+cluster://: the seed nodes, host and port, in the order given.
  std::vector<std::pair<std::string, int>> seeds;
  std::string socket_path;  // unix://
  std::string user;         // percent-decoded; empty = default user
  std::string password;     // percent-decoded; empty = no AUTH
  int db = 0;
  std::uint32_t connect_timeout_ms = 0;  // 0 = not given in the URL
  std::uint32_t command_timeout_ms = 0;

  // The URL with the password replaced by "***": the only form that appears in messages.
  std::string redacted() const;
};

// Throws error(errc::invalid) with a message that names the problem but never the password.
backend_url parse_url(std::string_view url);

}  // namespace httpcache
