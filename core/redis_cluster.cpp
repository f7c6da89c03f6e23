// SPDX-License-Identifier: MIT
#include "redis_cluster.hpp"

#include <fmt/format.h>

#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>

#include "clock.hpp"
#include "redis_async.hpp"
#include "redis_pool.hpp"

namespace httpcache {

namespace {

constexpr int slot_count = 16384;
constexpr int max_redirects = 5;

constexpr std::array<std::uint16_t, 256> make_crc16_table() {
  std::array<std::uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    table[i] = crc;
  }
  return table;
}
constexpr auto crc16_table = make_crc16_table();

std::uint16_t crc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (unsigned char c : data)
    crc = static_cast<std::uint16_t>((crc << 8) ^ crc16_table[((crc >> 8) ^ c) & 0xff]);
  return crc;
}

using detail::command;
using detail::redis_pool;
using detail::reply_ptr;

struct redirect {
  enum class kind { none, moved, ask } what = kind::none;
  int slot = 0;
  std::string host;
  int port = 0;
};

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" (an empty host means "the same host").
redirect parse_redirect_text(std::string_view text, const std::string& current_host) {
  redirect out;
  if (text.rfind("MOVED ", 0) == 0) out.what = redirect::kind::moved;
  else if (text.rfind("ASK ", 0) == 0) out.what = redirect::kind::ask;
  else return out;
  text.remove_prefix(text.find(' ') + 1);
  auto space = text.find(' ');
  auto colon = text.rfind(':');
  if (space == std::string_view::npos || colon == std::string_view::npos || colon < space) {
    out.what = redirect::kind::none;
    return out;
  }
  std::from_chars(text.data(), text.data() + space, out.slot);
  out.host.assign(text.substr(space + 1, colon - space - 1));
  if (out.host.empty()) out.host = current_host;
  std::from_chars(text.data() + colon + 1, text.data() + text.size(), out.port);
  return out;
}

redirect parse_redirect(const redisReply* r, const std::string& current_host) {
  if (r->type != REDIS_REPLY_ERROR) return {};
  return parse_redirect_text(std::string_view(r->str, r->len), current_host);
}

class redis_cluster final : public backend {
 public:
  redis_cluster(backend_url url, backend_options options) : url_(std::move(url)), options_(options) {
    slot_owner_.fill(-1);
    for (const auto& [host, port] : url_.seeds) node_index(host, port);
  }

  ~redis_cluster() override {
    {
      std::lock_guard<std::mutex> lock(refresher_mutex_);
      stopping_ = true;
    }
    refresher_cv_.notify_one();
    if (refresher_.joinable()) refresher_.join();
  }

  lookup_result get(std::string_view key) override {
    command get = detail::get_command(key), pttl = detail::pttl_command(key);
    return on_key(key, {&get, &pttl}, [](std::vector<reply_ptr>& r) {  // same key: same node, one round trip
      return detail::parse_lookup(r[0].get(), r[1].get());
    });
  }

