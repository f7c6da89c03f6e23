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
  // redis://, rediss://, unix:// and redis+sentinel:// (the backend follows the master)
  return make_redis_backend(url, effective);
}

std::vector<std::string> full_keys(const cache& c, const std::vector<std::string_view>& keys) {
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (auto k : keys) full.push_back(c.full_key(k));  // validates every key before anything is sent
  return full;
}

// Lock keys start with a name no namespace can have ('!' is not a namespace character), so they
// never collide with cached keys.
std::string lock_key_for(const std::string& full) { return "httpcache-lock!" + full; }

std::string random_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

}  // namespace

cache::cache(std::string_view url, std::string_view ns, std::string_view tz, const cache_options& options,
             const tls_settings& tls)
    : ns_(ns),
      zone_(time_zone::load(tz)),
      options_(options),
      breaker_(options.breaker_failures, options.breaker_cooldown_ms) {
  validate_namespace(ns_);
  backend_url where = parse_url(url);
  if (where.tls.enabled) where.tls.fill_from(tls);
  auto store = make_backend(where, options_);
  store_ = store.get();
  auto guard = std::make_unique<guarded_backend>(std::move(store), breaker_, stats_);
  guard_ = guard.get();
  backend_ = std::move(guard);
}

void cache::check_value_size(std::size_t size) const {
  if (size > options_.max_value_bytes) {
    stats::bump(stats_.oversized);
    throw error(errc::invalid, fmt::format("value is {} bytes, over the max_value_bytes limit of {}", size,
                                           options_.max_value_bytes));
  }
}

namespace {

void check_not_lease(std::string_view value) {
  if (is_lease(value)) throw error(errc::invalid, "the value starts with the bytes reserved for lease placeholders");
}

// The keys this thread is computing (re-entrancy: a compute callback calling get_or_compute on
// its own key would otherwise wait for itself).
thread_local std::vector<std::pair<const cache*, std::string>> computing;

bool computing_here(const cache* c, const std::string& full) {
  for (const auto& [who, key] : computing)
    if (who == c && key == full) return true;
  return false;
}

}  // namespace

std::atomic<std::uint64_t>& cache::generation(const std::string& full) const {
  return generations_[std::hash<std::string>{}(full) % generations_.size()];
}

std::int64_t cache::lease_ms() const { return options_.lock_ttl_ms ? options_.lock_ttl_ms : default_lease_ms; }

// The lease calls go to the real store (the guard does not know them), under the guard's breaker
// and counters, exactly as the guard's own calls.
template <typename Op>
auto cache::guarded(Op&& op) -> decltype(op()) {
  return guard_->guarded(std::forward<Op>(op));
}

lookup_result cache::get(std::string_view key) {
  lookup_result r = backend_->get(full_key(key));
  if (r.found && is_lease(r.value)) r = lookup_result{};  // a computation in progress: a miss
  stats::bump(r.found ? stats_.hits : stats_.misses);
  return r;
}

std::int64_t cache::set(std::string_view key, std::string_view value, const ttl_policy& policy) {
  std::string full = full_key(key);
  check_value_size(value.size());
  check_not_lease(value);
  std::int64_t seconds = ttl(policy, now_unix_ms());
  backend_->set(full, value, seconds * 1000);
  stats::bump(stats_.stores);
  return seconds;
}

std::size_t cache::invalidate(const std::vector<std::string_view>& keys) {
  auto full = full_keys(*this, keys);
  // Before the DEL: a flight of these keys that starts computing from now on reads the new data.
  for (const auto& k : full) generation(k).fetch_add(1, std::memory_order_acq_rel);
  std::vector<std::string_view> views(full.begin(), full.end());
  return backend_->del(views);
}

computed cache::run(const std::string& full, const std::function<computed()>& compute) {
  computing.emplace_back(this, full);
  struct pop {
    ~pop() { computing.pop_back(); }
  } popper;
  return compute();
}

