// SPDX-License-Identifier: MIT
// The transport (connection.hpp): connect through the resolved addresses in turn, handshake,
// write the queued commands, read into hiredis's reply parser.
#include "connection.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include "../clock.hpp"
#include "../error.hpp"
#include "tls.hpp"

namespace httpcache::detail {

void reply_deleter::operator()(redisReply* r) const { freeReplyObject(r); }

std::string endpoint::name() const {
  if (!socket_path.empty()) return socket_path;
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

connection::connection(const endpoint& where, const tls_client* tls, std::string shown)
    : name_(shown.empty() ? where.name() : std::move(shown)), host_(where.host), tls_(tls), reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
  try {
    addresses_ = where.socket_path.empty() ? net::resolve(where.host, where.port)
                                           : std::vector<net::address>{net::unix_address(where.socket_path)};
    try_next_address(0);
  } catch (...) {
    redisReaderFree(reader_);
    throw;
  }
}

connection::connection(net::socket_t connected, std::string shown)
    : name_(std::move(shown)), fd_(connected), state_(state::ready), tls_(nullptr), reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
}

std::unique_ptr<connection> connection::adopt(net::socket_t connected, std::string shown) {
  return std::unique_ptr<connection>(new connection(connected, std::move(shown)));
}

connection::~connection() {
  stream_.reset();  // before the socket it uses
  net::close(fd_);
  for (net::socket_t s : retired_) net::close(s);
  redisReaderFree(reader_);
}

void connection::fail(const std::string& why) const { throw backend_error(errc::backend, why); }

// The current attempt failed with `err` (0: none was made yet): the next address, if any.
void connection::try_next_address(int err) {
  if (fd_ != net::invalid_socket) retired_.push_back(fd_);
  fd_ = net::invalid_socket;
  if (err != 0) connect_error_ = err;
  while (next_address_ < addresses_.size()) {
    fd_ = net::start_connect(addresses_[next_address_++], &err);
    if (fd_ != net::invalid_socket) return;
    connect_error_ = err;
  }
  fail(fmt::format("connecting to {}: {}", name_, net::error_text(connect_error_)));
}

bool connection::step_connect() {
  for (;;) {
    int err = 0;
    const int st = net::connect_state(fd_, &err);
    if (st == 0) return false;
    if (st > 0) break;
    try_next_address(err);
  }
  if (!tls_) {
    state_ = state::ready;
    return true;
  }
  stream_ = tls_->open(fd_, host_);
  state_ = state::handshaking;
  return step_handshake();
}

bool connection::step_handshake() {
  tls_io io = stream_->handshake();
  if (io.failed) fail(fmt::format("connecting to {}: {}", name_, io.error));
  write_wants_ = io.wants;
  if (io.wants) return false;
  state_ = state::ready;
  return true;
}

void connection::flush() {
  while (has_output()) {
    const char* data = out_.data() + out_pos_;
    const std::size_t len = out_.size() - out_pos_;
    long n;
    if (stream_) {
      tls_io io = stream_->write(data, len);
      if (io.failed) fail(fmt::format("writing to {}: {}", name_, io.error));
      write_wants_ = io.wants;
      if (io.wants) return;
      if (io.bytes == 0) fail(fmt::format("connection to {} closed by the server", name_));
      n = io.bytes;
    } else {
      int err = 0;
      n = net::send_some(fd_, data, len, &err);
      if (n == net::failed) fail(fmt::format("writing to {}: {}", name_, net::error_text(err)));
      if (n == net::would_block) return;
    }
    out_pos_ += static_cast<std::size_t>(n);
  }
  out_.clear();
  out_pos_ = 0;
}

// Reads what has arrived. A read that fills the buffer may have left more behind, and TLS may
// hold decrypted bytes the socket no longer shows: both are read on; anything else waits for
// the next readiness, so no read is made only to learn that nothing is there.
void connection::fill() {
  char buf[16384];
  for (;;) {
    long n;
    if (stream_) {
      tls_io io = stream_->read(buf, sizeof(buf));
      if (io.failed) fail(fmt::format("reading from {}: {}", name_, io.error));
      read_wants_ = io.wants;
      if (io.wants) return;
      n = io.bytes;
    } else {
      int err = 0;
      n = net::recv_some(fd_, buf, sizeof(buf), &err);
      if (n == net::failed) fail(fmt::format("reading from {}: {}", name_, net::error_text(err)));
      if (n == net::would_block) return;
    }
    if (n == 0) fail(fmt::format("connection to {} closed by the server", name_));
    if (redisReaderFeed(reader_, buf, static_cast<std::size_t>(n)) != REDIS_OK) throw std::bad_alloc();
    if (static_cast<std::size_t>(n) < sizeof(buf) && !(stream_ && stream_->has_buffered())) return;
  }
}

unsigned connection::advance(unsigned ready) {
  if (state_ == state::connecting && !step_connect()) return stream_ ? write_wants_ : net::want_write;
  if (state_ == state::handshaking && !step_handshake()) return write_wants_;
  flush();
  // A TLS write may wait for input (a renegotiation or key update), and a TLS read for room.
  const bool write_waits_for_input = stream_ && has_output() && (write_wants_ & net::want_read);
  const bool read_waits_for_room = stream_ && (read_wants_ & net::want_write) && (ready & net::want_write);
  if ((ready & net::want_read) || write_waits_for_input || read_waits_for_room || (stream_ && stream_->has_buffered()))
    fill();
  if (write_waits_for_input && (ready & net::want_read)) flush();
  unsigned wants = net::want_read;
  if (has_output()) wants |= stream_ ? write_wants_ : net::want_write;
  if (stream_ && (read_wants_ & net::want_write)) wants |= net::want_write;
  return wants;
}

reply_ptr connection::take_reply() {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK)
    fail(fmt::format("protocol error from {}: {}", name_, reader_->errstr));
  return reply_ptr(static_cast<redisReply*>(raw));
}

void connection::wait_established(std::uint32_t timeout_ms) {
  wait_until([&] { return established(); }, steady_ms() + timeout_ms, "connecting to");
}

std::vector<reply_ptr> connection::exchange(const std::vector<const command*>& commands, std::uint32_t timeout_ms) {
  for (const command* cmd : commands) append(*cmd);
  std::vector<reply_ptr> replies;
  replies.reserve(commands.size());
  wait_until(
      [&] {
        while (replies.size() < commands.size()) {
          reply_ptr r = take_reply();
          if (!r) return false;
          replies.push_back(std::move(r));
        }
        return true;
      },
      steady_ms() + timeout_ms, "reading from");
  return replies;
}

unsigned connection::wait_for(unsigned wants, std::int64_t deadline_ms, const char* what) {
  const std::int64_t left = deadline_ms - steady_ms();
  int err = 0;
  const int ready = left > 0 ? net::wait(fd_, wants, static_cast<int>(left), &err) : 0;
  if (ready == 0) throw backend_error(errc::timeout, fmt::format("{} {}: timed out", what, name_));
  if (ready < 0) fail(fmt::format("{} {}: {}", what, name_, net::error_text(err)));
  return static_cast<unsigned>(ready);
}

}  // namespace httpcache::detail