  void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) override {
    std::string ttl_text;
    command set = detail::set_command(key, value, ttl_ms, ttl_text);
    on_key(key, {&set}, [](std::vector<reply_ptr>& r) {
      detail::throw_if_error(r[0].get());
      return 0;
    });
  }

  // Keys are grouped by node and each group is sent as one pipeline of single-key DELs (a
  // multi-key DEL must stay within one slot): one round trip per node.
  std::size_t del(const std::vector<std::string_view>& keys) override {
    std::map<int, std::vector<std::string_view>> by_node;
    for (auto key : keys) by_node[owner_of(cluster_key_slot(key))].push_back(key);
    std::size_t deleted = 0;
    for (auto& [node, group] : by_node) {
      std::vector<command> dels;
      dels.reserve(group.size());
      for (auto key : group) dels.push_back(detail::del_command({key}));
      std::vector<const command*> cmds;
      for (const auto& d : dels) cmds.push_back(&d);
      std::vector<reply_ptr> replies;
      try {
        replies = pool(node).exchange(cmds);
      } catch (const backend_error&) {
        refresh_map();
        replies.clear();
      }
      for (std::size_t i = 0; i < group.size(); ++i) {
        const redisReply* r = i < replies.size() ? replies[i].get() : nullptr;
        if (r && r->type == REDIS_REPLY_INTEGER) {
          deleted += static_cast<std::size_t>(r->integer);
          continue;
        }
        if (r && r->type == REDIS_REPLY_ERROR && parse_redirect(r, {}).what == redirect::kind::none)
          detail::throw_if_error(r);
        // Redirected, or the node failed: this key goes alone through the redirect-aware path.
        deleted += del_one(group[i]);
      }
    }
    return deleted;
  }

  bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) override {
    std::string ttl_text = std::to_string(ttl_ms);
    command lock = detail::lock_command(lock_key, token, ttl_text);
    return on_key(lock_key, {&lock}, [](std::vector<reply_ptr>& r) {
      detail::throw_if_error(r[0].get());
      return r[0]->type == REDIS_REPLY_STATUS;
    });
  }

  void unlock(std::string_view lock_key, std::string_view token) override {
    command unlock = detail::unlock_command(lock_key, token);
    on_key(lock_key, {&unlock}, [](std::vector<reply_ptr>& r) {
      detail::throw_if_error(r[0].get());
      return 0;
    });
  }

  std::unique_ptr<async_session> open_async(watch_fn watch) override;

  // For non-blocking sessions, which must never wait on I/O: the owner of a slot if the map
  // knows it (no fetching), and a refresh done by a background thread.
  std::optional<detail::endpoint> known_owner(std::uint16_t slot) {
    std::shared_lock<std::shared_mutex> lock(map_mutex_);
    int owner = slot_owner_[slot];
    if (owner < 0) return std::nullopt;
    return nodes_[static_cast<std::size_t>(owner)]->where();
  }

  void request_refresh() {
    {
      std::lock_guard<std::mutex> lock(refresher_mutex_);
      refresh_wanted_ = true;
      if (!refresher_.joinable()) refresher_ = std::thread([this] { refresher_loop(); });
    }
    refresher_cv_.notify_one();
  }

  // Asks for the map in the background if it is still unknown (a non-blocking session opening
  // must not wait for it: until it arrives, requests fail open).
  void prefetch_map() {
    bool known;
    {
      std::shared_lock<std::shared_mutex> lock(map_mutex_);
      known = slot_owner_[0] >= 0;
    }
    if (!known) request_refresh();
  }

  void note_moved(int slot, const std::string& host, int port) {
    int node = node_index(host, port);
    std::unique_lock<std::shared_mutex> lock(map_mutex_);
    slot_owner_[static_cast<std::size_t>(slot)] = node;
  }
  const backend_url& url() const { return url_; }
  const backend_options& options() const { return options_; }

 private:
  std::size_t del_one(std::string_view key) {
    command del = detail::del_command({key});
    return on_key(key, {&del}, [](std::vector<reply_ptr>& r) {
      detail::throw_if_error(r[0].get());
      return static_cast<std::size_t>(r[0]->type == REDIS_REPLY_INTEGER ? r[0]->integer : 0);
    });
  }

  // Sends commands that all concern `key` to the node owning its slot, following MOVED (the slot
  // map is corrected) and ASK (one ASKING hop) redirections, at most max_redirects times. A node
  // that cannot be reached makes the map be fetched again, and the call is retried once.
  template <typename Parse>
  auto on_key(std::string_view key, std::vector<const command*> cmds, Parse&& parse)
      -> decltype(parse(std::declval<std::vector<reply_ptr>&>())) {
    const std::uint16_t slot = cluster_key_slot(key);
    int ask_node = -1;
    bool refreshed = false;
    command asking;
    asking.add("ASKING");
    for (int hop = 0; hop <= max_redirects; ++hop) {
      const int node = ask_node >= 0 ? ask_node : owner_of(slot);
      redis_pool& target = pool(node);
      std::vector<const command*> send;
      if (ask_node >= 0) send.push_back(&asking);
      send.insert(send.end(), cmds.begin(), cmds.end());
      std::vector<reply_ptr> replies;
      try {
        replies = target.exchange(send);
      } catch (const backend_error& e) {
        if (refreshed || e.code() == errc::timeout) throw;
        refresh_map();  // the node may be gone (failover): learn the new owner and retry once
        refreshed = true;
        ask_node = -1;
        continue;
      }
      if (ask_node >= 0) replies.erase(replies.begin());  // ASKING's +OK
      redirect r;
      for (const auto& reply : replies) {
        r = parse_redirect(reply.get(), target.where().host);
        if (r.what != redirect::kind::none) break;
      }
      if (r.what == redirect::kind::none) return parse(replies);
      if (r.what == redirect::kind::moved) {
        note_moved(r.slot, r.host, r.port);
        ask_node = -1;
      } else {
        ask_node = node_index(r.host, r.port);
      }
    }
    throw backend_error(errc::backend, fmt::format("more than {} cluster redirections for one key", max_redirects));
  }

  int owner_of(std::uint16_t slot) {
    {
      std::shared_lock<std::shared_mutex> lock(map_mutex_);
      int owner = slot_owner_[slot];
      if (owner >= 0) return owner;
    }
    refresh_map();
    std::shared_lock<std::shared_mutex> lock(map_mutex_);
    int owner = slot_owner_[slot];
    if (owner < 0) throw backend_error(errc::backend, fmt::format("no cluster node serves slot {}", slot));
    return owner;
  }

  redis_pool& pool(int node) {
    std::shared_lock<std::shared_mutex> lock(map_mutex_);
    return *nodes_[static_cast<std::size_t>(node)];  // pools are never removed, so the reference stays valid
  }

  int node_index(const std::string& host, int port) {
    const std::string name = fmt::format("{}:{}", host, port);
    {
      std::shared_lock<std::shared_mutex> lock(map_mutex_);
      if (auto it = index_.find(name); it != index_.end()) return it->second;
    }
    std::unique_lock<std::shared_mutex> lock(map_mutex_);
    if (auto it = index_.find(name); it != index_.end()) return it->second;
    detail::endpoint e;
    e.host = host;
    e.port = port;
    nodes_.push_back(std::make_unique<redis_pool>(e, url_, options_));
    index_.emplace(name, static_cast<int>(nodes_.size() - 1));
    return static_cast<int>(nodes_.size() - 1);
  }

  // Asks the known nodes, one after the other, for CLUSTER SLOTS and installs the first answer.
  void refresh_map() {
    std::lock_guard<std::mutex> one_at_a_time(refresh_mutex_);
    command slots;
    slots.add("CLUSTER");
    slots.add("SLOTS");
    std::size_t known;
    {
      std::shared_lock<std::shared_mutex> lock(map_mutex_);
      known = nodes_.size();
    }
    std::string last_error = "no cluster node is known";
    for (std::size_t i = 0; i < known; ++i) {
      redis_pool& node = pool(static_cast<int>(i));
      try {
        auto replies = node.exchange({&slots});
        detail::throw_if_error(replies[0].get());
        install_map(replies[0].get(), node.where().host);
        return;
      } catch (const backend_error& e) {
        last_error = e.what();
      }
    }
    throw backend_error(errc::backend, "cannot read the cluster slot map: " + last_error);
  }

  // At most one refresh per 100 ms, whatever the number of failing requests asking for one.
  void refresher_loop() {
    std::unique_lock<std::mutex> lock(refresher_mutex_);
    while (!stopping_) {
      refresher_cv_.wait(lock, [&] { return refresh_wanted_ || stopping_; });
      if (stopping_) break;
      refresh_wanted_ = false;
      lock.unlock();
      try {
        refresh_map();
      } catch (const backend_error&) {
      }
      lock.lock();
      refresher_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; });
    }
  }

  void install_map(const redisReply* reply, const std::string& answering_host) {
    if (reply->type != REDIS_REPLY_ARRAY) throw backend_error(errc::backend, "CLUSTER SLOTS: unexpected reply");
    std::array<int, slot_count> owners;
    owners.fill(-1);
    for (std::size_t i = 0; i < reply->elements; ++i) {
      const redisReply* range = reply->element[i];
      if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
      const redisReply* master = range->element[2];
      if (master->type != REDIS_REPLY_ARRAY || master->elements < 2) continue;
      std::string host(master->element[0]->str ? master->element[0]->str : "", master->element[0]->len);
      if (host.empty()) host = answering_host;  // a node that does not know its own address
      int node = node_index(host, static_cast<int>(master->element[1]->integer));
      long long first = range->element[0]->integer, last = range->element[1]->integer;
      for (long long s = std::max(0LL, first); s <= last && s < slot_count; ++s) owners[static_cast<std::size_t>(s)] = node;
    }
    std::unique_lock<std::shared_mutex> lock(map_mutex_);
    slot_owner_ = owners;
  }

  const backend_url url_;
  const backend_options options_;
  std::shared_mutex map_mutex_;
  std::array<int, slot_count> slot_owner_;
  std::vector<std::unique_ptr<redis_pool>> nodes_;
  std::map<std::string, int> index_;
  std::mutex refresh_mutex_;
  std::mutex refresher_mutex_;
  std::condition_variable refresher_cv_;
  bool refresh_wanted_ = false;
  bool stopping_ = false;
  std::thread refresher_;
};

