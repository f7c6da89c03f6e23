// SPDX-License-Identifier: MIT
#include "url.hpp"

#include <fmt/format.h>

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

// Applies `a=1&b=2`; `allow_db` is true for unix:// where the path leaves no room for /db.
void apply_query(backend_url& u, std::string_view query, bool allow_db) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) bad_url(fmt::format("query parameter '{}' has no value", pair));
    std::string_view name = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (name == "connect_timeout_ms")
      u.connect_timeout_ms = parse_number<std::uint32_t>(value, 1, 600000, "connect_timeout_ms");
    else if (name == "command_timeout_ms")
      u.command_timeout_ms = parse_number<std::uint32_t>(value, 1, 600000, "command_timeout_ms");
    else if (name == "db" && allow_db)
      u.db = parse_number<int>(value, 0, 1 << 20, "db");
    else
      bad_url(fmt::format("unknown query parameter '{}'", name));
  }
}

std::pair<std::string, int> parse_host_port(std::string_view hostport) {
  std::string host;
  int port = 6379;
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
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
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
  // One host:port, or for a cluster a comma-separated list of seed nodes.
  while (true) {
    auto comma = rest.find(',');
    if (comma != std::string_view::npos && u.scheme != url_scheme::redis_cluster)
      bad_url("redis:// takes one host (use redis+cluster:// for several)");
    auto [host, port] = parse_host_port(rest.substr(0, comma));
    u.seeds.emplace_back(std::move(host), port);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  u.host = u.seeds.front().first;
  u.port = u.seeds.front().second;
  if (!path.empty()) u.db = parse_number<int>(path, 0, 1 << 20, "database number");
  if (u.scheme == url_scheme::redis_cluster && u.db != 0) bad_url("Redis Cluster has only database 0");
  apply_query(u, query, false);
}

void parse_unix(backend_url& u, std::string_view rest) {
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.empty() || rest.front() != '/') bad_url("unix:// needs an absolute socket path (unix:///path/to.sock)");
  if (rest.size() > 107) bad_url("unix socket path is longer than 107 bytes");
  u.socket_path = percent_decode(rest, "socket path");
  if (u.socket_path.find('\0') != std::string::npos) bad_url("unix socket path contains a NUL byte");
  apply_query(u, query, true);
}

}  // namespace

backend_url parse_url(std::string_view url) {
  backend_url u;
  if (url.empty()) return u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) bad_url("missing '://' (expected memory://, redis://, redis+cluster:// or unix://)");
  std::string_view scheme = url.substr(0, sep), rest = url.substr(sep + 3);
  if (scheme == "memory") {
    if (!rest.empty()) bad_url("memory:// takes no host, path or options");
    return u;
  }
  if (scheme == "redis") {
    u.scheme = url_scheme::redis;
    parse_redis(u, rest);
    return u;
  }
  if (scheme == "redis+cluster") {
    u.scheme = url_scheme::redis_cluster;
    parse_redis(u, rest);
    return u;
  }
  if (scheme == "unix") {
    u.scheme = url_scheme::unix_socket;
    parse_unix(u, rest);
    return u;
  }
  std::string shown(scheme.substr(0, 32));
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  bad_url(fmt::format("unknown scheme '{}' (expected memory, redis, redis+cluster or unix)", shown));
}

std::string backend_url::redacted() const {
  switch (scheme) {
    case url_scheme::memory:
      return "memory://";
    case url_scheme::unix_socket:
      return fmt::format("unix://{}?db={}", socket_path, db);
    case url_scheme::redis:
    case url_scheme::redis_cluster:
      break;
  }
  std::string out = scheme == url_scheme::redis ? "redis://" : "redis+cluster://";
  if (!password.empty()) out += fmt::format("{}:***@", user);
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    const auto& [h, p] = seeds[i];
    bool v6 = h.find(':') != std::string::npos;
    out += fmt::format("{}{}{}{}:{}", i ? "," : "", v6 ? "[" : "", h, v6 ? "]" : "", p);
  }
  return out + fmt::format("/{}", db);
}

}  // namespace httpcache
