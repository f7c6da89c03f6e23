// SPDX-License-Identifier: MIT
// The links, their handshake (CLIENT ID; CLIENT TRACKING ... REDIRECT; SUBSCRIBE), their PINGs and
// the messages they hear, driven by one thread that waits on every link at once.
#include "tracking.hpp"

#include <hiredis/hiredis.h>

#include <mutex>
#include <thread>

#include "../clock.hpp"
#include "commands.hpp"
#include "../fork.hpp"

namespace httpcache::detail {

namespace {

constexpr std::uint64_t not_covering = ~0ull;
constexpr std::int64_t ping_every_ms = 250;
constexpr std::int64_t targets_every_ms = 100;  // how soon a change of the store's nodes is seen
constexpr std::int64_t max_backoff_ms = 1000;
constexpr std::string_view channel = "__redis__:invalidate";

std::string_view text_of(const redisReply* r) { return r->str ? std::string_view(r->str, r->len) : std::string_view(); }

// One node's link.
struct link {
  enum class state { identifying, subscribing, live } at = state::identifying;
  std::unique_ptr<connection> conn;
  std::size_t setup_replies = 0;    // AUTH/SELECT replies still to come before CLIENT ID's
  bool tracking_confirmed = false;  // CLIENT TRACKING's +OK
  std::int64_t deadline_ms = 0;     // the handshake's
  std::int64_t next_ping_ms = 0;
  std::int64_t ping_sent_ms = 0;    // 0: no PING unanswered
  unsigned wants = 0;
};

class tracking_feed final : public invalidation_feed, private fork_participant {
 public:
  tracking_feed(const backend_url& auth, const backend_options& options, const tls_client* tls, targets_fn targets,
                const std::atomic<std::uint64_t>* topology, std::vector<std::string> prefixes,
                invalidation_sink& sink)
      : auth_(auth),
        options_(options),
        tls_(tls),
        targets_(std::move(targets)),
        topology_(topology),
        prefixes_(std::move(prefixes)),
        sink_(sink) {
    std::lock_guard<std::mutex> lock(start_mutex_);
    start_locked();
  }

  ~tracking_feed() override {
    std::unique_ptr<runner> r;
    {
      std::lock_guard<std::mutex> lock(start_mutex_);
      r = std::move(runner_);
    }
    if (r) r->stop();
  }

  bool covers() noexcept override {
    if (started_by_.load(std::memory_order_relaxed) != current_pid()) start_here();
    const std::uint64_t c = covered_.load(std::memory_order_acquire);
    return c != not_covering && c == (topology_ ? topology_->load(std::memory_order_acquire) : 0);
  }

 private:
  // The thread and what wakes it; one per process (a forked child starts its own).
  struct runner {
    std::thread thread;
    net::socket_t wake[2] = {net::invalid_socket, net::invalid_socket};
    std::atomic<bool> stopping{false};
    void stop() {
      stopping = true;
      int err = 0;
      const char byte = 1;
      net::send_some(wake[1], &byte, 1, &err);
      if (thread.joinable()) thread.join();
      net::close(wake[0]);
      net::close(wake[1]);
    }
  };

  void start_locked() {
    auto r = std::make_unique<runner>();
    int err = 0;
    if (!net::wake_pair(r->wake, &err))
      throw backend_error(errc::backend, "near cache: cannot make a wake-up socket pair: " + net::error_text(err));
    runner* self = r.get();
    r->thread = std::thread([this, self] { run(*self); });
    runner_ = std::move(r);
    started_by_.store(current_pid(), std::memory_order_relaxed);
  }

  void start_here() noexcept {
    std::lock_guard<std::mutex> lock(start_mutex_);
    if (started_by_.load(std::memory_order_relaxed) == current_pid()) return;
    try {
      start_locked();
    } catch (...) {
      // Not covering: the tier serves nothing until a later call starts the feed.
    }
  }

  // ---- the thread ----

