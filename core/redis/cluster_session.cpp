// SPDX-License-Identifier: MIT
// Non-blocking access to a cluster: one non-blocking connection per node. On Linux all of them
// are watched through one epoll descriptor, which is the only descriptor the host loop sees, so
// the public async API (one fd, process(events)) serves a cluster unchanged. Windows has no
// epoll: there the host watches each node's socket, and process() asks select() which of them
// is ready (node_sockets below). Redirections are not followed
// here (that would mean waiting): a MOVED reply corrects the slot map and the request fails open;
// the next request goes to the right node. Node failures ask the slot map for a background
// refresh, and so does opening a session before any blocking call has loaded the map: nothing
// here waits. epoll is the one Linux-only call of our own, and it stays in this file.
#include "cluster_session.hpp"

#ifndef _WIN32
#include <sys/epoll.h>
#include <unistd.h>
#endif

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "../clock.hpp"
#include "../fork.hpp"
#include "session.hpp"
#include "socket.hpp"

namespace httpcache {

namespace {

using detail::parse_redirect_text;
using detail::redirect;

// The node connections' sockets, as the host sees them, and which of them are ready.
#ifndef _WIN32
// Linux: one epoll set holds them; the host watches only the set's descriptor.
class node_sockets {
 public:
  explicit node_sockets(const watch_fn& host) : host_(host) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw backend_error(errc::backend, "epoll_create1 failed");
    if (host_) host_(epoll_fd_, event_read);
  }
  ~node_sockets() {
    if (epoll_fd_ < 0) return;
    if (host_) host_(epoll_fd_, 0);
    ::close(epoll_fd_);
  }
  void watch(const std::string& name, descriptor fd, unsigned events) {
    if (events == 0) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      fd_node_.erase(fd);
      return;
    }
    epoll_event ev{};
    ev.events = ((events & event_read) ? EPOLLIN : 0u) | ((events & event_write) ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    bool known = fd_node_.count(fd) != 0;
    epoll_ctl(epoll_fd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    fd_node_[fd] = name;
  }
  // Calls ready(node name, events) for each node socket that is ready now.
  template <typename Ready>
  void each_ready(Ready ready) {
    epoll_event events[64];
    int n = epoll_wait(epoll_fd_, events, 64, 0);
    for (int i = 0; i < n; ++i) {
      auto it = fd_node_.find(events[i].data.fd);
      if (it == fd_node_.end()) continue;
      unsigned mapped = 0;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) mapped |= event_read;
      if (events[i].events & (EPOLLOUT | EPOLLERR)) mapped |= event_write;
      ready(it->second, mapped);
    }
  }
  // In a forked child: the epoll set is shared with the parent, so registering or removing a
  // descriptor in it would change the parent's. A new set replaces ours before anything else
  // happens; the host hears the old descriptor is no longer watched and the new one is.
  void replace_inherited() {
    const int inherited = epoll_fd_;
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);  // if it fails, node sockets cannot be watched: requests time out
    fd_node_.clear();
    if (host_) {
      host_(inherited, 0);
      if (epoll_fd_ >= 0) host_(epoll_fd_, event_read);
    }
    ::close(inherited);  // our reference only: the parent's epoll set is untouched
  }

 private:
  const watch_fn& host_;
  int epoll_fd_ = -1;
  std::map<int, std::string> fd_node_;
};
#else
// Windows: the host watches every node socket itself.
class node_sockets {
 public:
  explicit node_sockets(const watch_fn& host) : host_(host) {}
  ~node_sockets() {
    for (const auto& [fd, w] : watched_)
      if (host_) host_(fd, 0);
  }
  void watch(const std::string& name, descriptor fd, unsigned events) {
    if (events == 0) watched_.erase(fd);
    else watched_[fd] = {name, events};
    if (host_) host_(fd, events);
  }
  template <typename Ready>
  void each_ready(Ready ready) {
    std::vector<detail::net::watched> polled;
    for (const auto& [fd, w] : watched_) polled.push_back({fd, w.events, 0});
    int err = 0;
    if (polled.empty() || detail::net::wait_any(polled, 0, &err) <= 0) return;
    std::vector<std::pair<std::string, unsigned>> found;  // ready() may change watched_
    for (const auto& p : polled)
      if (p.ready) found.emplace_back(watched_[p.s].name, p.ready);
    for (const auto& [name, events] : found) ready(name, events);
  }
  void replace_inherited() {}  // no fork() on Windows

