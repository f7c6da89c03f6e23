// SPDX-License-Identifier: MIT
// Backend URLs: memory://, lmdb:// (a directory shared by the processes of one host),
// redis:// and rediss:// (TLS), redis+cluster://, redis+sentinel://, unix://. Parsing is separate from connecting so that it can
// be tested (and fuzzed) alone, and so error messages never carry credentials.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace httpcache {

enum class url_scheme { memory, lmdb, redis, unix_socket, redis_cluster, redis_sentinel };

// TLS (the rediss schemes), named as redis-py names them. Files and names empty and flags unset
// mean "not given": the C options or the defaults fill them (fill_from).
struct tls_settings {
  bool enabled = false;
  std::string ca_certs;         // PEM file of trusted CAs; neither this nor ca_path: the system's
  std::string ca_path;          // directory of hashed CA certificates
  std::string certfile;         // client certificate chain (mutual TLS), with keyfile
  std::string keyfile;
  std::string server_hostname;  // checked in the certificate and sent as SNI instead of the host
  std::optional<bool> verify_peer;     // ssl_cert_reqs: required (default) | none
  std::optional<bool> check_hostname;  // ssl_check_hostname: true (default) | false

  bool verify() const noexcept { return verify_peer.value_or(true); }
  bool check_hostname_enabled() const noexcept { return verify() && check_hostname.value_or(true); }
  void fill_from(const tls_settings& defaults);
};

struct backend_url {
  url_scheme scheme = url_scheme::memory;
  std::string host;         // redis:// (redis+cluster://, redis+sentinel://: the first seed)
  int port = 6379;          // redis://
  // redis+cluster://: the seed nodes; redis+sentinel://: the sentinels; host and port, in order.
  std::vector<std::pair<std::string, int>> seeds;
  std::string service_name;  // redis+sentinel://: the master's name at the sentinels
  std::string socket_path;  // unix://
  std::string lmdb_path;    // lmdb://: the store's directory, absolute
  std::uint64_t lmdb_max_bytes = 256ull << 20;  // lmdb://...?max_bytes=: what its entries occupy, at most
  std::string user;         // percent-decoded; empty = default user
  std::string password;     // percent-decoded; empty = no AUTH
  int db = 0;
  std::uint32_t connect_timeout_ms = 0;  // 0 = not given in the URL
  std::uint32_t command_timeout_ms = 0;
  tls_settings tls;

  // The URL with the password replaced by "***": the only form that appears in messages.
  std::string redacted() const;
};

// Throws error(errc::invalid) with a message that names the problem but never the password.
backend_url parse_url(std::string_view url);

}  // namespace httpcache
