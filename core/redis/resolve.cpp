// SPDX-License-Identifier: MIT
// Name resolution for the transport (socket.hpp: resolve): getaddrinfo, which POSIX and Winsock
// share, so one copy serves both; the platform files supply start_sockets() and the text of a
// resolver error.
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netdb.h>
#include <sys/socket.h>
#endif

#include "socket.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "../error.hpp"

namespace httpcache::detail::net {

std::vector<address> resolve(const std::string& host, int port) {
  start_sockets();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0) throw backend_error(errc::backend, fmt::format("cannot resolve {}: {}", host, resolver_error_text(rc)));
  std::vector<address> out;
  for (const addrinfo* a = found; a; a = a->ai_next) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(a->ai_addr);
    out.push_back(address{std::vector<unsigned char>(bytes, bytes + a->ai_addrlen), a->ai_family});
  }
  freeaddrinfo(found);
  // IPv4 first, as hiredis did: a host with AAAA records whose IPv6 is unreachable must not
  // spend every connect timeout on them.
  std::stable_partition(out.begin(), out.end(), [](const address& a) { return a.family == AF_INET; });
  if (out.empty()) throw backend_error(errc::backend, fmt::format("cannot resolve {}: no address", host));
  return out;
}

}  // namespace httpcache::detail::net