// A caller after a miss: lead a flight, join one whose observation matches its own (the same
// placeholder seen, no invalidation through this handle since it started), or compute alone.
get_or_compute_result cache::get_or_compute(std::string_view key, const ttl_policy& policy,
                                            const std::function<computed()>& compute) {
  std::string full = full_key(key);
  validate_ttl_policy(policy);
  if (computing_here(this, full)) {  // re-entrant: never wait for ourselves
    bool unused = false;
    return compute_uncached(full, compute, unused);
  }
  const std::uint64_t arrived = generation(full).load(std::memory_order_acquire);
  bool backend_up = true;
  std::string seen;  // a placeholder our lookup found
  try {
    lookup_result hit = backend_->get(full);
    if (hit.found && !is_lease(hit.value)) {
      stats::bump(stats_.hits);
      return {std::move(hit.value), hit.ttl_ms, outcome::hit};
    }
    if (hit.found) seen = std::move(hit.value);
    stats::bump(stats_.misses);
  } catch (const backend_error&) {
    backend_up = false;  // fail open: compute as if uncached (counted by the guarded backend)
  }

  const auto wait = std::chrono::milliseconds(options_.singleflight_wait_ms);
  bool leader = false;
  flight_ptr flight = flights_.join(full, leader);
  bool unused = false;
  for (int round = 0;; ++round) {
    if (leader) return lead(full, policy, compute, flight, backend_up, seen, "");
    auto observed = single_flight::observed(flight, wait);
    if (!observed) return compute_uncached(full, compute, unused, backend_up);  // the leader is stuck
    bool joinable = arrived <= observed->generation;
    if (joinable && !observed->value && !observed->placeholder.empty()) {
      // The leader computes under (or saw) a placeholder. We may join only if that placeholder
      // is still there for us: an invalidation since removed it. Our own lease attempt tells
      // (and is our miss's one extra round trip anyway).
      if (backend_up && seen != observed->placeholder) {
        std::string mine = make_lease_placeholder();
        try {
          lease_result l = guarded([&] { return store_->lease(full, mine, lease_ms()); });
          if (l.granted) return lead(full, policy, compute, flights_.replace(full), true, "", mine);
          if (l.current.found && !is_lease(l.current.value)) {
            stats::bump(stats_.hits);
            return {std::move(l.current.value), l.current.ttl_ms, outcome::hit};
          }
          seen = l.current.found ? std::move(l.current.value) : std::string();
        } catch (const backend_error&) {
          backend_up = false;
        }
      }
      joinable = seen == observed->placeholder;
    }
    if (joinable) {
      stats::bump(stats_.coalesced);
      single_flight::outcome out = single_flight::wait(flight, wait);
      if (out.error) out.error->raise();  // the leader's failure, shared
      if (out.result) return {std::move(out.result->value), out.result->ttl_ms, outcome::coalesced};
      // The leader declined to share (its lease is released), or is too slow (it still holds
      // it): compute alone, under our own lease if we get one.
      if (backend_up) {
        std::string mine = make_lease_placeholder();
        try {
          lease_result l = guarded([&] { return store_->lease(full, mine, lease_ms()); });
          if (l.granted) return compute_leased(full, policy, compute, mine, unused);
          if (l.current.found && !is_lease(l.current.value)) {
            stats::bump(stats_.hits);
            return {std::move(l.current.value), l.current.ttl_ms, outcome::hit};
          }
        } catch (const backend_error&) {
          backend_up = false;
        }
      }
      return compute_uncached(full, compute, unused, backend_up);
    }
    // That flight is void for us. A newer one may have replaced it; else compute alone.
    flight_ptr current = flights_.join(full, leader);
    if (current == flight || round >= 2) {
      if (leader) flights_.finish(full, current, std::nullopt);
      return compute_uncached(full, compute, unused, backend_up);
    }
    flight = std::move(current);
  }
}

void cache::publish(const flight_ptr& flight, const std::string& full, std::string placeholder, bool value) const {
  // The generation is read after the observation and before computing: an invalidation counted
  // in it happened before this flight's computation began.
  single_flight::publish(flight, {std::move(placeholder), generation(full).load(std::memory_order_acquire), value});
}

