// SPDX-License-Identifier: MIT
// Internal to core/redis/: one connection to one Redis node, our own transport under the pool,
// the non-blocking session and the cluster: a non-blocking socket (TCP or unix), TLS when asked
// (tls.hpp), an output buffer of commands formatted by hiredis, and hiredis's redisReader for the
// replies. hiredis 0.14 (Debian 12's) has no TLS and no I/O hooks, so its contexts cannot carry
// TLS; its formatter and reader are all we take from it.
//
// The connection never waits by itself: advance() does what the socket allows now and says what
// it waits for. The blocking pool waits with net::wait() between steps (wait_until), the
// non-blocking session hands the wait to the host's loop. A connection belongs to the process
// that made it (fork.hpp); dropping one does no I/O (no QUIT, no TLS close_notify).
#pragma once

#include <hiredis/read.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "socket.hpp"

struct redisReply;

namespace httpcache::detail {

class tls_client;
class tls_stream;

struct reply_deleter {
  void operator()(redisReply* r) const;
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

// Where a node is: TCP host and port, or a unix socket path.
struct endpoint {
  std::string host;
  int port = 6379;
  std::string socket_path;
  std::string name() const;  // "host:port" or the socket path; no credentials
};

class connection {
 public:
  // Resolves the endpoint and starts connecting (TLS when `tls` is given, checking the
  // certificate against the endpoint's host). Throws backend_error if no attempt could start.
  // Messages name the node as `shown` (e.g. the URL with its password redacted), or where.name().
  connection(const endpoint& where, const tls_client* tls, std::string shown = {});
  // Takes over a socket already connected (plain, no TLS), for tests and fuzzing of the transport.
  static std::unique_ptr<connection> adopt(net::socket_t connected, std::string shown);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  net::socket_t fd() const noexcept { return fd_; }  // changes while trying the next address
  bool established() const noexcept { return state_ == state::ready; }

  // Connects, handshakes and writes as far as the socket allows now, and reads when `ready` says
  // the socket is readable (read bytes go to the reply parser): no read is tried on the chance.
  // Returns what it waits for (net::want_read/want_write; reading is always wanted once
  // established). Throws backend_error when the connection failed or the server closed it.
  unsigned advance(unsigned ready);

  // Queues a command, or bytes already in RESP; advance() writes them.
  void append(const command& cmd) { append_resp(out_, cmd); }
  void append(std::string_view formatted) { out_.append(formatted); }
  bool has_output() const noexcept { return out_pos_ < out_.size(); }

  // A parsed reply, or null when none is complete yet. Throws backend_error on a protocol error.
  reply_ptr take_reply();

  // Blocking use (the pool, the Sentinel locator): waits until connected (TLS handshake
  // included), or errc::timeout after timeout_ms.
  void wait_established(std::uint32_t timeout_ms);
  // Blocking use: writes the commands (one write) and reads one reply each within timeout_ms.
  // Every reply is read before any is judged, so the connection never keeps a stray one.
  std::vector<reply_ptr> exchange(const std::vector<const command*>& commands, std::uint32_t timeout_ms);

  // Blocking use: advances and waits until `done()` holds, or fails with errc::timeout at
  // deadline_ms (steady_ms()). `what` names the step in messages ("reading from").
  template <typename Done>
  void wait_until(Done done, std::int64_t deadline_ms, const char* what) {
    unsigned ready = 0;
    for (;;) {
      const unsigned wants = advance(ready);
      if (done()) return;
      ready = wait_for(wants, deadline_ms, what);
    }
  }

 private:
  enum class state { connecting, handshaking, ready };
  connection(net::socket_t connected, std::string shown);
  void try_next_address(int err);
  bool step_connect();
  bool step_handshake();
  void flush();
  void fill();
  [[noreturn]] void fail(const std::string& why) const;
  unsigned wait_for(unsigned wants, std::int64_t deadline_ms, const char* what);

  const std::string name_;  // for messages
  std::string host_;        // checked against the TLS certificate
  std::vector<net::address> addresses_;
  std::size_t next_address_ = 0;
  net::socket_t fd_ = net::invalid_socket;
  // Sockets of failed attempts stay open until the connection is dropped: a session's watch
  // callback must hear that one is no longer watched before its number can be reused.
  std::vector<net::socket_t> retired_;
  state state_ = state::connecting;
  const tls_client* tls_;
  std::unique_ptr<tls_stream> stream_;
  // What the last TLS write (or handshake step) and the last TLS read wait for, apart: a read
  // that found only a session ticket waits for input, while the write still waits for room.
  unsigned write_wants_ = 0;
  unsigned read_wants_ = 0;
  std::string out_;
  std::size_t out_pos_ = 0;
  redisReader* reader_;
  int connect_error_ = 0;  // the last address's failure
};

}  // namespace httpcache::detail