  void run(runner& r) {
    std::vector<link> links;
    bool linked = false;
    std::uint64_t linked_version = 0;
    std::int64_t retry_at = 0, backoff = 50, next_check = 0;
    while (!r.stopping.load()) {
      std::int64_t now = steady_ms();
      if (now >= next_check) {
        next_check = now + targets_every_ms;
        std::optional<watch_targets> t;
        try {
          t = targets_();
        } catch (...) {
        }
        if (linked && (!t || t->version != linked_version)) {
          lose();
          links.clear();
          note_sockets(links);  // before their numbers can be reused
          linked = false;
        }
        if (!linked && t && now >= retry_at) {
          try {
            links = connect(*t, now);
            note_sockets(links);
            linked_version = t->version;
            linked = true;
          } catch (...) {  // no address, no memory, a TLS setting refused: as a failed link
            retry_at = now + backoff;
            backoff = std::min(backoff * 2, max_backoff_ms);
          }
        }
      }
      if (linked && covered_.load() != linked_version && all_live(links)) {
        covered_.store(linked_version, std::memory_order_release);
        backoff = 50;
      }
      note_sockets(links);
      wait(r, links, linked ? next_check : std::max(retry_at, next_check));
      now = steady_ms();
      try {
        for (auto& l : links) step(l, now);
      } catch (...) {  // a failed link, or anything else (no memory): all links again
        lose();
        links.clear();
        note_sockets(links);  // before their numbers can be reused
        linked = false;
        retry_at = now + backoff;
        backoff = std::min(backoff * 2, max_backoff_ms);
      }
    }
    links.clear();
    note_sockets(links);
    lose();
  }

  // The links' sockets as they are now, for a forked child to close (after_fork_child): a child
  // never uses its parent's links, and keeping them open would keep the server's side of each
  // (subscribed, tracked, its reports piling up) alive as long as the child lives.
  void note_sockets(const std::vector<link>& links) {
    std::lock_guard<std::mutex> lock(sockets_mutex_);
    sockets_.clear();
    for (const auto& l : links) sockets_.push_back(l.conn->fd());
  }

  static bool all_live(const std::vector<link>& links) {
    for (const auto& l : links)
      if (l.at != link::state::live) return false;
    return true;
  }

  // Coverage ends, and with it everything the tier kept (only once per loss).
  void lose() noexcept {
    if (covered_.exchange(not_covering, std::memory_order_acq_rel) != not_covering) sink_.invalidated_all();
  }

  std::vector<link> connect(const watch_targets& t, std::int64_t now) {
    std::vector<link> links;
    for (const auto& node : t.nodes) {
      link l;
      l.conn = std::make_unique<connection>(node, tls_, node.name());
      std::string db_text;
      auto setup = connection_setup(auth_, db_text);
      for (const auto& cmd : setup) l.conn->append(cmd);
      l.setup_replies = setup.size();
      command id;
      id.add("CLIENT");
      id.add("ID");
      l.conn->append(id);
      l.deadline_ms = now + options_.connect_timeout_ms + options_.command_timeout_ms;
      l.wants = net::want_write;
      links.push_back(std::move(l));
    }
    return links;
  }

  // Waits until a link is ready, the wake socket is, or the earliest deadline (never past `until`).
  void wait(runner& r, std::vector<link>& links, std::int64_t until) {
    std::vector<net::watched> ws;
    ws.push_back({r.wake[0], net::want_read, 0});
    for (const auto& l : links) {
      ws.push_back({l.conn->fd(), l.wants | net::want_read, 0});
      until = std::min(until, l.at == link::state::live
                                  ? (l.ping_sent_ms ? l.ping_sent_ms + options_.command_timeout_ms : l.next_ping_ms)
                                  : l.deadline_ms);
    }
    int err = 0;
    net::wait_any(ws, static_cast<int>(std::max<std::int64_t>(0, until - steady_ms())), &err);
    if (ws[0].ready) {
      char drain[64];
      while (net::recv_some(r.wake[0], drain, sizeof drain, &err) > 0) {
      }
    }
    for (std::size_t i = 0; i < links.size(); ++i) links[i].wants = ws[i + 1].ready;  // ready, for step()
  }

  // Advances a link with what wait() found ready, handles its replies, sends its PING when due.
  void step(link& l, std::int64_t now) {
    l.conn->advance(l.wants);
    while (reply_ptr reply = l.conn->take_reply()) handle(l, reply.get(), now);
    if (l.at != link::state::live) {
      if (now >= l.deadline_ms) throw backend_error(errc::timeout, "near cache: link handshake timed out");
    } else if (l.ping_sent_ms) {
      if (now - l.ping_sent_ms >= options_.command_timeout_ms)
        throw backend_error(errc::timeout, "near cache: link PING unanswered");
    } else if (now >= l.next_ping_ms) {
      command ping;
      ping.add("PING");
      l.conn->append(ping);
      l.ping_sent_ms = now;
    }
    l.wants = l.conn->advance(0);
  }

