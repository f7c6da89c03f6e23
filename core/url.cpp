// SPDX-License-Identifier: MIT
#include "url.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include "error.hpp"

namespace httpcache {

namespace {

[[noreturn]] void bad_url(const std::string& why) { throw error(errc::invalid, "bad cache URL: " + why); }

template <typename Int>
Int parse_number(std::string_view text, Int min, Int max, const char* what) {
  Int value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    bad_url(fmt::format("{} must be a number from {} to {}", what, min, max));
  return value;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view in, const char* what) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
    int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) bad_url(fmt::format("bad percent-escape in the {}", what));
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool parse_flag(std::string_view value, std::string_view name, std::string_view yes, std::string_view no) {
  if (value == yes) return true;
  if (value == no) return false;
  bad_url(fmt::format("{} must be {} or {}", name, yes, no));
}

void apply_tls(backend_url& u, std::string_view name, std::string_view value) {
  if (!u.tls.enabled) bad_url(fmt::format("{} needs a TLS URL (rediss://, rediss+cluster://, rediss+sentinel://)", name));
  tls_settings& t = u.tls;
  if (name == "ssl_cert_reqs") t.verify_peer = parse_flag(value, name, "required", "none");
  else if (name == "ssl_check_hostname") t.check_hostname = parse_flag(value, name, "true", "false");
  else if (name == "ssl_ca_certs") t.ca_certs = percent_decode(value, "ssl_ca_certs");
  else if (name == "ssl_ca_path") t.ca_path = percent_decode(value, "ssl_ca_path");
  else if (name == "ssl_certfile") t.certfile = percent_decode(value, "ssl_certfile");
  else if (name == "ssl_keyfile") t.keyfile = percent_decode(value, "ssl_keyfile");
  else if (name == "ssl_server_hostname") t.server_hostname = percent_decode(value, "ssl_server_hostname");
  else bad_url(fmt::format("unknown query parameter '{}'", name));
  for (const std::string* s : {&t.ca_certs, &t.ca_path, &t.certfile, &t.keyfile, &t.server_hostname})
    if (s->find('\0') != std::string::npos) bad_url(fmt::format("{} contains a NUL byte", name));
}

// Cuts `?query` off rest; the query, empty when there is none.
std::string_view split_query(std::string_view& rest) {
  auto q = rest.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = rest.substr(q + 1);
  rest = rest.substr(0, q);
  return query;
}

// Calls apply(name, value) for each `name=value` of `a=1&b=2`.
template <typename Apply>
void for_each_param(std::string_view query, Apply&& apply) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) bad_url(fmt::format("query parameter '{}' has no value", pair));
    apply(pair.substr(0, eq), pair.substr(eq + 1));
  }
}

// Applies `a=1&b=2`; `allow_db` is true for unix:// where the path leaves no room for /db.
void apply_query(backend_url& u, std::string_view query, bool allow_db) {
  for_each_param(query, [&](std::string_view name, std::string_view value) {
    if (name == "connect_timeout_ms")
      u.connect_timeout_ms = parse_number<std::uint32_t>(value, 1, 600000, "connect_timeout_ms");
    else if (name == "command_timeout_ms")
      u.command_timeout_ms = parse_number<std::uint32_t>(value, 1, 600000, "command_timeout_ms");
    else if (name == "db" && allow_db)
      u.db = parse_number<int>(value, 0, 1 << 20, "db");
    else if (name.substr(0, 4) == "ssl_")
      apply_tls(u, name, value);
    else
      bad_url(fmt::format("unknown query parameter '{}'", name));
  });
}

