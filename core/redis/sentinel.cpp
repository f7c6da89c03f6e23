// SPDX-License-Identifier: MIT
// Finding a master through its sentinels, and following failovers (sentinel.hpp).
#include "sentinel.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <charconv>
#include <vector>
#include <chrono>
#include <new>

#include "../clock.hpp"
#include "commands.hpp"

namespace httpcache::detail {

namespace {

constexpr std::int64_t listen_slice_ms = 100;  // how often the watcher looks at its flags
constexpr std::int64_t fail_fast_ms = 500;     // a blocking caller after a failed ask: fails at once

std::string_view text_of(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? std::string_view(r->str, r->len)
                                                                             : std::string_view();
}

std::optional<int> port_of(std::string_view text) {
  int port = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535) return std::nullopt;
  return port;
}

// A blocking exchange of one command on a fresh connection.
reply_ptr ask(connection& c, const command& cmd, const backend_options& options) {
  c.wait_established(options.connect_timeout_ms);
  return std::move(c.exchange({&cmd}, options.command_timeout_ms).front());
}

}  // namespace

sentinel_locator::sentinel_locator(backend_url url, backend_options options, std::shared_ptr<const tls_client> tls)
    : url_(std::move(url)), options_(options), tls_(std::move(tls)) {
  ensure_watcher();
}

sentinel_locator::~sentinel_locator() {
  stopping_ = true;  // the watcher's loops stop between sentinels: the join waits for one exchange
  std::unique_ptr<watcher> w;
  {
    std::lock_guard<std::mutex> guard(watcher_guard_);
    w = std::move(watcher_);
  }
  if (!w) return;
  {
    std::lock_guard<std::mutex> lock(w->mutex);
    w->stopping = true;
  }
  w->cv.notify_one();
  w->thread.join();
}

endpoint sentinel_locator::master() {
  ensure_watcher();
  auto known_or_recent_failure = [&]() -> std::optional<endpoint> {
    std::lock_guard<std::mutex> lock(mutex_);
    if (master_) return master_;
    // Threads queued behind a failed ask fail now instead of asking the same sentinels again.
    if (failed_at_ms_ >= 0 && steady_ms() - failed_at_ms_ < fail_fast_ms) throw backend_error(errc::backend, failed_why_);
    return std::nullopt;
  };
  if (auto m = known_or_recent_failure()) return *m;
  std::lock_guard<std::mutex> one_at_a_time(*ask_mutex_);
  if (auto m = known_or_recent_failure()) return *m;  // another ask answered (or failed) meanwhile
  endpoint m = ask_sentinels();
  set_master(m);
  return m;
}

std::optional<endpoint> sentinel_locator::known_master() {
  ensure_watcher();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (master_) return master_;
  }
  wake_watcher();
  return std::nullopt;
}

void sentinel_locator::lost() {
  ensure_watcher();
  wake_watcher();
}

void sentinel_locator::set_master(const endpoint& m) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!master_ || master_->name() != m.name()) version_.fetch_add(1, std::memory_order_acq_rel);
  master_ = m;
  failed_at_ms_ = -1;
}

std::optional<endpoint> sentinel_locator::ask_one(const std::string& host, int port, std::string& why) {
  endpoint at;
  at.host = host;
  at.port = port;
  command cmd;
  cmd.add("SENTINEL");
  cmd.add("get-master-addr-by-name");
  cmd.add(url_.service_name);
  try {
    connection c(at, tls_.get());
    reply_ptr reply = ask(c, cmd, options_);
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
      std::string_view ip = text_of(reply->element[0]);
      std::optional<int> p = port_of(text_of(reply->element[1]));
      if (!ip.empty() && p) {
        endpoint m;
        m.host.assign(ip);
        m.port = *p;
        if (is_master(m, why)) return m;
        return std::nullopt;
      }
    }
    why = reply->type == REDIS_REPLY_ERROR ? fmt::format("{} replied: {}", at.name(), std::string_view(reply->str, reply->len))
                                           : fmt::format("{} does not know the master '{}'", at.name(), url_.service_name);
  } catch (const backend_error& e) {
    why = e.what();
  }
  return std::nullopt;
}

// Whether the node a sentinel named says it is a master (ROLE, after the URL's AUTH/SELECT). A
// node that cannot be asked (ROLE denied by an ACL) is believed; one that says "slave" is not.
bool sentinel_locator::is_master(const endpoint& m, std::string& why) {
  command role;
  role.add("ROLE");
  std::string db_text;
  try {
    connection c(m, tls_.get());
    c.wait_established(options_.connect_timeout_ms);
    auto setup = connection_setup(url_, db_text);
    std::vector<const command*> cmds;
    for (const auto& cmd : setup) cmds.push_back(&cmd);
    cmds.push_back(&role);
    std::vector<reply_ptr> replies = c.exchange(cmds, options_.command_timeout_ms);
    const redisReply* r = replies.back().get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 || text_of(r->element[0]) == "master") return true;
    why = fmt::format("{} is named the master but is a {}", m.name(), text_of(r->element[0]));
  } catch (const backend_error& e) {
    why = fmt::format("the master {} named by a sentinel: {}", m.name(), e.what());
  }
  return false;
}

