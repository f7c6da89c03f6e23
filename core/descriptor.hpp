// SPDX-License-Identifier: MIT
// What a non-blocking session asks its host to watch (the public httpcache_fd): a socket, or on
// Linux a cluster session's epoll descriptor. An int on POSIX; on Windows a Winsock SOCKET, which
// is pointer-sized.
#pragma once

#include <cstdint>

namespace httpcache {

#ifdef _WIN32
using descriptor = std::uintptr_t;
#else
using descriptor = int;
#endif

}  // namespace httpcache
