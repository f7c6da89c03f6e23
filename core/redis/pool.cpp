// SPDX-License-Identifier: MIT
// Blocking connections to one node, borrowed per exchange: connect with timeouts, set up AUTH and
// SELECT, pipeline, and replace a pooled connection the server closed since it was last used.
#include "pool.hpp"

#include <fmt/format.h>

#include <cerrno>

namespace httpcache::detail {

namespace {

timeval to_timeval(std::uint32_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

// hiredis reports a socket timeout as an I/O error with EAGAIN in errno.
[[noreturn]] void throw_context_error(const redisContext* c, const std::string& where) {
  bool timed_out = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS);
  throw backend_error(timed_out ? errc::timeout : errc::backend,
                      fmt::format("{}: {}", where, timed_out ? "timed out" : c->errstr));
}

std::vector<reply_ptr> exchange_on(redisContext* c, const std::vector<const command*>& commands,
                                   const std::string& node) {
  for (const command* cmd : commands)
    if (redisAppendCommandArgv(c, cmd->argc(), cmd->argv_data(), cmd->lens.data()) != REDIS_OK)
      throw_context_error(c, fmt::format("sending to {}", node));
  // Every reply is read before any is judged, so the connection never keeps a stray one.
  std::vector<reply_ptr> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || !raw) throw_context_error(c, fmt::format("reading from {}", node));
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

}  // namespace

std::string endpoint::name() const {
  if (!socket_path.empty()) return socket_path;
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

void throw_if_error(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ERROR) return;
  const std::string_view text(reply->str, reply->len);
  throw backend_error(errc::backend, fmt::format("Redis replied: {}", text), is_outage_reply(text));
}

redis_pool::redis_pool(endpoint where, const backend_url& auth, const backend_options& options)
    : where_(std::move(where)), auth_(auth), options_(options) {}

std::vector<reply_ptr> redis_pool::exchange(const std::vector<const command*>& commands) {
  for (int attempt = 0;; ++attempt) {
    pooled c = take_idle();
    const bool reused = c.c != nullptr;
    if (!reused) c = pooled{connect(), current_pid()};
    try {
      auto replies = exchange_on(c.c.get(), commands, where_.name());
      give_back(std::move(c));
      return replies;
    } catch (const backend_error& e) {
      // The broken connection is dropped (c goes out of scope), never reused.
      if (!(reused && attempt == 0 && e.code() == errc::backend)) throw;
    }
  }
}

context_ptr redis_pool::connect() {
  const timeval connect_tv = to_timeval(options_.connect_timeout_ms);
  context_ptr c(!where_.socket_path.empty() ? redisConnectUnixWithTimeout(where_.socket_path.c_str(), connect_tv)
                                            : redisConnectWithTimeout(where_.host.c_str(), where_.port, connect_tv));
  if (!c) throw backend_error(errc::no_memory, "out of memory allocating a Redis connection");
  // auth_.redacted() names the server without the password; for cluster nodes name the node.
  const std::string shown = auth_.scheme == url_scheme::redis_cluster ? where_.name() : auth_.redacted();
  if (c->err) throw_context_error(c.get(), fmt::format("connecting to {}", shown));
  if (redisSetTimeout(c.get(), to_timeval(options_.command_timeout_ms)) != REDIS_OK)
    throw_context_error(c.get(), "setting the command timeout");
  std::string db_text;
  auto setup = connection_setup(auth_, db_text);
  std::vector<const command*> cmds;
  for (const auto& cmd : setup) cmds.push_back(&cmd);
  if (!cmds.empty()) {
    for (const auto& reply : exchange_on(c.get(), cmds, where_.name())) {
      if (reply->type == REDIS_REPLY_ERROR) {  // AUTH's error text names no secret
        const std::string_view text(reply->str, reply->len);
        throw backend_error(errc::backend, fmt::format("setting up the connection to {}: {}", shown, text),
                            is_outage_reply(text));
      }
    }
  }
  return c;
}

// Connections made by another process (we are its forked child) are never used: the first borrow
// after a fork drops them all. redisFree() only closes our copy of the descriptor, which leaves
// the parent's connection open and untouched (no QUIT, no shutdown()).
redis_pool::pooled redis_pool::take_idle() {
  const pid_t self = current_pid();
  std::vector<pooled> inherited;  // freed after the lock is released
  std::lock_guard<std::mutex> lock(mutex_);
  while (!idle_.empty()) {
    pooled c = std::move(idle_.back());
    idle_.pop_back();
    if (c.pid == self) return c;
    inherited.push_back(std::move(c));
  }
  return {};
}

void redis_pool::give_back(pooled c) {
  if (c.pid != current_pid()) return;  // dropped (see take_idle)
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.size() < options_.pool_size) idle_.push_back(std::move(c));
}

}  // namespace httpcache::detail