// Each sentinel in the order given, until one names a master that says it is one.
endpoint sentinel_locator::ask_sentinels() {
  std::string why = "no sentinel given";
  for (const auto& [host, port] : url_.seeds) {
    if (stopping_) break;
    if (auto m = ask_one(host, port, why)) return *m;
  }
  const std::string message = fmt::format("no sentinel named the master '{}': {}", url_.service_name, why);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    failed_at_ms_ = steady_ms();
    failed_why_ = message;
  }
  throw backend_error(errc::backend, message);
}

std::unique_ptr<connection> sentinel_locator::subscribe() {
  command cmd;
  cmd.add("SUBSCRIBE");
  cmd.add("+switch-master");
  std::string why = "no sentinel given";
  for (const auto& [host, port] : url_.seeds) {
    if (stopping_) break;
    endpoint at;
    at.host = host;
    at.port = port;
    try {
      auto c = std::make_unique<connection>(at, tls_.get());
      reply_ptr confirm = ask(*c, cmd, options_);
      if (confirm->type == REDIS_REPLY_ARRAY) return c;
    } catch (const backend_error& e) {
      why = e.what();
    }
  }
  throw backend_error(errc::backend, "cannot subscribe to a sentinel: " + why);
}

// Reads +switch-master messages until deadline_ms: "<name> <old ip> <old port> <new ip> <new port>".
void sentinel_locator::listen(connection& sub, std::int64_t deadline_ms) {
  try {
    sub.wait_until(
        [&] {
          while (reply_ptr r = sub.take_reply()) {
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || text_of(r->element[0]) != "message") continue;
            std::string_view msg = text_of(r->element[2]);
            std::string_view parts[5];
            std::size_t n = 0;
            while (n < 5 && !msg.empty()) {
              auto space = msg.find(' ');
              parts[n++] = msg.substr(0, space);
              msg = space == std::string_view::npos ? std::string_view() : msg.substr(space + 1);
            }
            std::optional<int> port = n == 5 ? port_of(parts[4]) : std::nullopt;
            if (!port || parts[0] != url_.service_name) continue;
            endpoint m;
            m.host.assign(parts[3]);
            m.port = *port;
            set_master(m);
          }
          return false;
        },
        deadline_ms, "listening to");
  } catch (const backend_error& e) {
    if (e.code() != errc::timeout) throw;
  }
}

// Asks when wanted (first at start, then after a caller's report), at most once per slice, and
// listens for failovers in between. A sentinel that fails is replaced on the next slice.
void sentinel_locator::watcher_loop(watcher& w) {
  std::unique_ptr<connection> sub;
  for (;;) {
    bool ask_now;
    {
      std::unique_lock<std::mutex> lock(w.mutex);
      if (w.stopping) return;
      ask_now = w.wanted;
      w.wanted = false;
    }
    if (ask_now) {
      std::lock_guard<std::mutex> one_at_a_time(*ask_mutex_);
      try {
        set_master(ask_sentinels());
      } catch (const backend_error&) {
        std::lock_guard<std::mutex> lock(w.mutex);
        w.wanted = true;  // try again next slice
      }
    }
    try {
      if (!sub) sub = subscribe();
      listen(*sub, steady_ms() + listen_slice_ms);
    } catch (const backend_error&) {
      sub.reset();
      std::unique_lock<std::mutex> lock(w.mutex);
      w.cv.wait_for(lock, std::chrono::milliseconds(listen_slice_ms), [&] { return w.stopping; });
    }
  }
}

void sentinel_locator::ensure_watcher() {
  std::lock_guard<std::mutex> guard(watcher_guard_);
  if (watcher_) return;
  auto w = std::make_unique<watcher>();
  w->thread = std::thread([this, state = w.get()] { watcher_loop(*state); });
  watcher_ = std::move(w);
}

void sentinel_locator::wake_watcher() {
  std::lock_guard<std::mutex> guard(watcher_guard_);
  if (!watcher_) return;
  std::lock_guard<std::mutex> lock(watcher_->mutex);
  watcher_->wanted = true;
}

// As in slot_map (cluster_slots.cpp): the locks not held across I/O are held across fork(); in the
// child the watcher thread does not exist, so its state and the ask lock (held across I/O) are
// leaked and replaced, and the next call starts a watcher of the child's own.
void sentinel_locator::before_fork() noexcept {
  watcher_guard_.lock();
  mutex_.lock();
}

void sentinel_locator::after_fork_parent() noexcept {
  mutex_.unlock();
  watcher_guard_.unlock();
}

void sentinel_locator::after_fork_child() noexcept {
  (void)watcher_.release();
  (void)ask_mutex_.release();
  ask_mutex_ = std::make_unique<std::mutex>();
  mutex_.unlock();
  watcher_guard_.unlock();
}

}  // namespace httpcache::detail
