// SPDX-License-Identifier: MIT
// Key slots, MOVED/ASK parsing and the slot map of a Redis Cluster (see cluster_slots.hpp): the
// routing knowledge, kept apart from the blocking and non-blocking ways of using it.
#include "cluster_slots.hpp"

#include "tls.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <new>

namespace httpcache {

namespace {

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

}  // namespace

std::uint16_t cluster_key_slot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<std::uint16_t>(crc16(key) & (detail::cluster_slot_count - 1));
}

}  // namespace httpcache

namespace httpcache::detail {

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

slot_map::slot_map(backend_url url, backend_options options)
    : url_(std::move(url)),
      options_(options),
      tls_(url_.tls.enabled ? std::make_shared<const tls_client>(url_.tls) : nullptr) {
  slot_owner_.fill(-1);
  for (const auto& [host, port] : url_.seeds) node_index(host, port);
}

slot_map::~slot_map() {
  // Only a refresher of this process is here: a forked child drops the parent's (after_fork_child).
  std::unique_ptr<refresher> r;
  {
    std::lock_guard<std::mutex> guard(refresher_guard_);
    r = std::move(refresher_);
  }
  if (!r) return;
  {
    std::lock_guard<std::mutex> lock(r->mutex);
    r->stopping = true;
  }
  r->cv.notify_one();
  r->thread.join();
}

// The map and the refresher pointer are consistent in a child: their locks are held across fork()
// (never across I/O, so fork() waits for no network). Each pool holds its own lock likewise.
void slot_map::before_fork() noexcept {
  refresher_guard_.lock();
  map_mutex_.lock();
}

void slot_map::after_fork_parent() noexcept {
  map_mutex_.unlock();
  refresher_guard_.unlock();
}

// Runs in the child while it has one thread. The refresher thread does not exist here: joining it
// would wait forever, destroying a joinable std::thread calls std::terminate, and its mutex and
// condition variable may be held or waited on by that missing thread. So its state is leaked on
// purpose (a few bytes, once per fork) and never touched again; request_refresh() starts a new
// one on first need. The refresh mutex may be held by that thread too (it is held across I/O):
// it is leaked and replaced likewise.
void slot_map::after_fork_child() noexcept {
  (void)refresher_.release();
  (void)refresh_mutex_.release();
  refresh_mutex_ = std::make_unique<std::mutex>();
  // A glibc rwlock records its writer's thread id, which the child's thread does not have: unlock
  // would take it for a reader's and leave it write-locked. Being the only thread, the child makes
  // it anew over the old one instead (never destroyed: destroying a locked rwlock is undefined).
  new (&map_mutex_) std::shared_mutex;
  refresher_guard_.unlock();
}

std::optional<endpoint> slot_map::known_owner(std::uint16_t slot) {
  std::shared_lock<std::shared_mutex> lock(map_mutex_);
  int owner = slot_owner_[slot];
  if (owner < 0) return std::nullopt;
  return nodes_[static_cast<std::size_t>(owner)]->where();
}

void slot_map::request_refresh() {
  std::lock_guard<std::mutex> guard(refresher_guard_);
  if (!refresher_) {
    auto r = std::make_unique<refresher>();
    r->thread = std::thread([this, state = r.get()] { refresher_loop(*state); });
    refresher_ = std::move(r);
  }
  {
    std::lock_guard<std::mutex> lock(refresher_->mutex);
    refresher_->wanted = true;
  }
  refresher_->cv.notify_one();
}

void slot_map::prefetch_map() {
  bool known;
  {
    std::shared_lock<std::shared_mutex> lock(map_mutex_);
    known = slot_owner_[0] >= 0;
  }
  if (!known) request_refresh();
}

void slot_map::note_moved(int slot, const std::string& host, int port) {
  int node = node_index(host, port);
  std::unique_lock<std::shared_mutex> lock(map_mutex_);
  slot_owner_[static_cast<std::size_t>(slot)] = node;
  note_owners_locked();
}

void slot_map::note_owners_locked() {
  std::vector<bool> seen(nodes_.size() + 1, false);
  std::vector<int> owners;
  for (int o : slot_owner_)
    if (o >= 0 && !seen[static_cast<std::size_t>(o)]) {
      seen[static_cast<std::size_t>(o)] = true;
      owners.push_back(o);
    }
  std::sort(owners.begin(), owners.end());
  asked_.clear();  // the map was read again, or a MOVED came: an importing node that took its
                   // slots is an owner now; one still importing is added again by its next ASK
  if (owners == owner_set_) return;
  owners_version_.fetch_add(1, std::memory_order_acq_rel);
  owner_set_ = std::move(owners);
}

void slot_map::note_asked(int node) {
  std::unique_lock<std::shared_mutex> lock(map_mutex_);
  if (std::find(owner_set_.begin(), owner_set_.end(), node) != owner_set_.end() ||
      std::find(asked_.begin(), asked_.end(), node) != asked_.end())
    return;
  asked_.push_back(node);
  owners_version_.fetch_add(1, std::memory_order_acq_rel);
}

std::optional<std::pair<std::uint64_t, std::vector<endpoint>>> slot_map::owners() {
  std::shared_lock<std::shared_mutex> lock(map_mutex_);
  if (owner_set_.empty()) return std::nullopt;
  std::vector<endpoint> where;
  for (int o : owner_set_) where.push_back(nodes_[static_cast<std::size_t>(o)]->where());
  for (int a : asked_) where.push_back(nodes_[static_cast<std::size_t>(a)]->where());
  return std::make_pair(owners_version_.load(std::memory_order_acquire), std::move(where));
}

int slot_map::owner_of(std::uint16_t slot) {
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

redis_pool& slot_map::pool(int node) {
  std::shared_lock<std::shared_mutex> lock(map_mutex_);
  return *nodes_[static_cast<std::size_t>(node)];  // pools are never removed, so the reference stays valid
}

int slot_map::node_index(const std::string& host, int port) {
  const std::string name = fmt::format("{}:{}", host, port);
  {
    std::shared_lock<std::shared_mutex> lock(map_mutex_);
    if (auto it = index_.find(name); it != index_.end()) return it->second;
  }
  // The pool is made (and registered for fork) before the map's lock is taken: the fork handler
  // takes the map's lock while holding the registry, so the reverse order could deadlock.
  endpoint e;
  e.host = host;
  e.port = port;
  auto made = std::make_unique<redis_pool>(e, url_, options_, tls_.get());
  std::unique_lock<std::shared_mutex> lock(map_mutex_);
  if (auto it = index_.find(name); it != index_.end()) {
    lock.unlock();  // another thread added it meanwhile; ours is dropped outside the lock
    return it->second;
  }
  nodes_.push_back(std::move(made));
  index_.emplace(name, static_cast<int>(nodes_.size() - 1));
  return static_cast<int>(nodes_.size() - 1);
}

void slot_map::refresh_map() {
  std::lock_guard<std::mutex> one_at_a_time(*refresh_mutex_);
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
      throw_if_error(replies[0].get());
      install_map(replies[0].get(), node.where().host);
      return;
    } catch (const backend_error& e) {
      last_error = e.what();
    }
  }
  throw backend_error(errc::backend, "cannot read the cluster slot map: " + last_error);
}

// At most one refresh per 100 ms, whatever the number of failing requests asking for one.
void slot_map::refresher_loop(refresher& r) {
  std::unique_lock<std::mutex> lock(r.mutex);
  while (!r.stopping) {
    r.cv.wait(lock, [&] { return r.wanted || r.stopping; });
    if (r.stopping) break;
    r.wanted = false;
    lock.unlock();
    try {
      refresh_map();
    } catch (const backend_error&) {
    }
    lock.lock();
    r.cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return r.stopping; });
  }
}

void slot_map::install_map(const redisReply* reply, const std::string& answering_host) {
  if (reply->type != REDIS_REPLY_ARRAY) throw backend_error(errc::backend, "CLUSTER SLOTS: unexpected reply");
  std::array<int, cluster_slot_count> owners;
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
    for (long long s = std::max(0LL, first); s <= last && s < cluster_slot_count; ++s)
      owners[static_cast<std::size_t>(s)] = node;
  }
  std::unique_lock<std::shared_mutex> lock(map_mutex_);
  slot_owner_ = owners;
  note_owners_locked();
}

}  // namespace httpcache::detail
