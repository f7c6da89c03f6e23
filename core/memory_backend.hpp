// SPDX-License-Identifier: MIT
// The embedded store: a mutex-guarded LRU with per-entry expiry, bounded by entries and bytes.
// Its mutex is held across fork() (fork.hpp), so a child copies it whole and unlocked.
#pragma once

#include <chrono>
#include <list>
#include <mutex>
#include <unordered_map>

#include "backend.hpp"
#include "fork.hpp"

namespace httpcache {

class memory_backend final : public backend, private detail::fork_participant {
 public:
  memory_backend(std::uint64_t max_entries, std::uint64_t max_bytes);

  lookup_result get(std::string_view key) override;
  void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) override;
  std::size_t del(const std::vector<std::string_view>& keys) override;
  std::unique_ptr<async_session> open_async(watch_fn watch) override;
  std::optional<lookup_result> peek(std::string_view key, std::uint64_t known) override;
  // Leases: the same rules as on Redis, with the placeholder as an ordinary entry (so an
  // eviction or a del() voids it too), all under the one mutex.
  lease_result lease(std::string_view key, std::string_view placeholder, std::int64_t lease_ms) override;
  bool store_leased(std::string_view key, std::string_view placeholder, std::string_view value,
                    std::int64_t ttl_ms) override;
  void release(std::string_view key, std::string_view placeholder) override;

  std::size_t size() const;
  std::uint64_t bytes() const;

 private:
  using clock = std::chrono::steady_clock;
  struct entry {
    std::string key;
    std::string value;
    clock::time_point expires;
    std::uint64_t version = 0;
  };
  using lru_list = std::list<entry>;

  void erase_locked(lru_list::iterator it);
  lookup_result get_locked(std::string_view key, clock::time_point now, std::uint64_t known = 0);
  void set_locked(std::string_view key, std::string_view value, clock::time_point expires);
  static std::uint64_t cost(const entry& e) { return e.key.size() + e.value.size(); }

  const std::uint64_t max_entries_;
  const std::uint64_t max_bytes_;
  mutable std::mutex mutex_;
  lru_list lru_;  // front = most recently used
  // Views into the list nodes' keys: list nodes never move, so the views stay valid.
  std::unordered_map<std::string_view, lru_list::iterator> index_;
  std::uint64_t bytes_ = 0;
  void before_fork() noexcept override { mutex_.lock(); }
  void after_fork_parent() noexcept override { mutex_.unlock(); }
  void after_fork_child() noexcept override { mutex_.unlock(); }
  detail::fork_registration registered_{*this};  // last
};

}  // namespace httpcache
