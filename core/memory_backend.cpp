// SPDX-License-Identifier: MIT
#include "memory_backend.hpp"

namespace httpcache {

memory_backend::memory_backend(std::uint64_t max_entries, std::uint64_t max_bytes)
    : max_entries_(max_entries), max_bytes_(max_bytes) {}

void memory_backend::erase_locked(lru_list::iterator it) {
  bytes_ -= cost(*it);
  index_.erase(std::string_view(it->key));
  lru_.erase(it);
}

lookup_result memory_backend::get(std::string_view key) {
  lookup_result result;
  std::lock_guard<std::mutex> lock(mutex_);
  // Read the clock under the lock: a `now` taken before a concurrent set() would report more time
  // left than that set() applied.
  const auto now = clock::now();
  auto found = index_.find(key);
  if (found == index_.end()) return result;
  auto it = found->second;
  if (it->expires <= now) {
    erase_locked(it);
    return result;
  }
  lru_.splice(lru_.begin(), lru_, it);
  result.found = true;
  result.value = it->value;
  result.ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(it->expires - now).count();
  if (result.ttl_ms < 1) result.ttl_ms = 1;
  return result;
}

void memory_backend::set(std::string_view key, std::string_view value, std::int64_t ttl_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto expires = clock::now() + std::chrono::milliseconds(ttl_ms);
  if (auto found = index_.find(key); found != index_.end()) erase_locked(found->second);
  if (key.size() + value.size() > max_bytes_ || max_entries_ == 0) return;  // could never fit
  lru_.push_front(entry{std::string(key), std::string(value), expires});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += cost(lru_.front());
  while (lru_.size() > max_entries_ || bytes_ > max_bytes_) erase_locked(std::prev(lru_.end()));
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

namespace {

// The memory store never waits, so each request completes inside the call that starts it.
class memory_session final : public async_session {
 public:
  explicit memory_session(memory_backend& store) : store_(store) {}

  void get(const std::string& key, get_done_fn done) override {
    auto r = store_.get(key);
    if (r.found)
      done(0, r.value, r.ttl_ms);
    else
      done(static_cast<int>(errc::not_found), {}, 0);
  }
  void set(const std::string& key, std::string_view value, std::int64_t ttl_ms, count_done_fn done) override {
    store_.set(key, value, ttl_ms);
    done(0, 0);
  }
  void del(const std::vector<std::string>& keys, count_done_fn done) override {
    std::vector<std::string_view> views(keys.begin(), keys.end());
    done(0, static_cast<std::int64_t>(store_.del(views)));
  }
  void process(unsigned) override {}
  std::int64_t timeout_ms() const override { return -1; }
  std::size_t pending() const override { return 0; }

 private:
  memory_backend& store_;
};

}  // namespace

std::unique_ptr<async_session> memory_backend::open_async(watch_fn) {
  return std::make_unique<memory_session>(*this);
}

}  // namespace httpcache