 private:
  struct node_watch {
    std::string name;
    unsigned events = 0;
  };
  const watch_fn& host_;
  std::map<descriptor, node_watch> watched_;
};
#endif

class cluster_session final : public async_session {
 public:
  cluster_session(detail::slot_map& cluster, watch_fn watch)
      : cluster_(cluster), watch_(std::move(watch)), sockets_(watch_) {
    cluster_.prefetch_map();
  }

  ~cluster_session() override {
    if (pid_ != detail::current_pid()) forget_inherited();  // never touch the parent's epoll set
    for (auto& w : waiting_) {  // never sent: canceled, like the requests in flight
      if (w.get_done) w.get_done(static_cast<int>(errc::canceled), {}, 0);
      else w.count_done(static_cast<int>(errc::canceled), 0);
    }
    waiting_.clear();
    nodes_.clear();  // cancels what is pending (callbacks run now) and unregisters the node sockets
  }

  void get(const std::string& key, get_done_fn done) override {
    if (pid_ != detail::current_pid()) forget_inherited();
    if (must_wait(key)) return park(waiting{waiting::kind::get, key, {}, 0, {}, std::move(done), nullptr});
    async_session* node = node_for(key);
    if (!node) return done(no_owner(), {}, 0);
    node->get(key, [c = &cluster_, done = std::move(done)](int status, std::string_view value, std::int64_t ttl) {
      if (is_failure(status)) c->request_refresh();
      done(status, value, ttl);
    });
  }

  void set(const std::string& key, std::string_view value, std::int64_t ttl_ms, count_done_fn done) override {
    if (pid_ != detail::current_pid()) forget_inherited();
    if (must_wait(key))
      return park(waiting{waiting::kind::set, key, std::string(value), ttl_ms, {}, nullptr, std::move(done)});
    async_session* node = node_for(key);
    if (!node) return done(no_owner(), 0);
    node->set(key, value, ttl_ms, refreshing(std::move(done)));
  }

  // One single-key DEL per key (a multi-key DEL must stay within one slot), pipelined on each
  // node's connection; one completion with the total when the last one answers.
  void del(const std::vector<std::string>& keys, count_done_fn done) override {
    if (pid_ != detail::current_pid()) forget_inherited();
    if (!keys.empty() && must_wait(keys.front()))
      return park(waiting{waiting::kind::del, {}, {}, 0, keys, nullptr, std::move(done)});
    struct tally {
      std::size_t left;
      std::int64_t deleted = 0;
      int status = 0;
      count_done_fn done;
    };
    auto t = std::make_shared<tally>(tally{keys.size(), 0, 0, std::move(done)});
    for (const auto& key : keys) {
      auto finish_one = [t](int status, std::int64_t n) {
        if (status != 0 && t->status == 0) t->status = status;
        t->deleted += n;
        if (--t->left == 0) t->done(t->status, t->status == 0 ? t->deleted : 0);
      };
      async_session* node = node_for(key);
      if (!node) {
        finish_one(no_owner(), 0);
        continue;
      }
      node->del({key}, refreshing(std::move(finish_one)));
    }
  }

  // Tag stamps and conditional deletes go to the key's owner, parked like a get until it is known.
  void stamp(const std::string& tag_key, const std::string& candidate, std::int64_t ttl_ms, get_done_fn done) override {
    if (pid_ != detail::current_pid()) forget_inherited();
    if (must_wait(tag_key))
      return park(waiting{waiting::kind::stamp, tag_key, candidate, ttl_ms, {}, std::move(done), nullptr});
    async_session* node = node_for(tag_key);
    if (!node) return done(no_owner(), {}, 0);
    node->stamp(tag_key, candidate, ttl_ms, [c = &cluster_, done = std::move(done)](int status, std::string_view g, std::int64_t t) {
      if (is_failure(status)) c->request_refresh();
      done(status, g, t);
    });
  }

