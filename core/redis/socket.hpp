// SPDX-License-Identifier: MIT
// Internal to core/redis/: the platform's socket calls and nothing else: socket.cpp (POSIX) and
// socket_win.cpp (Winsock) implement it. Sockets are non-blocking from the start (connect never waits here);
// callers that want to block say how long, per call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../descriptor.hpp"

namespace httpcache::detail::net {

using socket_t = descriptor;  // a Winsock SOCKET is 64 bits: keep it behind this name
inline constexpr socket_t invalid_socket = static_cast<socket_t>(-1);  // Winsock's INVALID_SOCKET too

inline constexpr unsigned want_read = 1, want_write = 2;

// A place to connect to: a resolved TCP address or a unix socket path.
struct address {
  std::vector<unsigned char> raw;  // a sockaddr of `raw.size()` bytes
  int family = 0;
};

// The addresses of host:port, IPv4 first (blocking: getaddrinfo has no other form), or of a unix
// socket path. Throws backend_error naming `host` when there are none. resolve.cpp, for both
// platforms, over these two of the platform's file: whatever must run before the first socket
// call (Winsock's start), and the text of a getaddrinfo error.
std::vector<address> resolve(const std::string& host, int port);
void start_sockets();
std::string resolver_error_text(int rc);
address unix_address(const std::string& path);

// Starts a non-blocking connect. Returns the socket, or invalid_socket with *err set when the
// attempt failed at once.
socket_t start_connect(const address& to, int* err);

// Whether a started connect has ended: 1 connected, 0 still in progress, -1 failed (*err set).
int connect_state(socket_t s, int* err);

// Send/receive what the kernel takes now. Bytes moved (0 from recv: the peer closed), or
// would_block, or failed (*err set). Never raises SIGPIPE.
inline constexpr long would_block = -1;
inline constexpr long failed = -2;
long send_some(socket_t s, const void* data, std::size_t len, int* err);
long recv_some(socket_t s, void* data, std::size_t len, int* err);

// Waits until `events` (want_read|want_write) are ready: the ready ones, 0 on timeout, or -1 on
// failure (*err set). timeout_ms < 0 waits without limit.
int wait(socket_t s, unsigned events, int timeout_ms, int* err);

// Waits on several sockets at once: sets each one's `ready` (as wait() returns it). Returns the
// number of ready sockets, 0 on timeout, or -1 on failure (*err set).
struct watched {
  socket_t s = invalid_socket;
  unsigned events = 0;
  unsigned ready = 0;
};
int wait_any(std::vector<watched>& sockets, int timeout_ms, int* err);
// A connected pair of sockets, for waking a thread that waits on the first: false (*err set) on
// failure.
bool wake_pair(socket_t out[2], int* err);
void close(socket_t s) noexcept;

// The system's text for an error number.
std::string error_text(int err);
bool is_timeout(int err) noexcept;

}  // namespace httpcache::detail::net
