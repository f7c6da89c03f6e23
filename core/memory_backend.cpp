// SPDX-License-Identifier: MIT
#include "memory_backend.hpp"

#include <unistd.h>

#include <atomic>
#include <random>

#include "immediate_session.hpp"

namespace httpcache {

std::string make_lease_placeholder() {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  // The pid and a process-wide counter keep a forked child (same generator state) apart.
  const std::uint64_t a = rng() ^ (static_cast<std::uint64_t>(::getpid()) << 32);
  const std::uint64_t b = rng() ^ counter.fetch_add(1, std::memory_order_relaxed) ^
                          static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(lease_prefix);
  for (std::uint64_t v : {a, b})
    for (int shift = 60; shift >= 0; shift -= 4) out.push_back(hex[(v >> shift) & 15]);
  return out;
}

std::int64_t lease_book::saw(const std::string& key, const std::string& placeholder) {
  auto it = records_.find(key);
  if (it != records_.end() && it->second.placeholder == placeholder) return it->second.ours ? it->second.number : -it->second.number;
  make_room();
  records_[key] = record{placeholder, ++next_, false};
  return -next_;
}

std::int64_t lease_book::granted(const std::string& key, std::string placeholder) {
  make_room();
  records_[key] = record{std::move(placeholder), ++next_, true};
  return next_;
}

void lease_book::expect(const std::string& key, std::string value) {
  auto it = records_.find(key);
  if (value.empty() && it != records_.end() && it->second.expected && it->second.ours) return;  // the refresher's
  make_room();
  const bool ours = !value.empty();
  records_[key] = record{std::move(value), ++next_, ours, true};
}

int lease_book::take(const std::string& key, std::string& placeholder, bool* expected) {
  auto it = records_.find(key);
  if (it == records_.end()) return 0;
  int r = it->second.ours ? 1 : -1;
  if (expected) *expected = it->second.expected;
  placeholder = std::move(it->second.placeholder);
  records_.erase(it);
  return r;
}

void lease_book::make_room() {
  if (records_.size() < max_records) return;
  const std::int64_t cut = next_ - static_cast<std::int64_t>(max_records / 2);
  for (auto it = records_.begin(); it != records_.end();) it = it->second.number <= cut ? records_.erase(it) : std::next(it);
}

memory_backend::memory_backend(std::uint64_t max_entries, std::uint64_t max_bytes)
    : max_entries_(max_entries), max_bytes_(max_bytes) {}

void memory_backend::erase_locked(lru_list::iterator it) {
  bytes_ -= cost(*it);
  index_.erase(std::string_view(it->key));
  lru_.erase(it);
}

lookup_result memory_backend::get(std::string_view key) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Read the clock under the lock: a `now` taken before a concurrent set() would report more time
  // left than that set() applied.
  return get_locked(key, clock::now());
}

std::optional<lookup_result> memory_backend::peek(std::string_view key, std::uint64_t known) {
  std::lock_guard<std::mutex> lock(mutex_);
  return get_locked(key, clock::now(), known);
}

lookup_result memory_backend::get_locked(std::string_view key, clock::time_point now, std::uint64_t known) {
  lookup_result result;
  auto found = index_.find(key);
  if (found == index_.end()) return result;
  auto it = found->second;
  if (it->expires <= now) {
    erase_locked(it);
    return result;
  }
  lru_.splice(lru_.begin(), lru_, it);
  answer_held(result, it->value, it->version, known);
  result.ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(it->expires - now).count();
  if (result.ttl_ms < 1) result.ttl_ms = 1;
  return result;
}

void memory_backend::set(std::string_view key, std::string_view value, std::int64_t ttl_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  set_locked(key, value, clock::now() + std::chrono::milliseconds(ttl_ms));
}

void memory_backend::set_locked(std::string_view key, std::string_view value, clock::time_point expires) {
  if (auto found = index_.find(key); found != index_.end()) erase_locked(found->second);
  if (key.size() + value.size() > max_bytes_ || max_entries_ == 0) return;  // could never fit
  lru_.push_front(entry{std::string(key), std::string(value), expires, value_version()});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += cost(lru_.front());
  while (lru_.size() > max_entries_ || bytes_ > max_bytes_) erase_locked(std::prev(lru_.end()));
}

lease_result memory_backend::lease(std::string_view key, std::string_view placeholder, std::int64_t lease_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = clock::now();
  lease_result r;
  r.current = get_locked(key, now);
  if (r.current.found) return r;
  set_locked(key, placeholder, now + std::chrono::milliseconds(lease_ms));
  r.granted = index_.count(key) != 0;  // a store too small for the placeholder grants nothing
  return r;
}

bool memory_backend::store_leased(std::string_view key, std::string_view placeholder, std::string_view value,
                                  std::int64_t ttl_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = clock::now();
  auto found = index_.find(key);
  if (found == index_.end() || found->second->expires <= now || found->second->value != placeholder) return false;
  set_locked(key, value, now + std::chrono::milliseconds(ttl_ms));
  return true;
}

void memory_backend::release(std::string_view key, std::string_view placeholder) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = index_.find(key);
  if (found != index_.end() && found->second->value == placeholder) erase_locked(found->second);
}

std::size_t memory_backend::del(const std::vector<std::string_view>& keys) {
  const auto now = clock::now();
  std::size_t deleted = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto key : keys) {
    auto found = index_.find(key);
    if (found == index_.end()) continue;
    if (found->second->expires > now) ++deleted;  // an expired entry did not "exist", as in Redis
    erase_locked(found->second);
  }
  return deleted;
}

std::size_t memory_backend::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lru_.size();
}

std::uint64_t memory_backend::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

std::unique_ptr<async_session> memory_backend::open_async(watch_fn) { return make_immediate_session(*this); }

}  // namespace httpcache