  void del_if(const std::string& key, std::string value, count_done_fn done) override {
    if (pid_ != detail::current_pid()) forget_inherited();
    if (must_wait(key)) return park(waiting{waiting::kind::del_if, key, std::move(value), 0, {}, nullptr, std::move(done)});
    async_session* node = node_for(key);
    if (!node) return done(no_owner(), 0);
    node->del_if(key, std::move(value), refreshing(std::move(done)));
  }

  // The entry was read through the key's owner, whose session keeps the expectation.
  void expect(const std::string& key, std::string value) override {
    if (pid_ != detail::current_pid()) forget_inherited();
    if (async_session* node = map_known(key) ? node_for(key) : nullptr) node->expect(key, std::move(value));
  }

  // The lease is held by the node session that answered the miss: the slot's owner.
  void release(const std::string& key, count_done_fn done) override {
    if (pid_ != detail::current_pid()) forget_inherited();
    if (must_wait(key)) return done(0, 0);  // no map, so no miss of ours reached a node
    async_session* node = node_for(key);
    if (!node) return done(0, 0);
    node->release(key, refreshing(std::move(done)));
  }

  void process(unsigned ready) override {
    if (pid_ != detail::current_pid()) {
      forget_inherited();
      ready = 0;  // the host's readiness was about the parent's epoll descriptor
    }
    dispatch_waiting();
    if (ready) {
      sockets_.each_ready([this](const std::string& name, unsigned events) {
        if (auto node = nodes_.find(name); node != nodes_.end()) node->second->process(events);
      });
    }
    for (auto& [name, node] : nodes_) node->process(0);  // deadlines
  }

  std::int64_t timeout_ms() const override {
    std::int64_t soonest = waiting_.empty() ? -1 : poll_waiting_ms;
    for (const auto& [name, node] : nodes_) {
      std::int64_t t = node->timeout_ms();
      if (t >= 0 && (soonest < 0 || t < soonest)) soonest = t;
    }
    return soonest;
  }

  std::size_t pending() const override {
    std::size_t n = waiting_.size();
    for (const auto& [name, node] : nodes_) n += node->pending();
    return n;
  }

 private:
  // In a forked child (fork.hpp), everything this session holds is the parent's: the epoll
  // descriptor and each node's connection. A new epoll set replaces ours before anything else
  // happens (node_sockets::replace_inherited), so the node sessions' teardown below only ever
  // touches the new set; they drop their connections without I/O; requests pending at the fork,
  // in flight or waiting for the map, complete with ECANCELED. Later requests connect anew.
  void forget_inherited() {
    pid_ = detail::current_pid();
    sockets_.replace_inherited();
    std::deque<waiting> parked;
    parked.swap(waiting_);
    auto nodes = std::move(nodes_);
    nodes_.clear();
    nodes.clear();  // completions may start new requests: those go to new node sessions
    for (auto& w : parked) {
      if (w.get_done) w.get_done(static_cast<int>(errc::canceled), {}, 0);
      else w.count_done(static_cast<int>(errc::canceled), 0);
    }
  }

  // Requests that arrive before the slot map is known wait here (the map is fetched by the
  // background thread); the host's timer calls process(), which sends them once it is known, or
  // fails them open at their deadline. So the loop never waits for the map.
  struct waiting {
    enum class kind { get, set, del, stamp, del_if } what;
    std::string key;
    std::string value;
    std::int64_t ttl_ms;
    std::vector<std::string> keys;
    get_done_fn get_done;
    count_done_fn count_done;
    std::int64_t deadline_ms = 0;
  };
  static constexpr std::int64_t poll_waiting_ms = 2;

