// SPDX-License-Identifier: MIT
#include "near_cache.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "clock.hpp"
#include "tags.hpp"

namespace httpcache {

// ---- near_store ----

std::optional<lookup_result> near_store::find(std::string_view key, std::uint64_t known) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::int64_t now_ms = steady_ms();
  auto at = index_.find(key);
  if (at == index_.end() || at->second->ticket != 0) return std::nullopt;
  auto it = at->second;
  if (it->deadline_ms <= now_ms) {
    erase_locked(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it);
  lookup_result r;
  answer_held(r, it->value, it->version, known);
  r.ttl_ms = it->store_deadline_ms ? std::max<std::int64_t>(1, it->store_deadline_ms - now_ms) : 0;
  return r;
}

std::uint64_t near_store::reserve_locked(std::string_view key) {
  if (auto at = index_.find(key); at != index_.end()) erase_locked(at->second);
  // A placeholder's deadline_ms holds when the store was asked: the store's TTL counts from a
  // moment after it, so an entry never outlives its copy in the store.
  lru_.push_front(node{std::string(key), std::string(), steady_ms(), 0, ++next_ticket_});
  index_.emplace(lru_.front().key, lru_.begin());
  bytes_ += cost(lru_.front());
  return next_ticket_;
}

void near_store::fill_locked(std::string_view key, std::uint64_t ticket, std::string_view value, std::int64_t ttl_ms,
                             std::int64_t now_ms, bool covered) {
  auto at = index_.find(key);
  if (at == index_.end() || at->second->ticket != ticket) return;  // invalidated (or reserved again) since
  auto it = at->second;
  if (!covered || value.size() + key.size() > options_.max_bytes / 8) return erase_locked(it);
  bytes_ -= cost(*it);
  const std::int64_t asked_ms = it->deadline_ms;
  it->value.assign(value);
  it->ticket = 0;
  it->version = value_version();
  it->store_deadline_ms = ttl_ms > 0 ? asked_ms + ttl_ms : 0;
  it->deadline_ms = now_ms + options_.max_age_ms;
  if (ttl_ms > 0) it->deadline_ms = std::min(it->deadline_ms, it->store_deadline_ms);
  bytes_ += cost(*it);
  lru_.splice(lru_.begin(), lru_, it);
  while (bytes_ > options_.max_bytes && !lru_.empty()) erase_locked(std::prev(lru_.end()));
}

void near_store::cancel(std::string_view key, std::uint64_t ticket) {
  if (ticket == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto at = index_.find(key); at != index_.end() && at->second->ticket == ticket) erase_locked(at->second);
}

bool near_store::erase(std::string_view key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto at = index_.find(key);
  if (at == index_.end()) return false;
  erase_locked(at->second);
  return true;
}

void near_store::clear() {
  lru_list dropped;  // freed after the lock is released
  {
    std::lock_guard<std::mutex> lock(mutex_);
    index_.clear();
    dropped.swap(lru_);
    bytes_ = 0;
  }
}

void near_store::erase_locked(lru_list::iterator it) {
  bytes_ -= cost(*it);
  index_.erase(std::string_view(it->key));
  lru_.erase(it);
}

// The child's copy may hold entries whose changes no feed of the child heard: it starts empty.
void near_store::after_fork_child() noexcept {
  index_.clear();
  lru_.clear();
  bytes_ = 0;
  mutex_.unlock();
}


// ---- the process's near stores ----

namespace {

// The near store of every handle in the process. A write erases its keys in all of them: another
// handle's tier would otherwise serve the old value until the server's report reached it, and
// would keep the older reply of a read it began before the write. The stores of other servers
// or namespaces do not hold the key, so erasing there costs a lookup. Locks: this list's, then a
// store's, never the reverse. It is held across fork and registered for it before any store
// exists, so the prepare handler takes it before theirs.
class process_stores final : private detail::fork_participant {
 public:
  static process_stores& get() {
    static auto* stores = new process_stores;  // never destroyed: a handle may outlive static destructors
    return *stores;
  }
  void add(near_store* s) {
    std::lock_guard<std::mutex> lock(mutex_);
    stores_.push_back(s);
  }
  void remove(near_store* s) {
    std::lock_guard<std::mutex> lock(mutex_);
    stores_.erase(std::remove(stores_.begin(), stores_.end(), s), stores_.end());
  }
  void erase_everywhere(std::string_view key) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (near_store* s : stores_) s->erase(key);
  }

