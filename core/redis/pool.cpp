// SPDX-License-Identifier: MIT
// Blocking connections to one node, borrowed per exchange: connect within the connect timeout,
// set up AUTH and SELECT, pipeline, and replace a pooled connection the server closed since it
// was last used.
#include "pool.hpp"

#include <fmt/format.h>

namespace httpcache::detail {

void throw_if_error(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ERROR) return;
  const std::string_view text(reply->str, reply->len);
  throw backend_error(errc::backend, fmt::format("Redis replied: {}", text), is_outage_reply(text));
}

redis_pool::redis_pool(endpoint where, const backend_url& auth, const backend_options& options, const tls_client* tls)
    : where_(std::move(where)), auth_(auth), options_(options), tls_(tls) {}

std::vector<reply_ptr> redis_pool::exchange(const std::vector<const command*>& commands) {
  for (int attempt = 0;; ++attempt) {
    pooled c = take_idle();
    const bool reused = c.c != nullptr;
    if (!reused) c = pooled{connect(), current_pid()};
    try {
      auto replies = c.c->exchange(commands, options_.command_timeout_ms);
      give_back(std::move(c));
      return replies;
    } catch (const backend_error& e) {
      // The broken connection is dropped (c goes out of scope), never reused.
      if (!(reused && attempt == 0 && e.code() == errc::backend)) throw;
    }
  }
}

std::unique_ptr<connection> redis_pool::connect() {
  // The URL names one server with its password redacted; a cluster's nodes are named as nodes.
  const bool named_by_url = auth_.scheme == url_scheme::redis || auth_.scheme == url_scheme::unix_socket;
  const std::string shown = named_by_url ? auth_.redacted() : where_.name();
  auto c = std::make_unique<connection>(where_, tls_, shown);
  c->wait_established(options_.connect_timeout_ms);
  std::string db_text;
  auto setup = connection_setup(auth_, db_text);
  std::vector<const command*> cmds;
  for (const auto& cmd : setup) cmds.push_back(&cmd);
  if (!cmds.empty()) {
    for (const auto& reply : c->exchange(cmds, options_.command_timeout_ms)) {
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
// after a fork drops them all. Dropping one closes only our copy of the descriptor and writes
// nothing (no QUIT, no TLS close_notify), which leaves the parent's connection untouched.
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