  bool map_known(const std::string& key) { return cluster_.known_owner(cluster_key_slot(key)).has_value(); }
  // While anything waits, later requests wait behind it: a get must never overtake its set.
  bool must_wait(const std::string& key) { return !waiting_.empty() || !map_known(key); }

  void park(waiting w) {
    w.deadline_ms = steady_ms() + cluster_.options().connect_timeout_ms + cluster_.options().command_timeout_ms;
    waiting_.push_back(std::move(w));
    cluster_.request_refresh();
  }

  void dispatch_waiting() {
    if (waiting_.empty()) return;
    const std::int64_t now = steady_ms();
    std::deque<waiting> still;
    std::deque<waiting> batch;
    batch.swap(waiting_);
    for (auto& w : batch) {
      const std::string& probe = w.what == waiting::kind::del ? w.keys.front() : w.key;
      if (still.empty() && map_known(probe)) {  // in order: nothing overtakes a request still waiting
        switch (w.what) {
          case waiting::kind::get: get(w.key, std::move(w.get_done)); break;
          case waiting::kind::set: set(w.key, w.value, w.ttl_ms, std::move(w.count_done)); break;
          case waiting::kind::del: del(w.keys, std::move(w.count_done)); break;
          case waiting::kind::stamp: stamp(w.key, w.value, w.ttl_ms, std::move(w.get_done)); break;
          case waiting::kind::del_if: del_if(w.key, std::move(w.value), std::move(w.count_done)); break;
        }
      } else if (now >= w.deadline_ms) {
        const int status = note_backend_failure(static_cast<int>(errc::timeout), "the cluster's slot map did not arrive in time");
        if (w.get_done) w.get_done(status, {}, 0);
        else w.count_done(status, 0);
      } else {
        still.push_back(std::move(w));
      }
    }
    for (auto& w : still) waiting_.push_back(std::move(w));
  }

  static int no_owner() {
    return note_backend_failure(static_cast<int>(errc::backend), "no known cluster node serves the key's slot yet");
  }

  static bool is_failure(int status) {
    return status == static_cast<int>(errc::backend) || status == static_cast<int>(errc::timeout);
  }

  count_done_fn refreshing(count_done_fn done) {
    return [c = &cluster_, done = std::move(done)](int status, std::int64_t n) {
      if (is_failure(status)) c->request_refresh();
      done(status, n);
    };
  }

  async_session* node_for(const std::string& key) {
    auto owner = cluster_.known_owner(cluster_key_slot(key));
    if (!owner) {
      cluster_.request_refresh();
      return nullptr;
    }
    const std::string name = owner->name();
    auto it = nodes_.find(name);
    if (it != nodes_.end()) return it->second.get();
    backend_url node_url = cluster_.url();
    node_url.scheme = url_scheme::redis;
    node_url.host = owner->host;
    node_url.port = owner->port;
    node_url.db = 0;
    auto on_error = [c = &cluster_, host = owner->host](std::string_view text) {
      redirect r = parse_redirect_text(text, host);
      if (r.what == redirect::kind::none) return false;
      if (r.what == redirect::kind::moved) c->note_moved(r.slot, r.host, r.port);
      return true;
    };
    session_target target;
    target.tls = cluster_.tls();
    target.on_error_reply = std::move(on_error);
    auto session = make_redis_session(node_url, cluster_.options(),
                                      [this, name](descriptor fd, unsigned events) { sockets_.watch(name, fd, events); },
                                      std::move(target));
    return nodes_.emplace(name, std::move(session)).first->second.get();
  }

  detail::slot_map& cluster_;
  const watch_fn watch_;
  node_sockets sockets_;
  pid_t pid_ = detail::current_pid();  // the process that made the node connections (and the epoll set)
  std::map<std::string, std::unique_ptr<async_session>> nodes_;
  std::deque<waiting> waiting_;
};

}  // namespace

std::unique_ptr<async_session> make_cluster_session(detail::slot_map& map, watch_fn watch) {
  return std::make_unique<cluster_session>(map, std::move(watch));
}

}  // namespace httpcache