 private:
  process_stores() = default;
  void before_fork() noexcept override { mutex_.lock(); }
  void after_fork_parent() noexcept override { mutex_.unlock(); }
  void after_fork_child() noexcept override { mutex_.unlock(); }

  std::mutex mutex_;
  std::vector<near_store*> stores_;
  detail::fork_registration registered_{*this};  // last
};

}  // namespace

// ---- near_tier ----

near_tier::near_tier(std::unique_ptr<backend> store, std::string_view ns, near_options options, struct stats& counters)
    : store_(std::move(store)), stats_(counters), prefixes_{fmt::format("{}:", ns), tag_key_prefix(ns)} {
  process_stores& all = process_stores::get();
  entries_ = std::make_unique<near_store>(options);
  feed_ = store_->watch(prefixes_, *this);
  if (!feed_) throw error(errc::invalid, "near_cache needs a Redis backend (an embedded store is near already)");
  all.add(entries_.get());
}

near_tier::~near_tier() {
  feed_.reset();
  process_stores::get().remove(entries_.get());
}

void near_tier::forget(std::string_view key) { process_stores::get().erase_everywhere(key); }

bool near_tier::watched(std::string_view key) const {
  return std::any_of(prefixes_.begin(), prefixes_.end(),
                     [&](const std::string& p) { return key.substr(0, p.size()) == p; });
}

std::optional<lookup_result> near_tier::held(std::string_view key, std::uint64_t known) {
  if (!feed_->covers()) return std::nullopt;
  return entries_->find(key, known);
}

std::optional<lookup_result> near_tier::near_hit(std::string_view key) {
  auto hit = held(key);
  if (hit) stats::bump(stats_.near_hits);
  return hit;
}

std::uint64_t near_tier::reserve(std::string_view key) {
  if (!watched(key)) return 0;
  return entries_->reserve(key, [this] { return feed_->covers(); });
}

void near_tier::keep(std::string_view key, std::uint64_t ticket, std::string_view value, std::int64_t ttl_ms) {
  if (is_lease(value)) return entries_->cancel(key, ticket);
  entries_->fill(key, ticket, value, ttl_ms, [this] { return feed_->covers(); });
}

void near_tier::invalidated(std::string_view key) noexcept {
  stats::bump(stats_.near_invalidations);
  entries_->erase(key);
}

void near_tier::invalidated_all() noexcept {
  stats::bump(stats_.near_flushes);
  entries_->clear();
}

namespace {

// A write's keys, erased before it is sent and again once it is done (see the header: a caller
// reads its own writes).
class erased_around {
 public:
  erased_around(near_tier& tier, std::vector<std::string_view> keys) : tier_(tier), keys_(std::move(keys)) {
    forget_all();
  }
  ~erased_around() { forget_all(); }

 private:
  void forget_all() {
    for (auto k : keys_) tier_.forget(k);
  }
  near_tier& tier_;
  std::vector<std::string_view> keys_;
};

// Reservations the read they guard did not fill (it failed or found nothing): cancelled.
struct reservations {
  near_tier& tier;
  std::vector<std::pair<std::string_view, std::uint64_t>> held;
  void add(std::string_view key) { held.emplace_back(key, tier.reserve(key)); }
  std::uint64_t ticket(std::size_t i) const { return held[i].second; }
  ~reservations() {
    for (const auto& [key, ticket] : held) tier.cancel(key, ticket);
  }
};

}  // namespace

lookup_result near_tier::get(std::string_view key) {
  if (auto hit = near_hit(key)) return std::move(*hit);
  reservations r{*this, {}};
  r.add(key);
  lookup_result found = store_->get(key);
  if (found.found) keep(key, r.ticket(0), found.value, found.ttl_ms);
  return found;
}

void near_tier::set(std::string_view key, std::string_view value, std::int64_t ttl_ms) {
  erased_around around{*this, {key}};
  store_->set(key, value, ttl_ms);
}

std::size_t near_tier::del(const std::vector<std::string_view>& keys) {
  erased_around around{*this, keys};
  return store_->del(keys);
}

lease_result near_tier::lease(std::string_view key, std::string_view placeholder, std::int64_t lease_ms) {
  erased_around around{*this, {key}};
  return store_->lease(key, placeholder, lease_ms);
}

bool near_tier::store_leased(std::string_view key, std::string_view placeholder, std::string_view value,
                             std::int64_t ttl_ms) {
  erased_around around{*this, {key}};
  return store_->store_leased(key, placeholder, value, ttl_ms);
}

void near_tier::release(std::string_view key, std::string_view placeholder) {
  erased_around around{*this, {key}};
  store_->release(key, placeholder);
}