std::pair<std::string, int> parse_host_port(std::string_view hostport, int default_port) {
  std::string host;
  int port = default_port;
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string_view::npos) bad_url("unterminated IPv6 address");
    host.assign(hostport.substr(1, close - 1));
    hostport = hostport.substr(close + 1);
    if (!hostport.empty()) {
      if (hostport.front() != ':') bad_url("junk after IPv6 address");
      port = parse_number<int>(hostport.substr(1), 1, 65535, "port");
    }
  } else {
    auto colon = hostport.rfind(':');
    host.assign(hostport.substr(0, colon));
    if (colon != std::string_view::npos) port = parse_number<int>(hostport.substr(colon + 1), 1, 65535, "port");
  }
  if (host.empty()) bad_url("URL has no host");
  for (char c : host) {
    if (c <= ' ' || c == '/' || c == '?' || c == '#' || c == '@' || c == ',' || static_cast<unsigned char>(c) >= 0x7f)
      bad_url("host name contains an invalid character");
  }
  return {std::move(host), port};
}

void parse_redis(backend_url& u, std::string_view rest) {
  const std::string_view query = split_query(rest);
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      // redis://secret@host: a lone userinfo is the password, as redis-py and redis-cli read it.
      u.password = percent_decode(userinfo, "password");
    } else {
      u.user = percent_decode(userinfo.substr(0, colon), "user name");
      u.password = percent_decode(userinfo.substr(colon + 1), "password");
    }
  }
  // One host:port, or for a cluster a comma-separated list of seed nodes (sentinels: of sentinels).
  const bool sentinel = u.scheme == url_scheme::redis_sentinel;
  while (true) {
    auto comma = rest.find(',');
    if (comma != std::string_view::npos && u.scheme == url_scheme::redis)
      bad_url("redis:// takes one host (use redis+cluster:// or redis+sentinel:// for several)");
    auto [host, port] = parse_host_port(rest.substr(0, comma), sentinel ? 26379 : 6379);
    u.seeds.emplace_back(std::move(host), port);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  u.host = u.seeds.front().first;
  u.port = u.seeds.front().second;
  if (sentinel) {  // /service_name[/db]
    auto slash = path.find('/');
    u.service_name = percent_decode(path.substr(0, slash), "service name");
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (u.service_name.empty()) bad_url("redis+sentinel:// needs the master's service name (/service_name)");
    for (char c : u.service_name)
      if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
        bad_url("the service name contains an invalid character");
  }
  if (!path.empty()) u.db = parse_number<int>(path, 0, 1 << 20, "database number");
  if (u.scheme == url_scheme::redis_cluster && u.db != 0) bad_url("Redis Cluster has only database 0");
  apply_query(u, query, false);
}

void parse_unix(backend_url& u, std::string_view rest) {
  const std::string_view query = split_query(rest);
  if (rest.empty() || rest.front() != '/') bad_url("unix:// needs an absolute socket path (unix:///path/to.sock)");
  if (rest.size() > 107) bad_url("unix socket path is longer than 107 bytes");
  u.socket_path = percent_decode(rest, "socket path");
  if (u.socket_path.find('\0') != std::string::npos) bad_url("unix socket path contains a NUL byte");
  apply_query(u, query, true);
}

// lmdb:///abs/dir[?max_bytes=N]
void parse_lmdb(backend_url& u, std::string_view rest) {
  const std::string_view query = split_query(rest);
  if (rest.empty() || rest.front() != '/') bad_url("lmdb:// needs an absolute directory (lmdb:///var/cache/app)");
  u.lmdb_path = percent_decode(rest, "lmdb directory");
  if (u.lmdb_path.find('\0') != std::string::npos) bad_url("the lmdb directory contains a NUL byte");
  if (u.lmdb_path.size() > 4000) bad_url("the lmdb directory is longer than 4000 bytes");
  while (u.lmdb_path.size() > 1 && u.lmdb_path.back() == '/') u.lmdb_path.pop_back();
  if (u.lmdb_path == "/") bad_url("lmdb:// needs a directory of its own, not /");
#ifdef _WIN32
  // lmdb:///C:/cache/app: a drive letter, as file:// URLs write it. A path without one would be
  // relative to the current drive.
  const std::string& p = u.lmdb_path;
  if (p.size() < 4 || !std::isalpha(static_cast<unsigned char>(p[1])) || p[2] != ':' || p[3] != '/')
    bad_url("lmdb:// on Windows needs a drive and a directory (lmdb:///C:/cache/app)");
  u.lmdb_path.erase(0, 1);
#endif
  for_each_param(query, [&](std::string_view name, std::string_view value) {
    if (name != "max_bytes") bad_url(fmt::format("unknown query parameter '{}' (lmdb:// takes max_bytes)", name));
    // 1 MiB to 1 TiB: the map (twice that) must fit the address space.
    u.lmdb_max_bytes = parse_number<std::uint64_t>(value, 1ull << 20, 1ull << 40, "max_bytes");
  });
}

}  // namespace

