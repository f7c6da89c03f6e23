// SPDX-License-Identifier: MIT
// POSIX sockets for the transport (socket.hpp): non-blocking TCP and unix sockets, poll().
#include "socket.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "../clock.hpp"
#include "../error.hpp"

namespace httpcache::detail::net {

void start_sockets() {}

std::string resolver_error_text(int rc) { return gai_strerror(rc); }

address unix_address(const std::string& path) {
  sockaddr_un sun{};
  if (path.size() >= sizeof(sun.sun_path))
    throw backend_error(errc::backend, fmt::format("unix socket path too long: {}", path));
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.data(), path.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(&sun);
  return address{std::vector<unsigned char>(bytes, bytes + sizeof(sun)), AF_UNIX};
}

socket_t start_connect(const address& to, int* err) {
  const int s = ::socket(to.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) {
    *err = errno;
    return invalid_socket;
  }
  if (to.family != AF_UNIX) {
    const int one = 1;  // requests are small and wait for their reply: no Nagle delay
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if (::connect(s, reinterpret_cast<const sockaddr*>(to.raw.data()), static_cast<socklen_t>(to.raw.size())) == 0 ||
      errno == EINPROGRESS)
    return s;
  *err = errno == EAGAIN ? ECONNREFUSED : errno;  // a unix socket with a full backlog says EAGAIN
  ::close(s);
  return invalid_socket;
}

int connect_state(socket_t s, int* err) {
  pollfd p{s, POLLOUT, 0};
  const int n = ::poll(&p, 1, 0);
  if (n == 0) return 0;
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  if (n < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
    *err = errno;
    return -1;
  }
  if (so_error != 0) {
    *err = so_error;
    return -1;
  }
  return 1;
}

long send_some(socket_t s, const void* data, std::size_t len, int* err) {
  for (;;) {
    const ssize_t n = ::send(s, data, len, MSG_NOSIGNAL);
    if (n >= 0) return static_cast<long>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return would_block;
    *err = errno;
    return failed;
  }
}

long recv_some(socket_t s, void* data, std::size_t len, int* err) {
  for (;;) {
    const ssize_t n = ::recv(s, data, len, 0);
    if (n >= 0) return static_cast<long>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return would_block;
    *err = errno;
    return failed;
  }
}

int wait(socket_t s, unsigned events, int timeout_ms, int* err) {
  pollfd p{s, static_cast<short>(((events & want_read) ? POLLIN : 0) | ((events & want_write) ? POLLOUT : 0)), 0};
  const std::int64_t deadline = steady_ms() + timeout_ms;
  for (;;) {
    // After a signal, only what is left of the time: periodic signals must not extend a wait.
    const std::int64_t left = timeout_ms < 0 ? -1 : std::max<std::int64_t>(0, deadline - steady_ms());
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) {
      // An error or hang-up makes the next call report it: say every wanted event is ready.
      if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return static_cast<int>(events);
      return ((p.revents & POLLIN) ? want_read : 0) | ((p.revents & POLLOUT) ? want_write : 0);
    }
    if (n == 0) return 0;
    if (errno != EINTR) {
      *err = errno;
      return -1;
    }
  }
}

int wait_any(std::vector<watched>& sockets, int timeout_ms, int* err) {
  std::vector<pollfd> polled;
  polled.reserve(sockets.size());
  for (const auto& w : sockets)
    polled.push_back(pollfd{w.s, static_cast<short>(((w.events & want_read) ? POLLIN : 0) |
                                                    ((w.events & want_write) ? POLLOUT : 0)), 0});
  const std::int64_t deadline = steady_ms() + timeout_ms;
  for (;;) {
    const std::int64_t left = timeout_ms < 0 ? -1 : std::max<std::int64_t>(0, deadline - steady_ms());
    const int n = ::poll(polled.data(), polled.size(), static_cast<int>(left));
    if (n >= 0) {
      for (std::size_t i = 0; i < sockets.size(); ++i) {
        const short r = polled[i].revents;
        sockets[i].ready = (r & (POLLERR | POLLHUP | POLLNVAL)) ? sockets[i].events
                                                                 : ((r & POLLIN) ? want_read : 0) | ((r & POLLOUT) ? want_write : 0);
      }
      return n;
    }
    if (errno != EINTR) {
      *err = errno;
      return -1;
    }
  }
}

bool wake_pair(socket_t out[2], int* err) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    *err = errno;
    return false;
  }
  out[0] = fds[0];
  out[1] = fds[1];
  return true;
}

void close(socket_t s) noexcept {
  if (s != invalid_socket) ::close(s);
}

std::string error_text(int err) {
  char buf[256];
  // GNU strerror_r returns the text (possibly not in buf).
  return strerror_r(err, buf, sizeof(buf));
}

bool is_timeout(int err) noexcept { return err == ETIMEDOUT || err == EAGAIN || err == EWOULDBLOCK; }

}  // namespace httpcache::detail::net