get_or_compute_result cache::lead(const std::string& full, const ttl_policy& policy,
                                  const std::function<computed()>& compute, const flight_ptr& flight,
                                  bool backend_up, const std::string& seen, const std::string& granted) {
  try {
    bool shareable = false;
    get_or_compute_result r = lead_flight(full, policy, compute, flight, backend_up, seen, granted, shareable);
    std::optional<single_flight::shared_result> shared;
    if (shareable) shared = single_flight::shared_result{r.value, std::max<std::int64_t>(r.ttl_ms, 0), static_cast<int>(r.outcome)};
    flights_.finish(full, flight, std::move(shared));
    return r;
  } catch (...) {
    flights_.finish(full, flight, std::nullopt, single_flight::current_failure());  // waiters get the same failure
    throw;
  }
}

// The in-process leader. With the cross-process lock on (lock_ttl_ms), it first takes the lock
// key: the holder goes on to lease and compute; the others poll for the stored value (bounded by
// singleflight_wait_ms, after which they go on too). A crashed holder's lock expires after
// lock_ttl_ms, so it cannot block the others past that. The lock only spares computations; the
// lease (always on) is what fences the store.
get_or_compute_result cache::lead_flight(const std::string& full, const ttl_policy& policy,
                                         const std::function<computed()>& compute, const flight_ptr& flight,
                                         bool backend_up, const std::string& seen, const std::string& granted,
                                         bool& shareable) {
  if (!granted.empty()) {
    publish(flight, full, granted, false);
    return compute_leased(full, policy, compute, granted, shareable);
  }
  if (!backend_up) {
    publish(flight, full, "", false);
    return compute_uncached(full, compute, shareable, false);
  }
  // A placeholder our lookup saw may be gone already (its holder stored, or gave up): the lease
  // attempt looks again in the same round trip.
  (void)seen;
  if (options_.lock_ttl_ms == 0) return lease_and_compute(full, policy, compute, flight, shareable);
  const std::string lock_key = lock_key_for(full), token = random_token();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.singleflight_wait_ms);
  for (int delay_ms = 2;; delay_ms = std::min(delay_ms * 2, 50)) {
    bool locked = false;
    try {
      locked = backend_->try_lock(lock_key, token, options_.lock_ttl_ms);
    } catch (const backend_error&) {
      publish(flight, full, "", false);
      return compute_uncached(full, compute, shareable, false);
    }
    if (locked) {
      get_or_compute_result r;
      try {
        r = lease_and_compute(full, policy, compute, flight, shareable);
      } catch (...) {
        try { backend_->unlock(lock_key, token); } catch (const backend_error&) {}
        throw;
      }
      try { backend_->unlock(lock_key, token); } catch (const backend_error&) {}
      return r;
    }
    if (std::chrono::steady_clock::now() >= deadline) return lease_and_compute(full, policy, compute, flight, shareable);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    try {
      lookup_result hit = backend_->get(full);
      if (hit.found && !is_lease(hit.value)) {
        stats::bump(stats_.coalesced);
        publish(flight, full, "", true);
        shareable = true;
        return {std::move(hit.value), hit.ttl_ms, outcome::coalesced};
      }
    } catch (const backend_error&) {
      publish(flight, full, "", false);
      return compute_uncached(full, compute, shareable, false);
    }
  }
}

