// SPDX-License-Identifier: MIT
// Internal to core/redis/: a pool of connections (connection.hpp) to one Redis node, used
// blocking, so one handle serves many threads at once (each exchange borrows a connection; no
// lock is held during I/O). Used by the single-server backend (one pool), the Sentinel backend
// (one per master it learns) and the cluster backend (one per node).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../backend.hpp"
#include "../url.hpp"
#include "commands.hpp"
#include "connection.hpp"
#include "../fork.hpp"

namespace httpcache::detail {

// Fork-safe: a connection is only ever used by the process that made it (fork.hpp); a child drops
// the ones it inherited without any I/O and connects its own.
class redis_pool final : private fork_participant {
 public:
  // `auth` supplies the user, password and db sent on every new connection; `tls` (null: plain)
  // must outlive the pool.
  redis_pool(endpoint where, const backend_url& auth, const backend_options& options, const tls_client* tls);

  // Sends the commands pipelined (one write) and returns every reply, error replies included:
  // judging them is the caller's business (a cluster reads MOVED/ASK there). Throws
  // backend_error when the node cannot be reached or does not answer in time. A pooled
  // connection that turns out dead (the server restarted since) is replaced and the exchange
  // retried once: every command we send is idempotent, so a retry cannot double an effect.
  std::vector<reply_ptr> exchange(const std::vector<const command*>& commands);

  const endpoint& where() const noexcept { return where_; }

 private:
  struct pooled {
    std::unique_ptr<connection> c;
    pid_t pid = 0;  // the process that connected it: only that one may read or write it
  };
  std::unique_ptr<connection> connect();
  pooled take_idle();
  void give_back(pooled c);

  // The idle list is consistent in a child: its lock is held across fork().
  void before_fork() noexcept override { mutex_.lock(); }
  void after_fork_parent() noexcept override { mutex_.unlock(); }
  void after_fork_child() noexcept override { mutex_.unlock(); }

  const endpoint where_;
  const backend_url auth_;
  const backend_options options_;
  const tls_client* const tls_;
  std::mutex mutex_;
  std::vector<pooled> idle_;
  fork_registration registered_{*this};  // last: registered once the rest exists
};

// Throws backend_error(errc::backend) with the reply's text if it is an error reply.
void throw_if_error(const redisReply* reply);

}  // namespace httpcache::detail
