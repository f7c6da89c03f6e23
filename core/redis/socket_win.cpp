// SPDX-License-Identifier: MIT
// Winsock for the transport (socket.hpp): non-blocking TCP sockets and select(). Errors are
// WSAGetLastError() codes, which error_text() and is_timeout() read. There are no unix sockets
// (unix:// is refused) and no SIGPIPE to avoid.
//
// select(), not WSAPoll(): a non-blocking connect that fails is reported by select() in its
// exception set, while WSAPoll() of older Windows versions never reports it, so a refused
// connection would wait out the whole connect timeout.
#define FD_SETSIZE 1024  // select() sets of up to this many sockets (Winsock's sets are arrays)
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include "socket.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "../clock.hpp"
#include "../error.hpp"

namespace httpcache::detail::net {

namespace {

// Winsock must be started once per process before any call; it stays started (the DLL may be
// unloaded while other code still uses Winsock, and WSACleanup would pull it from under that).
void start_winsock() {
  static std::once_flag once;
  std::call_once(once, [] {
    WSADATA data;
    const int rc = WSAStartup(MAKEWORD(2, 2), &data);
    if (rc != 0) throw backend_error(errc::backend, fmt::format("WSAStartup failed: {}", error_text(rc)));
  });
}

SOCKET as_native(socket_t s) { return static_cast<SOCKET>(s); }

// The ready events of s in the sets select() filled (an error counts as every wanted event: the
// next call reports it).
unsigned ready_in(SOCKET s, unsigned wanted, const fd_set& r, const fd_set& w, const fd_set& e) {
  if (FD_ISSET(s, &e)) return wanted;
  return (FD_ISSET(s, &r) ? want_read : 0) | (FD_ISSET(s, &w) ? want_write : 0);
}

// select() over `sockets`, waiting up to timeout_ms (< 0: no limit): the count ready, or -1.
int select_on(std::vector<watched>& sockets, int timeout_ms, int* err) {
  if (sockets.size() > FD_SETSIZE) {
    *err = WSAEINVAL;
    return -1;
  }
  fd_set r, w, e;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_ZERO(&e);
  for (const auto& x : sockets) {
    if (x.events & want_read) FD_SET(as_native(x.s), &r);
    if (x.events & want_write) FD_SET(as_native(x.s), &w);
    FD_SET(as_native(x.s), &e);
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  if (sockets.empty()) {  // select() refuses empty sets: just wait
    Sleep(timeout_ms < 0 ? INFINITE : static_cast<DWORD>(timeout_ms));
    return 0;
  }
  const int n = ::select(0, &r, &w, &e, timeout_ms < 0 ? nullptr : &tv);
  if (n == SOCKET_ERROR) {
    *err = WSAGetLastError();
    return -1;
  }
  int ready = 0;
  for (auto& x : sockets) {
    x.ready = n > 0 ? ready_in(as_native(x.s), x.events, r, w, e) : 0;
    ready += x.ready != 0;
  }
  return ready;
}

}  // namespace

void start_sockets() { start_winsock(); }

std::string resolver_error_text(int rc) { return error_text(rc); }

address unix_address(const std::string& path) {
  throw backend_error(errc::backend, fmt::format("unix sockets are not supported on Windows: {}", path));
}

socket_t start_connect(const address& to, int* err) {
  start_winsock();
  // Not inherited by child processes: the POSIX side's SOCK_CLOEXEC.
  SOCKET s = WSASocketW(to.family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) {
    *err = WSAGetLastError();
    return invalid_socket;
  }
  u_long nonblocking = 1;
  const BOOL one = TRUE;  // requests are small and wait for their reply: no Nagle delay
  if (ioctlsocket(s, FIONBIO, &nonblocking) != 0) {
    *err = WSAGetLastError();
    closesocket(s);
    return invalid_socket;
  }
  (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof(one));
  if (::connect(s, reinterpret_cast<const sockaddr*>(to.raw.data()), static_cast<int>(to.raw.size())) == 0 ||
      WSAGetLastError() == WSAEWOULDBLOCK)
    return static_cast<socket_t>(s);
  *err = WSAGetLastError();
  closesocket(s);
  return invalid_socket;
}

int connect_state(socket_t s, int* err) {
  std::vector<watched> one{{s, want_write, 0}};
  const int n = select_on(one, 0, err);
  if (n < 0) return -1;
  if (n == 0) return 0;
  int so_error = 0;
  int len = sizeof(so_error);
  if (getsockopt(as_native(s), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&so_error), &len) != 0) {
    *err = WSAGetLastError();
    return -1;
  }
  if (so_error != 0) {
    *err = so_error;
    return -1;
  }
  return 1;
}

long send_some(socket_t s, const void* data, std::size_t len, int* err) {
  const int chunk = static_cast<int>(std::min<std::size_t>(len, 1 << 30));
  const int n = ::send(as_native(s), static_cast<const char*>(data), chunk, 0);
  if (n != SOCKET_ERROR) return n;
  const int e = WSAGetLastError();
  if (e == WSAEWOULDBLOCK) return would_block;
  *err = e;
  return failed;
}

long recv_some(socket_t s, void* data, std::size_t len, int* err) {
  const int chunk = static_cast<int>(std::min<std::size_t>(len, 1 << 30));
  const int n = ::recv(as_native(s), static_cast<char*>(data), chunk, 0);
  if (n != SOCKET_ERROR) return n;
  const int e = WSAGetLastError();
  if (e == WSAEWOULDBLOCK) return would_block;
  *err = e;
  return failed;
}

int wait(socket_t s, unsigned events, int timeout_ms, int* err) {
  std::vector<watched> one{{s, events, 0}};
  const int n = select_on(one, timeout_ms, err);
  return n <= 0 ? n : static_cast<int>(one[0].ready);
}

int wait_any(std::vector<watched>& sockets, int timeout_ms, int* err) { return select_on(sockets, timeout_ms, err); }

// No socketpair() on Windows: a loopback connection through a listener of our own, which is
// closed once the pair exists.
bool wake_pair(socket_t out[2], int* err) {
  start_winsock();
  SOCKET listener = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_NO_HANDLE_INHERIT);
  SOCKET a = INVALID_SOCKET, b = INVALID_SOCKET;
  auto fail = [&] {
    *err = WSAGetLastError();
    for (SOCKET x : {listener, a, b})
      if (x != INVALID_SOCKET) closesocket(x);
    return false;
  };
  if (listener == INVALID_SOCKET) return fail();
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int len = sizeof(at);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0 || ::listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&at), &len) != 0)
    return fail();
  a = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_NO_HANDLE_INHERIT);
  if (a == INVALID_SOCKET || ::connect(a, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0) return fail();
  b = ::accept(listener, nullptr, nullptr);
  if (b == INVALID_SOCKET) return fail();
  closesocket(listener);
  u_long nonblocking = 1;
  ioctlsocket(a, FIONBIO, &nonblocking);
  ioctlsocket(b, FIONBIO, &nonblocking);
  out[0] = static_cast<socket_t>(a);
  out[1] = static_cast<socket_t>(b);
  return true;
}

void close(socket_t s) noexcept {
  if (s != invalid_socket) closesocket(as_native(s));
}

std::string error_text(int err) {
  char buf[256] = {0};
  const DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                                 static_cast<DWORD>(err), MAKELANGID(LANG_ENGLISH, SUBLANG_DEFAULT), buf,
                                 sizeof(buf), nullptr);
  std::string text(buf, n);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == '.')) text.pop_back();
  return text.empty() ? fmt::format("error {}", err) : text;
}

bool is_timeout(int err) noexcept { return err == WSAETIMEDOUT || err == WSAEWOULDBLOCK; }

}  // namespace httpcache::detail::net
