// SPDX-License-Identifier: MIT
#include "cache.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <thread>

#include "guarded_backend.hpp"
#include "key.hpp"
#include "memory_backend.hpp"
#include "redis/backend.hpp"
#include "redis/cluster_backend.hpp"
#include "url.hpp"

namespace httpcache {

namespace {

std::unique_ptr<backend> make_backend(const backend_url& url, const cache_options& options) {
  if (url.scheme == url_scheme::memory)
    return std::make_unique<memory_backend>(options.memory_max_entries, options.memory_max_bytes);
  backend_options effective = options;
  if (url.connect_timeout_ms) effective.connect_timeout_ms = url.connect_timeout_ms;
  if (url.command_timeout_ms) effective.command_timeout_ms = url.command_timeout_ms;
  if (url.scheme == url_scheme::redis_cluster) return make_redis_cluster_backend(url, effective);
  return make_redis_backend(url, effective);
}

std::vector<std::string> full_keys(const cache& c, const std::vector<std::string_view>& keys) {
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (auto k : keys) full.push_back(c.full_key(k));  // validates every key before anything is sent
  return full;
}

}  // namespace

cache::cache(std::string_view url, std::string_view ns, std::string_view tz, const cache_options& options)
    : ns_(ns),
      zone_(time_zone::load(tz)),
      options_(options),
      breaker_(options.breaker_failures, options.breaker_cooldown_ms) {
  validate_namespace(ns_);
  backend_ = std::make_unique<guarded_backend>(make_backend(parse_url(url), options_), breaker_, stats_);
}

void cache::check_value_size(std::size_t size) const {
  if (size > options_.max_value_bytes) {
    stats::bump(stats_.oversized);
    throw error(errc::invalid, fmt::format("value is {} bytes, over the max_value_bytes limit of {}", size,
                                           options_.max_value_bytes));
  }
}

lookup_result cache::get(std::string_view key) {
  lookup_result r = backend_->get(full_key(key));
  stats::bump(r.found ? stats_.hits : stats_.misses);
  return r;
}

std::int64_t cache::set(std::string_view key, std::string_view value, const ttl_policy& policy) {
  std::string full = full_key(key);
  check_value_size(value.size());
  std::int64_t seconds = ttl(policy, now_unix_ms());
  backend_->set(full, value, seconds * 1000);
  stats::bump(stats_.stores);
  return seconds;
}

std::size_t cache::invalidate(const std::vector<std::string_view>& keys) {
  auto full = full_keys(*this, keys);
  std::vector<std::string_view> views(full.begin(), full.end());
  return backend_->del(views);
}

get_or_compute_result cache::get_or_compute(std::string_view key, const ttl_policy& policy,
                                            const std::function<computed()>& compute) {
  std::string full = full_key(key);
  validate_ttl_policy(policy);
  const std::uint64_t flights_before = flights_.finished();
  bool backend_up = true;
  try {
    lookup_result hit = backend_->get(full);
    if (hit.found) {
      stats::bump(stats_.hits);
      return {std::move(hit.value), hit.ttl_ms, outcome::hit};
    }
    stats::bump(stats_.misses);
  } catch (const backend_error&) {
    backend_up = false;  // fail open: compute as if uncached (counted by the guarded backend)
  }

  bool leader = false;
  auto flight = flights_.join(full, leader);
  if (!leader) {
    stats::bump(stats_.coalesced);
    if (auto shared = single_flight::wait(flight, std::chrono::milliseconds(options_.singleflight_wait_ms)))
      return {std::move(shared->value), shared->ttl_ms, outcome::coalesced};
    // The leader failed, declined to share, or is too slow: compute alone.
    bool unused = false;
    return compute_and_store(full, policy, compute, backend_up, unused);
  }
  try {
    bool shareable = false;
    get_or_compute_result r;
    // Look again as the leader if a flight finished since our miss: it may have stored this key,
    // and computing again would break "once". Without concurrent flights this costs nothing.
    const bool look_again = backend_up && flights_.finished() != flights_before;
    if (auto again = look_again ? recheck(full) : std::nullopt) {
      r = {std::move(again->value), again->ttl_ms, outcome::hit};
      shareable = true;
    } else {
      r = lead(full, policy, compute, backend_up, shareable);
    }
    std::optional<single_flight::shared_result> shared;
    if (shareable) shared = single_flight::shared_result{r.value, r.ttl_ms, static_cast<int>(r.outcome)};
    flights_.finish(full, flight, std::move(shared));
    return r;
  } catch (...) {
    flights_.finish(full, flight, std::nullopt);
    throw;
  }
}

std::optional<lookup_result> cache::recheck(const std::string& full) {
  try {
    lookup_result hit = backend_->get(full);
    if (hit.found) {
      stats::bump(stats_.hits);
      return hit;
    }
  } catch (const backend_error&) {
  }
  return std::nullopt;
}

namespace {

// Lock keys start with a name no namespace can have ('!' is not a namespace character), so they
// never collide with cached keys.
std::string lock_key_for(const std::string& full) { return "httpcache-lock!" + full; }

std::string random_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

}  // namespace

// The in-process leader. With the cross-process lock on, it also takes the backend lock: the
// holder computes and stores; the others poll for the stored value (bounded by
// singleflight_wait_ms, after which they compute themselves). A crashed holder's lock expires
// after lock_ttl_ms, so it cannot block the others past that.
get_or_compute_result cache::lead(const std::string& full, const ttl_policy& policy,
                                  const std::function<computed()>& compute, bool backend_up, bool& shareable) {
  if (!backend_up || options_.lock_ttl_ms == 0) return compute_and_store(full, policy, compute, backend_up, shareable);
  const std::string lock_key = lock_key_for(full), token = random_token();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.singleflight_wait_ms);
  for (int delay_ms = 2;; delay_ms = std::min(delay_ms * 2, 50)) {
    bool locked = false;
    try {
      locked = backend_->try_lock(lock_key, token, options_.lock_ttl_ms);
    } catch (const backend_error&) {
      return compute_and_store(full, policy, compute, false, shareable);
    }
    if (locked) {
      get_or_compute_result r;
      try {
        r = compute_and_store(full, policy, compute, true, shareable);
      } catch (...) {
        try { backend_->unlock(lock_key, token); } catch (const backend_error&) {}
        throw;
      }
      try { backend_->unlock(lock_key, token); } catch (const backend_error&) {}
      return r;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return compute_and_store(full, policy, compute, true, shareable);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    try {
      lookup_result hit = backend_->get(full);
      if (hit.found) {
        stats::bump(stats_.coalesced);
        shareable = true;
        return {std::move(hit.value), hit.ttl_ms, outcome::coalesced};
      }
    } catch (const backend_error&) {
      return compute_and_store(full, policy, compute, false, shareable);
    }
  }
}

get_or_compute_result cache::compute_and_store(const std::string& full, const ttl_policy& policy,
                                               const std::function<computed()>& compute, bool backend_up,
                                               bool& shareable) {
  computed fresh = compute();
  get_or_compute_result result{std::move(fresh.value), 0, outcome::uncached};
  // Only a value its producer wanted cached may be handed to concurrent callers.
  shareable = fresh.store && result.value.size() <= options_.max_value_bytes;
  if (fresh.store && result.value.size() > options_.max_value_bytes) stats::bump(stats_.oversized);
  if (!shareable || !backend_up) {
    stats::bump(stats_.uncached);
    return result;
  }
  try {
    // A TTL callback that fails or returns <= 0 costs the store, not the caller's value.
    std::int64_t seconds = ttl(policy, now_unix_ms());
    backend_->set(full, result.value, seconds * 1000);
    result.ttl_ms = seconds * 1000;
    result.outcome = outcome::stored;
    stats::bump(stats_.stores);
  } catch (const error&) {
    stats::bump(stats_.uncached);
  }
  return result;
}

void cache::async_get(async_session& s, std::string_view key, get_done_fn done) const {
  s.get(full_key(key), [counters = &stats_, done = std::move(done)](int status, std::string_view value,
                                                                   std::int64_t ttl_ms) {
    if (status == 0) stats::bump(counters->hits);
    if (status == static_cast<int>(errc::not_found)) stats::bump(counters->misses);
    done(status, value, ttl_ms);
  });
}

void cache::async_set(async_session& s, std::string_view key, std::string_view value, const ttl_policy& policy,
                      count_done_fn done) const {
  std::string full = full_key(key);
  check_value_size(value.size());
  std::int64_t seconds = ttl(policy, now_unix_ms());
  s.set(full, value, seconds * 1000, [counters = &stats_, seconds, done = std::move(done)](int status, std::int64_t) {
    if (status == 0) stats::bump(counters->stores);
    done(status, status == 0 ? seconds : 0);
  });
}

void cache::async_invalidate(async_session& s, const std::vector<std::string_view>& keys,
                             count_done_fn done) const {
  if (keys.empty()) throw error(errc::invalid, "no keys to invalidate");
  s.del(full_keys(*this, keys), std::move(done));
}

}  // namespace httpcache