// Non-blocking access to a cluster: one non-blocking connection per node, all of them watched
// through one epoll descriptor, which is the only descriptor the host loop sees. So the public
// async API (one fd, process(events)) serves a cluster unchanged. Redirections are not followed
// here (that would mean waiting): a MOVED reply corrects the slot map and the request fails open;
// the next request goes to the right node. Node failures ask the cluster for a background refresh,
// and so does opening a session before any blocking call has loaded the map: nothing here waits.
class cluster_session final : public async_session {
 public:
  cluster_session(redis_cluster& cluster, watch_fn watch) : cluster_(cluster), watch_(std::move(watch)) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw backend_error(errc::backend, "epoll_create1 failed");
    cluster_.prefetch_map();
    if (watch_) watch_(epoll_fd_, event_read);
  }

  ~cluster_session() override {
    for (auto& w : waiting_) {  // never sent: canceled, like the requests in flight
      if (w.what == waiting::kind::get) w.get_done(static_cast<int>(errc::canceled), {}, 0);
      else w.count_done(static_cast<int>(errc::canceled), 0);
    }
    waiting_.clear();
    nodes_.clear();  // cancels what is pending (callbacks run now) and unregisters the node sockets
    if (watch_) watch_(epoll_fd_, 0);
    ::close(epoll_fd_);
  }

  void get(const std::string& key, get_done_fn done) override {
    if (must_wait(key)) return park(waiting{waiting::kind::get, key, {}, 0, {}, std::move(done), nullptr});
    async_session* node = node_for(key);
    if (!node) return done(static_cast<int>(errc::backend), {}, 0);
    node->get(key, [c = &cluster_, done = std::move(done)](int status, std::string_view value, std::int64_t ttl) {
      if (is_failure(status)) c->request_refresh();
      done(status, value, ttl);
    });
  }

  void set(const std::string& key, std::string_view value, std::int64_t ttl_ms, count_done_fn done) override {
    if (must_wait(key))
      return park(waiting{waiting::kind::set, key, std::string(value), ttl_ms, {}, nullptr, std::move(done)});
    async_session* node = node_for(key);
    if (!node) return done(static_cast<int>(errc::backend), 0);
    node->set(key, value, ttl_ms, refreshing(std::move(done)));
  }

  // One single-key DEL per key (a multi-key DEL must stay within one slot), pipelined on each
  // node's connection; one completion with the total when the last one answers.
  void del(const std::vector<std::string>& keys, count_done_fn done) override {
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
        finish_one(static_cast<int>(errc::backend), 0);
        continue;
      }
      node->del({key}, refreshing(std::move(finish_one)));
    }
  }

  void process(unsigned ready) override {
    dispatch_waiting();
    if (ready) {
      epoll_event events[64];
      int n = epoll_wait(epoll_fd_, events, 64, 0);
      for (int i = 0; i < n; ++i) {
        auto it = fd_node_.find(events[i].data.fd);
        if (it == fd_node_.end()) continue;
        auto node = nodes_.find(it->second);
        if (node == nodes_.end()) continue;
        unsigned mapped = 0;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) mapped |= event_read;
        if (events[i].events & (EPOLLOUT | EPOLLERR)) mapped |= event_write;
        node->second->process(mapped);
      }
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
  // Requests that arrive before the slot map is known wait here (the map is fetched by the
  // background thread); the host's timer calls process(), which sends them once it is known, or
  // fails them open at their deadline. So the loop never waits for the map.
  struct waiting {
    enum class kind { get, set, del } what;
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
        }
      } else if (now >= w.deadline_ms) {
        if (w.what == waiting::kind::get) w.get_done(static_cast<int>(errc::timeout), {}, 0);
        else w.count_done(static_cast<int>(errc::timeout), 0);
      } else {
        still.push_back(std::move(w));
      }
    }
    for (auto& w : still) waiting_.push_back(std::move(w));
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
    auto session = make_redis_session(node_url, cluster_.options(),
                                      [this, name](int fd, unsigned events) { watch_node(name, fd, events); }, on_error);
    return nodes_.emplace(name, std::move(session)).first->second.get();
  }

  void watch_node(const std::string& name, int fd, unsigned events) {
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

  redis_cluster& cluster_;
  const watch_fn watch_;
  int epoll_fd_ = -1;
  std::map<int, std::string> fd_node_;
  std::map<std::string, std::unique_ptr<async_session>> nodes_;
  std::deque<waiting> waiting_;
};

std::unique_ptr<async_session> redis_cluster::open_async(watch_fn watch) {
  return std::make_unique<cluster_session>(*this, std::move(watch));
}

}  // namespace

std::uint16_t cluster_key_slot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<std::uint16_t>(crc16(key) & (slot_count - 1));
}

std::unique_ptr<backend> make_redis_cluster_backend(const backend_url& url, const backend_options& options) {
  return std::make_unique<redis_cluster>(url, options);
}

}  // namespace httpcache