// All from here when the entry (if one is asked for) and every generation are; otherwise one
// read of the store, whose answers are kept.
lookup_result near_tier::get_stamped(std::string_view key, const std::vector<std::string_view>& tag_keys,
                                     const std::vector<std::string>& candidates,
                                     std::vector<std::string>& generations) {
  lookup_result entry;
  bool all_near = key.empty() || (entry = held(key).value_or(lookup_result{})).found;
  generations.assign(tag_keys.size(), std::string());
  for (std::size_t i = 0; all_near && i < tag_keys.size(); ++i) {
    auto g = held(tag_keys[i]);
    all_near = g.has_value();
    if (all_near) generations[i] = std::move(g->value);
  }
  if (all_near) {
    if (!key.empty()) stats::bump(stats_.near_hits);  // one call answered here (the caller judges the tags)
    return entry;
  }
  reservations r{*this, {}};
  if (!key.empty()) r.add(key);
  for (auto k : tag_keys) r.add(k);
  entry = store_->get_stamped(key, tag_keys, candidates, generations);
  std::size_t n = 0;
  if (!key.empty() && entry.found) keep(key, r.ticket(n), entry.value, entry.ttl_ms);
  if (!key.empty()) ++n;
  for (std::size_t i = 0; i < tag_keys.size(); ++i, ++n)
    if (!generations[i].empty()) keep(tag_keys[i], r.ticket(n), generations[i], 0);
  return entry;
}

// ---- the non-blocking session ----

namespace {

class near_session final : public async_session {
 public:
  near_session(near_tier& tier, std::unique_ptr<async_session> inner) : tier_(tier), inner_(std::move(inner)) {}

  void get(const std::string& key, get_done_fn done) override {
    if (auto hit = tier_.near_hit(key)) return done(0, hit->value, hit->ttl_ms);
    const std::uint64_t ticket = tier_.reserve(key);
    inner_->get(key, [&tier = tier_, key, ticket, done = std::move(done)](int status, std::string_view value,
                                                                          std::int64_t ttl_ms) {
      if (status == 0) tier.keep(key, ticket, value, ttl_ms);
      else tier.cancel(key, ticket);
      done(status, value, ttl_ms);
    });
  }
  void stamp(const std::string& key, const std::string& candidate, std::int64_t ttl_ms, get_done_fn done) override {
    if (auto hit = tier_.held(key)) return done(0, hit->value, 0);
    const std::uint64_t ticket = tier_.reserve(key);
    inner_->stamp(key, candidate, ttl_ms,
                  [&tier = tier_, key, ticket, done = std::move(done)](int status, std::string_view value,
                                                                       std::int64_t ttl) {
                    if (status == 0 && !value.empty()) tier.keep(key, ticket, value, 0);
                    else tier.cancel(key, ticket);
                    done(status, value, ttl);
                  });
  }
  void set(const std::string& key, std::string_view value, std::int64_t ttl_ms, count_done_fn done) override {
    tier_.forget(key);
    inner_->set(key, value, ttl_ms, forgetting({key}, std::move(done)));
  }
  void del(const std::vector<std::string>& keys, count_done_fn done) override {
    for (const auto& k : keys) tier_.forget(k);
    inner_->del(keys, forgetting(keys, std::move(done)));
  }
  void release(const std::string& key, count_done_fn done) override {
    tier_.forget(key);
    inner_->release(key, forgetting({key}, std::move(done)));
  }
  void del_if(const std::string& key, std::string value, count_done_fn done) override {
    tier_.forget(key);
    inner_->del_if(key, std::move(value), forgetting({key}, std::move(done)));
  }
  void expect(const std::string& key, std::string value) override { inner_->expect(key, std::move(value)); }
  void process(unsigned ready_events) override { inner_->process(ready_events); }
  std::int64_t timeout_ms() const override { return inner_->timeout_ms(); }
  std::size_t pending() const override { return inner_->pending(); }

 private:
  // A write's completion that first erases what it wrote (see the header).
  count_done_fn forgetting(std::vector<std::string> keys, count_done_fn done) {
    return [&tier = tier_, keys = std::move(keys), done = std::move(done)](int status, std::int64_t count) {
      for (const auto& k : keys) tier.forget(k);
      done(status, count);
    };
  }

  near_tier& tier_;
  std::unique_ptr<async_session> inner_;
};

}  // namespace

std::unique_ptr<async_session> near_tier::open_async(watch_fn watch) {
  return std::make_unique<near_session>(*this, store_->open_async(std::move(watch)));
}

}  // namespace httpcache
