// SPDX-License-Identifier: MIT
// libFuzzer target: what a server (or anything at its address) sends back, through the transport
// as the library reads it: bytes arrive on a socket, connection::advance() reads them into
// hiredis's reply parser, and each reply goes through the readers the backends use (lookup,
// lease, TTL) and the near tier's report links (read_report). Any bytes must end in replies or a backend_error (protocol error, closed
// connection), never a crash, a hang or a leak.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include <hiredis/hiredis.h>

#include "../../core/error.hpp"
#include "../../core/redis/commands.hpp"
#include "../../core/redis/connection.hpp"
#include "../../core/redis/tracking.hpp"

using namespace httpcache;

namespace {
// The near tier's side of a report link: counts what read_report() tells it.
struct counting_sink final : invalidation_sink {
  std::size_t keys = 0, flushes = 0;
  void invalidated(std::string_view key) noexcept override { keys += key.size() + 1; }
  void invalidated_all() noexcept override { ++flushes; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 60000) return 0;  // within one socket buffer: written at once, then the peer closes
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  std::size_t sent = 0;
  while (sent < size) {
    ssize_t n = write(fds[1], data + sent, size - sent);
    if (n <= 0) std::abort();
    sent += static_cast<std::size_t>(n);
  }
  close(fds[1]);
  auto c = detail::connection::adopt(fds[0], "fuzz");  // owns fds[0]
  std::vector<detail::reply_ptr> replies;
  try {
    for (int rounds = 0; rounds < 100000; ++rounds) {  // ends at EOF: "closed by the server"
      c->advance(detail::net::want_read);
      while (detail::reply_ptr r = c->take_reply()) replies.push_back(std::move(r));
    }
    std::abort();  // EOF was never reported
  } catch (const backend_error&) {
  }
  counting_sink sink;  // and as a report link reads them (CLIENT TRACKING messages, PONGs)
  for (const auto& r : replies) (void)detail::read_report(r.get(), sink);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const redisReply* a = replies[i].get();
    const redisReply* b = replies[(i + 1) % replies.size()].get();
    const redisReply* d = replies[(i + 2) % replies.size()].get();
    (void)detail::remaining_ttl_ms(a);
    try {
      (void)detail::parse_lookup(a, b);
    } catch (const backend_error&) {
    }
    try {
      (void)detail::lease_from(a, b, d);
    } catch (const backend_error&) {
    }
  }
  return 0;
}