backend_url parse_url(std::string_view url) {
  backend_url u;
  if (url.empty()) return u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) bad_url("missing '://' (expected memory://, lmdb://, redis://, rediss://, redis+cluster://, redis+sentinel:// or unix://)");
  std::string_view scheme = url.substr(0, sep), rest = url.substr(sep + 3);
  if (scheme == "memory") {
    if (!rest.empty()) bad_url("memory:// takes no host, path or options");
    return u;
  }
  const bool tls = scheme.substr(0, 6) == "rediss";
  const std::string_view plain = tls ? scheme.substr(6) : scheme.substr(0, 5) == "redis" ? scheme.substr(5) : "?";
  if (plain.empty() || plain == "+cluster" || plain == "+sentinel") {
    u.scheme = plain.empty() ? url_scheme::redis : plain == "+cluster" ? url_scheme::redis_cluster : url_scheme::redis_sentinel;
    u.tls.enabled = tls;
    parse_redis(u, rest);
    return u;
  }
  if (scheme == "unix") {
    u.scheme = url_scheme::unix_socket;
    parse_unix(u, rest);
    return u;
  }
  if (scheme == "lmdb") {
    u.scheme = url_scheme::lmdb;
    parse_lmdb(u, rest);
    return u;
  }
  std::string shown(scheme.substr(0, 32));
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  bad_url(fmt::format("unknown scheme '{}' (expected memory, lmdb, redis, rediss, redis+cluster, rediss+cluster, redis+sentinel, "
                    "rediss+sentinel or unix)", shown));
}

std::string backend_url::redacted() const {
  switch (scheme) {
    case url_scheme::memory:
      return "memory://";
    case url_scheme::lmdb:
      return fmt::format("lmdb://{}?max_bytes={}", lmdb_path, lmdb_max_bytes);
    case url_scheme::unix_socket:
      return fmt::format("unix://{}?db={}", socket_path, db);
    case url_scheme::redis:
    case url_scheme::redis_cluster:
    case url_scheme::redis_sentinel:
      break;
  }
  std::string out = tls.enabled ? "rediss" : "redis";
  if (scheme == url_scheme::redis_cluster) out += "+cluster";
  if (scheme == url_scheme::redis_sentinel) out += "+sentinel";
  out += "://";
  if (!password.empty()) out += fmt::format("{}:***@", user);
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    const auto& [h, p] = seeds[i];
    bool v6 = h.find(':') != std::string::npos;
    out += fmt::format("{}{}{}{}:{}", i ? "," : "", v6 ? "[" : "", h, v6 ? "]" : "", p);
  }
  if (scheme == url_scheme::redis_sentinel) out += "/" + service_name;
  return out + fmt::format("/{}", db);
}

void tls_settings::fill_from(const tls_settings& defaults) {
  for (auto [mine, theirs] : {std::pair{&ca_certs, &defaults.ca_certs}, std::pair{&ca_path, &defaults.ca_path},
                              std::pair{&certfile, &defaults.certfile}, std::pair{&keyfile, &defaults.keyfile},
                              std::pair{&server_hostname, &defaults.server_hostname}})
    if (mine->empty()) *mine = *theirs;
  if (!verify_peer) verify_peer = defaults.verify_peer;
  if (!check_hostname) check_hostname = defaults.check_hostname;
}

}  // namespace httpcache