// Takes the key's lease (SET NX of a placeholder, one round trip that also reads what is there
// when refused) and computes under it; a value found instead is a hit.
get_or_compute_result cache::lease_and_compute(const std::string& full, const ttl_policy& policy,
                                               const std::function<computed()>& compute, const flight_ptr& flight,
                                               bool& shareable) {
  std::string placeholder = make_lease_placeholder();
  lease_result l;
  try {
    l = guarded([&] { return store_->lease(full, placeholder, lease_ms()); });
  } catch (const backend_error&) {
    publish(flight, full, "", false);
    return compute_uncached(full, compute, shareable, false);
  }
  if (l.granted) {
    publish(flight, full, placeholder, false);
    return compute_leased(full, policy, compute, placeholder, shareable);
  }
  if (l.current.found && !is_lease(l.current.value)) {
    stats::bump(stats_.hits);
    publish(flight, full, "", true);
    shareable = true;
    return {std::move(l.current.value), l.current.ttl_ms, outcome::hit};
  }
  publish(flight, full, l.current.found ? l.current.value : std::string(), false);
  return compute_uncached(full, compute, shareable);
}

get_or_compute_result cache::compute_leased(const std::string& full, const ttl_policy& policy,
                                            const std::function<computed()>& compute,
                                            const std::string& placeholder, bool& shareable) {
  auto release = [&] {
    try {
      guarded([&] {
        store_->release(full, placeholder);
        return 0;
      });
    } catch (const backend_error&) {
    }
  };
  computed fresh;
  try {
    fresh = run(full, compute);
  } catch (...) {
    release();
    throw;
  }
  get_or_compute_result result{std::move(fresh.value), 0, outcome::uncached};
  // Only a value its producer wanted cached may be handed to concurrent callers.
  shareable = fresh.store && result.value.size() <= options_.max_value_bytes;
  if (fresh.store && result.value.size() > options_.max_value_bytes) stats::bump(stats_.oversized);
  if (!shareable || is_lease(result.value)) {
    release();  // nothing to store: the next caller may take the lease at once
    stats::bump(stats_.uncached);
    return result;
  }
  try {
    // A TTL callback that fails or returns <= 0 costs the store, not the caller's value.
    std::int64_t seconds = ttl(policy, now_unix_ms());
    // Refused when an invalidation (or an explicit set) replaced our placeholder meanwhile: the
    // value is still this caller's (and its waiters', who arrived before the invalidation).
    if (guarded([&] { return store_->store_leased(full, placeholder, result.value, seconds * 1000); })) {
      result.ttl_ms = seconds * 1000;
      result.outcome = outcome::stored;
      stats::bump(stats_.stores);
    } else {
      result.ttl_ms = -1;  // refused: the lease was voided (fencing)
      stats::bump(stats_.uncached);
    }
  } catch (const backend_error&) {
    stats::bump(stats_.uncached);
  } catch (const error&) {
    release();
    stats::bump(stats_.uncached);
  }
  return result;
}

// fenced: not stored because of fencing (another caller's lease, an invalidation, a waiter
// computing alone), not because of the backend: reported as ttl_ms -1 (see the header).
get_or_compute_result cache::compute_uncached(const std::string& full, const std::function<computed()>& compute,
                                              bool& shareable, bool fenced) {
  computed fresh = run(full, compute);
  get_or_compute_result result{std::move(fresh.value), fenced ? -1 : 0, outcome::uncached};
  shareable = fresh.store && result.value.size() <= options_.max_value_bytes;
  if (fresh.store && result.value.size() > options_.max_value_bytes) stats::bump(stats_.oversized);
  stats::bump(stats_.uncached);
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
  check_not_lease(value);
  std::int64_t seconds = ttl(policy, now_unix_ms());
  s.set(full, value, seconds * 1000, [counters = &stats_, seconds, done = std::move(done)](int status, std::int64_t) {
    if (status == 0) stats::bump(counters->stores);
    done(status, status == 0 ? seconds : 0);
  });
}

void cache::async_release(async_session& s, std::string_view key, count_done_fn done) const {
  s.release(full_key(key), std::move(done));
}

void cache::async_invalidate(async_session& s, const std::vector<std::string_view>& keys,
                             count_done_fn done) const {
  if (keys.empty()) throw error(errc::invalid, "no keys to invalidate");
  auto full = full_keys(*this, keys);
  for (const auto& k : full) generation(k).fetch_add(1, std::memory_order_acq_rel);
  s.del(std::move(full), std::move(done));
}

}  // namespace httpcache
