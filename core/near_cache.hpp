// SPDX-License-Identifier: MIT
// The near tier: an in-process copy of the entries a remote store served, in front of it, kept
// coherent by the store's own report of changed keys (backend::watch: Redis server-assisted
// client-side caching). A near hit is a hash lookup: no round trip. The cache puts it between the
// guard and the real store, so every call of the blocking and non-blocking paths passes here.
//
// The rules that keep it right (docs/design.md "Near tier"):
// - Nothing is served or kept unless the feed covers the store now (every node's report link is
//   subscribed); losing a link, a FLUSHDB and a change of the store's nodes empty it.
// - A key is reserved (a placeholder) before the store is read, and the reply is kept only if the
//   placeholder is still there: an invalidation that arrives before the reply it concerns removed
//   it, so the older reply is not kept.
// - A write through this tier erases the key before it is sent and again once it is done, in the
//   near store of every handle of the process, so the caller and the process's other handles read
//   it at once (the store's report would reach them a moment later, and a read another handle
//   began before the write would be kept otherwise).
// - An entry stays at most near_max_age_ms, and never past the store's TTL it was read with.
// - Lease placeholders are never kept (a miss), nor values larger than an eighth of the tier.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backend.hpp"
#include "clock.hpp"
#include "fork.hpp"
#include "stats.hpp"

namespace httpcache {

struct near_options {
  std::uint64_t max_bytes = 32ull << 20;
  std::int64_t max_age_ms = 60000;
};

// The in-process entries and their placeholders: a mutex-guarded LRU bounded by bytes.
class near_store final : private detail::fork_participant {
 public:
  explicit near_store(near_options options) : options_(options) {}

  // A live entry (moved to the front), or nothing. The clock is read under the lock, as fill()
  // reads it: a time read before waiting for the lock would be older than a fill in between,
  // and the TTL reported would exceed the one stored.
  std::optional<lookup_result> find(std::string_view key, std::uint64_t known = 0);
  // Reserves key before the store is read: the ticket to fill() it with, 0 when nothing may be
  // kept. `covered` is asked under the lock: a flush that follows the loss of coverage then
  // either comes after the placeholder (and removes it) or is seen (nothing reserved), so no
  // read that began while the reports could not be heard is ever kept.
  template <typename Covers>
  std::uint64_t reserve(std::string_view key, Covers covered) {
    std::lock_guard<std::mutex> lock(mutex_);
    return covered() ? reserve_locked(key) : 0;
  }
  // Keeps what the store answered if key still holds the ticket's placeholder and `still` says
  // the feed covers the store (asked under the lock, so a flush cannot slip in between). ttl_ms:
  // the store's remaining TTL, 0 for none.
  template <typename Covers>
  void fill(std::string_view key, std::uint64_t ticket, std::string_view value, std::int64_t ttl_ms, Covers still) {
    if (ticket == 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    fill_locked(key, ticket, value, ttl_ms, steady_ms(), still());
  }
  // Drops a reservation nothing came of (the read failed or found nothing).
  void cancel(std::string_view key, std::uint64_t ticket);
  // Drops key's entry or placeholder: true when there was one.
  bool erase(std::string_view key);
  void clear();

 private:
  struct node {
    std::string key;
    std::string value;
    std::int64_t deadline_ms = 0;        // steady ms: when it goes, at the latest (a placeholder: when it was made)
    std::int64_t store_deadline_ms = 0;  // steady ms: when the store's copy expires; 0: never
    std::uint64_t ticket = 0;            // a placeholder's; 0 once it holds a value
    std::uint64_t version = 0;           // the value's (value_version())
  };
  using lru_list = std::list<node>;
  static std::uint64_t cost(const node& n) { return n.key.size() + n.value.size() + 96; }
  std::uint64_t reserve_locked(std::string_view key);
  void fill_locked(std::string_view key, std::uint64_t ticket, std::string_view value, std::int64_t ttl_ms,
                   std::int64_t now_ms, bool covered);
  void erase_locked(lru_list::iterator it);

  void before_fork() noexcept override { mutex_.lock(); }
  void after_fork_parent() noexcept override { mutex_.unlock(); }
  void after_fork_child() noexcept override;

  const near_options options_;
  std::mutex mutex_;
  lru_list lru_;  // front: most recently used
  std::unordered_map<std::string_view, lru_list::iterator> index_;  // views of the nodes' keys
  std::uint64_t bytes_ = 0;
  std::uint64_t next_ticket_ = 0;
  detail::fork_registration registered_{*this};  // last: registered once the rest exists
};

// The tier: a backend in front of `store`, which must offer a feed (backend::watch) for the
// namespace's keys and its tags' keys.
class near_tier final : public backend, private invalidation_sink {
 public:
  // Throws error(errc::invalid) when the store cannot report changes (memory://).
  near_tier(std::unique_ptr<backend> store, std::string_view ns, near_options options, struct stats& counters);
  ~near_tier() override;

  lookup_result get(std::string_view key) override;
  void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) override;
  std::size_t del(const std::vector<std::string_view>& keys) override;
  std::unique_ptr<async_session> open_async(watch_fn watch) override;
  // Uncounted: the cache counts what it accepts (cache::peek).
  std::optional<lookup_result> peek(std::string_view key, std::uint64_t known) override { return held(key, known); }
  bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) override {
    return store_->try_lock(lock_key, token, ttl_ms);
  }
  void unlock(std::string_view lock_key, std::string_view token) override { store_->unlock(lock_key, token); }
  lease_result lease(std::string_view key, std::string_view placeholder, std::int64_t lease_ms) override;
  bool store_leased(std::string_view key, std::string_view placeholder, std::string_view value,
                    std::int64_t ttl_ms) override;
  void release(std::string_view key, std::string_view placeholder) override;
  lookup_result get_stamped(std::string_view key, const std::vector<std::string_view>& tag_keys,
                            const std::vector<std::string>& candidates,
                            std::vector<std::string>& generations) override;

  // For the non-blocking session (near_cache.cpp): the same steps as the blocking calls.
  // near_hit() counts a near hit; held() is the same lookup, uncounted (a tag's generation).
  std::optional<lookup_result> near_hit(std::string_view key);
  std::optional<lookup_result> held(std::string_view key, std::uint64_t known = 0);
  std::uint64_t reserve(std::string_view key);
  void keep(std::string_view key, std::uint64_t ticket, std::string_view value, std::int64_t ttl_ms);
  void cancel(std::string_view key, std::uint64_t ticket) { entries_->cancel(key, ticket); }
  // Erases key in every near store of the process (a write's key: see the header).
  void forget(std::string_view key);

 private:
  void invalidated(std::string_view key) noexcept override;
  void invalidated_all() noexcept override;
  bool watched(std::string_view key) const;

  std::unique_ptr<backend> store_;
  struct stats& stats_;
  std::vector<std::string> prefixes_;  // the keys the feed reports: ns: and the tags' keys
  std::unique_ptr<near_store> entries_;  // made once the process's list of stores exists
  std::unique_ptr<invalidation_feed> feed_;  // last: stopped (destroyed) first
};

}  // namespace httpcache