  void handle(link& l, const redisReply* r, std::int64_t now) {
    if (r->type == REDIS_REPLY_ERROR)
      throw backend_error(errc::backend, "near cache: link refused: " + std::string(text_of(r)));
    switch (l.at) {
      case link::state::identifying:
        if (l.setup_replies) {
          --l.setup_replies;
          return;
        }
        if (r->type != REDIS_REPLY_INTEGER) throw backend_error(errc::backend, "near cache: CLIENT ID: unexpected reply");
        subscribe(l, r->integer);
        l.at = link::state::subscribing;
        return;
      case link::state::subscribing:
        if (!l.tracking_confirmed) {
          l.tracking_confirmed = true;  // +OK
          return;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || text_of(r->element[0]) != "subscribe")
          throw backend_error(errc::backend, "near cache: SUBSCRIBE: unexpected reply");
        l.at = link::state::live;
        l.next_ping_ms = now + ping_every_ms;
        return;
      case link::state::live:
        heard(l, r, now);
        return;
    }
  }

  void subscribe(link& l, long long id) {
    const std::string id_text = std::to_string(id);
    command tracking;
    for (std::string_view part : {std::string_view("CLIENT"), std::string_view("TRACKING"), std::string_view("ON"),
                                  std::string_view("REDIRECT"), std::string_view(id_text), std::string_view("BCAST")})
      tracking.add(part);
    for (const auto& p : prefixes_) {
      tracking.add("PREFIX");
      tracking.add(p);
    }
    l.conn->append(tracking);
    command sub;
    sub.add("SUBSCRIBE");
    sub.add(channel);
    l.conn->append(sub);
  }

  void heard(link& l, const redisReply* r, std::int64_t now) {
    if (read_report(r, sink_) == report::pong) {
      l.ping_sent_ms = 0;
      l.next_ping_ms = now + ping_every_ms;
    }
  }

  // ---- fork: the child has no thread; its first covers() starts one ----

  void before_fork() noexcept override {
    start_mutex_.lock();
    sockets_mutex_.lock();
  }
  void after_fork_parent() noexcept override {
    sockets_mutex_.unlock();
    start_mutex_.unlock();
  }
  void after_fork_child() noexcept override {
    covered_.store(not_covering);
    for (net::socket_t fd : sockets_) net::close(fd);  // our copies only: no I/O
    sockets_.clear();
    sockets_mutex_.unlock();
    // The parent's thread does not exist here: its runner is abandoned, its sockets closed.
    if (runner_) {
      net::close(runner_->wake[0]);
      net::close(runner_->wake[1]);
      (void)runner_.release();
    }
    start_mutex_.unlock();
  }

  const backend_url auth_;
  const backend_options options_;
  const tls_client* const tls_;
  const targets_fn targets_;
  const std::atomic<std::uint64_t>* const topology_;
  const std::vector<std::string> prefixes_;
  invalidation_sink& sink_;
  std::atomic<std::uint64_t> covered_{not_covering};  // the targets' version every link covers
  std::atomic<pid_t> started_by_{0};
  std::mutex sockets_mutex_;  // guards sockets_
  std::vector<net::socket_t> sockets_;
  std::mutex start_mutex_;  // guards runner_
  std::unique_ptr<runner> runner_;
  fork_registration registered_{*this};  // last: registered once the rest exists
};

}  // namespace

report read_report(const redisReply* r, invalidation_sink& sink) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) return report::other;
  const std::string_view kind = text_of(r->element[0]);
  if (kind == "pong") return report::pong;
  if (kind != "message" || r->elements < 3 || text_of(r->element[1]) != channel) return report::other;
  const redisReply* keys = r->element[2];
  if (keys->type == REDIS_REPLY_ARRAY) {
    for (std::size_t i = 0; i < keys->elements; ++i)
      if (keys->element[i]->type == REDIS_REPLY_STRING) sink.invalidated(text_of(keys->element[i]));
    return report::keys;
  }
  if (keys->type == REDIS_REPLY_STRING) {
    sink.invalidated(text_of(keys));
    return report::keys;
  }
  sink.invalidated_all();  // a null list: FLUSHDB / FLUSHALL
  return report::flush;
}

std::unique_ptr<invalidation_feed> make_tracking_feed(const backend_url& auth, const backend_options& options,
                                                      const tls_client* tls, targets_fn targets,
                                                      const std::atomic<std::uint64_t>* topology,
                                                      std::vector<std::string> prefixes, invalidation_sink& sink) {
  return std::make_unique<tracking_feed>(auth, options, tls, std::move(targets), topology, std::move(prefixes),
                                         sink);
}

}  // namespace httpcache::detail
