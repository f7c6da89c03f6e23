// SPDX-License-Identifier: MIT
#include "cache.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <thread>

#include "guarded_backend.hpp"
#include "key.hpp"
#include "thread_state.hpp"
#include "lmdb_backend.hpp"
#include "memory_backend.hpp"
#include "near_cache.hpp"
#include "redis/backend.hpp"
#include "redis/cluster_backend.hpp"
#include "url.hpp"

namespace httpcache {

namespace {

std::unique_ptr<backend> make_backend(const backend_url& url, const cache_options& options) {
  if (url.scheme == url_scheme::memory)
    return std::make_unique<memory_backend>(options.memory_max_entries, options.memory_max_bytes);
  if (url.scheme == url_scheme::lmdb) return make_lmdb_backend(url);
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
// A stale entry's refresh lock (stale.hpp): its own name, so that a refresh in progress never
// makes lock_ttl_ms's callers wait for a value it may not store.
std::string refresh_key_for(const std::string& full) { return "httpcache-refresh!" + full; }

// Whether a refresh of `raw` by a call naming `tags` may store: only when it stamps the same tags
// the entry carries (a refresher naming fewer would drop the others, and the value would outlive
// their invalidation).
bool same_tags(std::string_view raw, const tag_set& tags) {
  std::vector<tag_stamp> stamps;
  std::string_view payload;
  if (!is_tagged(raw)) return tags.empty();
  if (!unwrap_tagged(raw, stamps, payload) || stamps.size() != tags.tags().size()) return false;
  return std::all_of(stamps.begin(), stamps.end(), [&](const tag_stamp& s) {
    return std::find(tags.tags().begin(), tags.tags().end(), s.tag) != tags.tags().end();
  });
}

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
  // An embedded store (memory://, lmdb://) is near already.
  near_ = options_.near_cache && where.scheme != url_scheme::memory && where.scheme != url_scheme::lmdb;
  if (near_)
    store = std::make_unique<near_tier>(std::move(store), ns_,
                                        near_options{options_.near_max_bytes, options_.near_max_age_ms}, stats_);
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
  if (is_tagged(value)) throw error(errc::invalid, "the value starts with the bytes reserved for tagged entries");
  if (is_fresh_wrapped(value)) throw error(errc::invalid, "the value starts with the bytes reserved for stale windows");
}

// A computed value that would read back as something else: never stored.
bool is_reserved(std::string_view value) { return is_lease(value) || is_tagged(value) || is_fresh_wrapped(value); }

// What is stored for a value: inside its freshness envelope when it has windows, inside its tags'
// envelope when it has tags.
std::string stamped(std::string_view value, std::int64_t seconds, const stale_windows& windows, const tag_set& tags) {
  std::string inner = windows.any() ? wrap_fresh(now_unix_ms() + seconds * 1000, windows, value) : std::string(value);
  return tags.empty() ? inner : tags.wrap(inner);
}

std::vector<std::string> tag_keys_of(std::string_view ns, const std::vector<std::string>& tags) {
  std::vector<std::string> keys;
  keys.reserve(tags.size());
  for (const auto& t : tags) keys.push_back(tag_key(ns, t));
  return keys;
}

// The keys this thread is computing (re-entrancy: a compute callback calling get_or_compute on
// its own key would otherwise wait for itself).
using computing_keys = std::vector<std::pair<const cache*, std::string>>;
computing_keys& computing() { return thread_state<computing_keys, computing_keys>(); }

bool computing_here(const cache* c, const std::string& full) {
  for (const auto& [who, key] : computing())
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
  const std::string full = full_key(key);
  lookup_result r = backend_->get(full);
  tag_set none;
  if (!accept(full, r, none, false)) r = lookup_result{};  // a computation in progress, or stale: a miss
  if (r.found && is_fresh_wrapped(r.value)) {  // fresh: its freshness is its TTL; stale: a miss here
    get_or_compute_result fresh = served(std::move(r), outcome::hit);
    r = fresh.outcome == outcome::hit ? lookup_result{true, std::move(fresh.value), fresh.ttl_ms} : lookup_result{};
  }
  stats::bump(r.found ? stats_.hits : stats_.misses);
  return r;
}

namespace {
struct peek_key_tag;
}

std::optional<lookup_result> cache::peek(std::string_view key, std::uint64_t known, bool only_unchanged) {
  // A hit is made of this lookup and the caller's copy: the full key is built in a buffer of the
  // thread's rather than a new string each time.
  std::string& full = thread_state<peek_key_tag, std::string>();
  httpcache::full_key(full, ns_, key);
  std::optional<lookup_result> r = backend_->peek(full, known);
  if (!r || !r->found || (only_unchanged && !r->unchanged)) return std::nullopt;
  // An unchanged value passed these checks when its version was answered.
  if (!r->unchanged && (is_lease(r->value) || is_tagged(r->value))) return std::nullopt;
  if (!r->unchanged && is_fresh_wrapped(r->value)) {
    get_or_compute_result fresh = served(std::move(*r), outcome::hit);
    if (fresh.outcome != outcome::hit) return std::nullopt;  // stale: the caller's normal path decides
    r = lookup_result{true, std::move(fresh.value), fresh.ttl_ms};  // no version: fresh only for now
  }
  stats::bump(stats_.hits);
  if (near_) stats::bump(stats_.near_hits);
  return r;
}

// The entry and the tags' generations in one round trip (the store creates a missing one).
lookup_result cache::lookup(const std::string& full, tag_set& tags) {
  if (tags.empty()) return backend_->get(full);
  return read_stamped(full, tags.tags(), tags);
}

// The entry at `full` (empty: none is read) and the generations of the tags `names`, learned by
// `tags`, in one round trip where the store can. Throws backend_error.
lookup_result cache::read_stamped(const std::string& full, const std::vector<std::string>& names, tag_set& tags) {
  const std::vector<std::string> keys = tag_keys_of(ns_, names);
  std::vector<std::string> candidates(keys.size()), generations;
  for (auto& c : candidates) c = make_generation();
  std::vector<std::string_view> views(keys.begin(), keys.end());
  lookup_result r = guarded([&] { return store_->get_stamped(full, views, candidates, generations); });
  for (std::size_t i = 0; i < names.size(); ++i) tags.learn(names[i], std::move(generations[i]));
  return r;
}

// Whether a found value is a hit for this call: not a placeholder, and current as far as tags
// go (stamped tags this call knows no generation of are read first: one more round trip). A
// hit's value becomes the payload inside its envelope. A stale entry is deleted (if it is still
// there) when drop_stale, so that the lease that follows can be taken.
bool cache::accept(const std::string& full, lookup_result& r, tag_set& tags, bool drop_stale, std::string* raw) {
  if (!r.found || is_lease(r.value)) return false;
  std::string_view payload;
  std::vector<std::string> missing;
  tag_set::verdict v = tags.judge(r.value, payload, missing);
  if (v == tag_set::verdict::unknown) {
    try {
      read_stamped({}, missing, tags);
    } catch (const backend_error&) {
      for (const auto& m : missing) tags.learn(m, std::string());  // unknown: not a hit
    }
    v = tags.judge(r.value, payload, missing);
  }
  if (v == tag_set::verdict::current) {
    if (payload.size() != r.value.size()) {
      std::string inner(payload);
      if (raw) *raw = std::move(r.value);
      r.value = std::move(inner);
    }
    return true;
  }
  if (drop_stale) {
    try {
      guarded([&] {
        store_->release(full, r.value);
        return 0;
      });
    } catch (const backend_error&) {
    }
    r = lookup_result{};
  }
  return false;
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

void cache::invalidate_tags(const std::vector<std::string_view>& tags) {
  std::vector<std::string> keys;
  for (auto t : tags) keys.push_back(tag_key(ns_, t));  // every tag checked before anything is sent
  // Before the writes: no flight that starts computing from now on is joined by an earlier caller's
  // observation (a tag may cover any key, so every stripe moves).
  for (auto& g : generations_) g.fetch_add(1, std::memory_order_acq_rel);
  for (const auto& k : keys) backend_->set(k, make_generation(), tag_ttl_ms);
}

std::size_t cache::invalidate(const std::vector<std::string_view>& keys) {
  auto full = full_keys(*this, keys);
  // Before the DEL: a flight of these keys that starts computing from now on reads the new data.
  for (const auto& k : full) generation(k).fetch_add(1, std::memory_order_acq_rel);
  std::vector<std::string_view> views(full.begin(), full.end());
  return backend_->del(views);
}

computed cache::run(const std::string& full, const std::function<computed()>& compute) {
  computing().emplace_back(this, full);
  struct pop {
    ~pop() { computing().pop_back(); }
  } popper;
  return compute();
}

// A caller after a miss: lead a flight, join one whose observation matches its own (the same
// placeholder seen, no invalidation through this handle since it started), or compute alone.
get_or_compute_result cache::get_or_compute(std::string_view key, const ttl_policy& policy,
                                            const std::function<computed()>& compute,
                                            const std::vector<std::string>& tag_names,
                                            const stale_windows& stale) {
  std::string full = full_key(key);
  validate_ttl_policy(policy);
  validate_stale_windows(stale);
  call_options call{tag_set(tag_names), stale};
  if (computing_here(this, full)) {  // re-entrant: never wait for ourselves
    bool unused = false;
    return compute_uncached(full, compute, unused);
  }
  const std::uint64_t arrived = generation(full).load(std::memory_order_acquire);
  bool backend_up = true;
  std::string seen;  // a placeholder our lookup found
  std::optional<lookup_result> found;
  std::string raw;  // the stored bytes, when accept() took an envelope off
  try {
    lookup_result hit = lookup(full, call.tags);
    if (accept(full, hit, call.tags, true, &raw)) {
      if (!is_fresh_wrapped(hit.value)) {
        stats::bump(stats_.hits);
        return {std::move(hit.value), hit.ttl_ms, outcome::hit};
      }
      found = std::move(hit);
    }
    if (!found) {
      if (hit.found) seen = std::move(hit.value);
      stats::bump(stats_.misses);
    }
  } catch (const backend_error&) {
    backend_up = false;  // fail open: compute as if uncached (counted by the guarded backend)
  }
  if (found) return fresh_or_stale(full, policy, compute, call, std::move(*found), std::move(raw));

  const auto wait = std::chrono::milliseconds(options_.singleflight_wait_ms);
  bool leader = false;
  flight_ptr flight = flights_.join(full, leader);
  bool unused = false;
  for (int round = 0;; ++round) {
    if (leader) return lead(full, policy, compute, flight, backend_up, seen, "", call);
    auto observed = single_flight::observed(flight, wait);
    if (!observed) return compute_uncached(full, compute, unused, backend_up);  // the leader is stuck
    bool joinable = arrived <= observed->generation && observed->tags == call.tags.signature();
    if (joinable && !observed->value && !observed->placeholder.empty()) {
      // The leader computes under (or saw) a placeholder. We may join only if that placeholder
      // is still there for us: an invalidation since removed it. Our own lease attempt tells
      // (and is our miss's one extra round trip anyway).
      if (backend_up && seen != observed->placeholder) {
        std::string mine = make_lease_placeholder();
        try {
          lease_result l = guarded([&] { return store_->lease(full, mine, lease_ms()); });
          if (l.granted) return lead(full, policy, compute, flights_.replace(full), true, "", mine, call);
          if (accept(full, l.current, call.tags, false)) {
            stats::bump(stats_.hits);
            return served(std::move(l.current), outcome::hit);
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
          if (l.granted) return compute_leased(full, policy, compute, mine, unused, call);
          if (accept(full, l.current, call.tags, false)) {
            stats::bump(stats_.hits);
            return served(std::move(l.current), outcome::hit);
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

void cache::publish(const flight_ptr& flight, const std::string& full, std::string placeholder, bool value,
                    const tag_set& tags) const {
  // The generation is read after the observation and before computing: an invalidation counted
  // in it happened before this flight's computation began.
  single_flight::publish(flight, {std::move(placeholder), generation(full).load(std::memory_order_acquire), value,
                                  tags.signature()});
}

get_or_compute_result cache::lead(const std::string& full, const ttl_policy& policy,
                                  const std::function<computed()>& compute, const flight_ptr& flight,
                                  bool backend_up, const std::string& seen, const std::string& granted,
                                  call_options& call) {
  try {
    bool shareable = false;
    get_or_compute_result r = lead_flight(full, policy, compute, flight, backend_up, seen, granted, shareable, call);
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
                                         bool& shareable, call_options& call) {
  if (!granted.empty()) {
    publish(flight, full, granted, false, call.tags);
    return compute_leased(full, policy, compute, granted, shareable, call);
  }
  if (!backend_up) {
    publish(flight, full, "", false, call.tags);
    return compute_uncached(full, compute, shareable, false);
  }
  // A placeholder our lookup saw may be gone already (its holder stored, or gave up): the lease
  // attempt looks again in the same round trip.
  (void)seen;
  if (options_.lock_ttl_ms == 0) return lease_and_compute(full, policy, compute, flight, shareable, call);
  const std::string lock_key = lock_key_for(full), token = random_token();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.singleflight_wait_ms);
  for (int delay_ms = 2;; delay_ms = std::min(delay_ms * 2, 50)) {
    bool locked = false;
    try {
      locked = backend_->try_lock(lock_key, token, options_.lock_ttl_ms);
    } catch (const backend_error&) {
      publish(flight, full, "", false, call.tags);
      return compute_uncached(full, compute, shareable, false);
    }
    if (locked) {
      get_or_compute_result r;
      try {
        r = lease_and_compute(full, policy, compute, flight, shareable, call);
      } catch (...) {
        try { backend_->unlock(lock_key, token); } catch (const backend_error&) {}
        throw;
      }
      try { backend_->unlock(lock_key, token); } catch (const backend_error&) {}
      return r;
    }
    if (std::chrono::steady_clock::now() >= deadline) return lease_and_compute(full, policy, compute, flight, shareable, call);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    try {
      lookup_result hit = backend_->get(full);
      if (accept(full, hit, call.tags, false)) {
        stats::bump(stats_.coalesced);
        publish(flight, full, "", true, call.tags);
        shareable = true;
        return served(std::move(hit), outcome::coalesced);
      }
    } catch (const backend_error&) {
      publish(flight, full, "", false, call.tags);
      return compute_uncached(full, compute, shareable, false);
    }
  }
}

// Takes the key's lease (SET NX of a placeholder, one round trip that also reads what is there
// when refused) and computes under it; a value found instead is a hit.
get_or_compute_result cache::lease_and_compute(const std::string& full, const ttl_policy& policy,
                                               const std::function<computed()>& compute, const flight_ptr& flight,
                                               bool& shareable, call_options& call) {
  std::string placeholder = make_lease_placeholder();
  lease_result l;
  try {
    l = guarded([&] { return store_->lease(full, placeholder, lease_ms()); });
  } catch (const backend_error&) {
    publish(flight, full, "", false, call.tags);
    return compute_uncached(full, compute, shareable, false);
  }
  if (l.granted) {
    publish(flight, full, placeholder, false, call.tags);
    return compute_leased(full, policy, compute, placeholder, shareable, call);
  }
  if (accept(full, l.current, call.tags, false)) {
    stats::bump(stats_.hits);
    publish(flight, full, "", true, call.tags);
    shareable = true;
    return served(std::move(l.current), outcome::hit);
  }
  publish(flight, full, l.current.found ? l.current.value : std::string(), false, call.tags);
  return compute_uncached(full, compute, shareable);
}

get_or_compute_result cache::compute_leased(const std::string& full, const ttl_policy& policy,
                                            const std::function<computed()>& compute,
                                            const std::string& placeholder, bool& shareable, call_options& call) {
  auto release = [&] {
    try {
      guarded([&] {
        store_->release(full, placeholder);
        return 0;
      });
    } catch (const backend_error&) {
    }
  };
  if (!call.tags.complete()) {  // a tag's generation could not be read: what we compute is not stored
    release();
    return compute_uncached(full, compute, shareable);
  }
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
  if (!shareable || is_reserved(result.value)) {
    release();  // nothing to store: the next caller may take the lease at once
    stats::bump(stats_.uncached);
    return result;
  }
  try {
    // Refused when an invalidation (or an explicit set) replaced our placeholder meanwhile: the
    // value is still this caller's (and its waiters', who arrived before the invalidation).
    store_in_place_of(full, placeholder, policy, fresh.stale, call, result);
    if (result.outcome != outcome::stored) stats::bump(stats_.uncached);
  } catch (const backend_error&) {
    stats::bump(stats_.uncached);
  } catch (const error&) {
    release();
    stats::bump(stats_.uncached);
  }
  return result;
}

// Stores result.value, stamped, in place of `expected` (our lease's placeholder, or the stale
// bytes a refresh read) only while the key still holds exactly that (fencing: ttl_ms -1 when
// refused). A TTL callback that fails or returns <= 0 throws: it costs the store, not the value.
void cache::store_in_place_of(const std::string& full, const std::string& expected, const ttl_policy& policy,
                              const std::optional<stale_windows>& own, const call_options& call,
                              get_or_compute_result& result) {
  const std::int64_t seconds = ttl(policy, now_unix_ms());
  const stale_windows windows = own.value_or(call.stale);
  const std::string stored = stamped(result.value, seconds, windows, call.tags);
  if (guarded([&] { return store_->store_leased(full, expected, stored, seconds * 1000 + windows.longest()); })) {
    result.ttl_ms = seconds * 1000;
    result.outcome = outcome::stored;
    stats::bump(stats_.stores);
  } else {
    result.ttl_ms = -1;
  }
}

// A hit found on the way to computing (a lease attempt's answer, a poll): served as it is, fresh
// or stale (with the remaining freshness as its TTL), never refreshed from here.
get_or_compute_result cache::served(lookup_result&& hit, outcome o) const {
  freshness f;
  std::string_view inner;
  if (!is_fresh_wrapped(hit.value) || !unwrap_fresh(hit.value, f, inner)) return {std::move(hit.value), hit.ttl_ms, o};
  const std::int64_t left = f.fresh_until_ms - now_unix_ms();
  return {std::string(inner), left, left > 0 ? o : outcome::stale};
}

// A hit of an entry with stale windows (raw: its stored bytes; empty when they are hit.value).
get_or_compute_result cache::fresh_or_stale(const std::string& full, const ttl_policy& policy,
                                            const std::function<computed()>& compute, call_options& call,
                                            lookup_result hit, std::string raw) {
  freshness f;
  std::string_view inner;
  const std::int64_t now = now_unix_ms();
  if (raw.empty()) raw = hit.value;
  if (!unwrap_fresh(hit.value, f, inner)) {  // not written by us: dropped (if still there), a miss
    stats::bump(stats_.misses);
    try {
      guarded([&] {
        store_->release(full, raw);
        return 0;
      });
    } catch (const backend_error&) {
    }
    bool unused = false;
    return compute_uncached(full, compute, unused);
  }
  stats::bump(stats_.hits);
  std::string value(inner);  // inner points into hit.value
  if (now < f.fresh_until_ms) return {std::move(value), f.fresh_until_ms - now, outcome::hit};
  return serve_stale(full, policy, compute, call, raw, std::move(value), f, now);
}

// An entry past its freshness, within its windows: the caller that takes the key's refresh lock
// recomputes and stores over the entry it saw (only while it is still there: an invalidation in
// between wins); the others get the stale value within stale-while-revalidate, or compute
// (unstored) past it. A computation that fails within stale-if-error is answered with it.
get_or_compute_result cache::serve_stale(const std::string& full, const ttl_policy& policy,
                                         const std::function<computed()>& compute, call_options& call,
                                         const std::string& raw, std::string value, const freshness& f,
                                         std::int64_t now) {
  const std::int64_t staleness = now - f.fresh_until_ms;
  const std::string lock = refresh_key_for(full), token = make_lease_placeholder();
  bool won = false;
  try {
    won = guarded([&] { return store_->lease(lock, token, lease_ms()); }).granted;
  } catch (const backend_error&) {
  }
  auto unlock = [&] {
    try {
      guarded([&] {
        store_->release(lock, token);
        return 0;
      });
    } catch (const backend_error&) {
    }
  };
  get_or_compute_result stale{std::move(value), f.fresh_until_ms - now, outcome::stale};
  if (!won && staleness <= f.windows.while_revalidate_ms) return stale;
  computed fresh;
  try {
    fresh = run(full, compute);
  } catch (...) {
    if (won) unlock();
    // Measured after the computation. Within stale-while-revalidate the refresher's caller is
    // answered as the others were (RFC 5861 revalidates in the background: no client sees it).
    const std::int64_t now_stale = now_unix_ms() - f.fresh_until_ms;
    if (now_stale <= f.windows.if_error_ms || (won && staleness <= f.windows.while_revalidate_ms)) {
      stale.ttl_ms = -now_stale;
      return stale;
    }
    throw;
  }
  get_or_compute_result result{std::move(fresh.value), 0, outcome::uncached};
  const bool storable = won && fresh.store && result.value.size() <= options_.max_value_bytes &&
                        !is_reserved(result.value) && call.tags.complete() && same_tags(raw, call.tags);
  if (storable) {
    try {
      store_in_place_of(full, raw, policy, fresh.stale, call, result);  // refused: the entry changed
    } catch (const backend_error&) {
    } catch (const error&) {
    }
  }
  if (result.outcome != outcome::stored) stats::bump(stats_.uncached);
  if (won) unlock();
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

namespace {

// One async get with tags: the entry's get and the tags' stamps go out together; the answer is
// judged when the last of them completes. A stale entry is deleted (if still there) and looked
// up once more, so that the miss takes the key's lease; stamped tags the call did not name are
// read in one more round trip.
struct tagged_lookup : std::enable_shared_from_this<tagged_lookup> {
  async_session& session;
  std::string full, ns;
  tag_set tags;
  cache::tagged_get_done_fn done;
  stats* counters;
  std::int64_t lease_ms = default_lease_ms;  // the refresh lock's lifetime (the handle's lease)
  std::size_t left = 0;
  int status = 0;
  std::string value;
  std::int64_t ttl_ms = 0;
  bool retried = false;
  // A stale entry (stale.hpp): its value, freshness and the refresh lock this call tried.
  std::string stale_value, refresh_token;
  freshness fresh;

  tagged_lookup(async_session& s, std::string f, std::string n, tag_set t, cache::tagged_get_done_fn d, stats* c)
      : session(s), full(std::move(f)), ns(std::move(n)), tags(std::move(t)), done(std::move(d)), counters(c) {}

  void start() {
    left = 1 + tags.tags().size();
    auto self = shared_from_this();
    session.get(full, [self](int st, std::string_view v, std::int64_t ttl) {
      self->status = st;
      self->value.assign(v);
      self->ttl_ms = ttl;
      self->one_done();
    });
    stamp(tags.tags());
  }

  void stamp(const std::vector<std::string>& names) {
    auto self = shared_from_this();
    for (const auto& name : names)
      session.stamp(tag_key(ns, name), make_generation(), tag_ttl_ms, [self, name](int st, std::string_view g, std::int64_t) {
        self->tags.learn(name, st == 0 ? std::string(g) : std::string());
        self->one_done();
      });
  }

  void one_done() {
    if (--left == 0) judge();
  }

  void judge() {
    if (status != 0) return finish(status, {}, ttl_ms);  // a miss (ttl_ms: its lease number) or a failure
    std::string_view payload;
    std::vector<std::string> missing;
    switch (tags.judge(value, payload, missing)) {
      case tag_set::verdict::current:
        return found(payload);
      case tag_set::verdict::unknown:
        if (!retried) {
          retried = true;
          left = missing.size();
          return stamp(missing);
        }
        return refuse();
      case tag_set::verdict::stale:
        break;
    }
    if (retried) return refuse();
    retried = true;
    auto self = shared_from_this();
    session.del_if(full, value, [self](int, std::int64_t) {
      self->left = 1;
      self->session.get(self->full, [self](int st, std::string_view v, std::int64_t ttl) {
        self->status = st;
        self->value.assign(v);
        self->ttl_ms = ttl;
        self->one_done();
      });
    });
  }

  // A current entry: served, unless it is past its freshness (then see refresh()).
  void found(std::string_view payload) {
    std::string_view inner;
    if (!is_fresh_wrapped(payload)) return finish(0, payload, ttl_ms);
    if (!unwrap_fresh(payload, fresh, inner)) return refuse();  // not written by us: a miss, not stored
    const std::int64_t now = now_unix_ms();
    if (now < fresh.fresh_until_ms) return finish(0, inner, fresh.fresh_until_ms - now);
    stale_value.assign(inner);
    const std::string token = make_lease_placeholder();
    auto self = shared_from_this();
    session.stamp(refresh_key_for(full), token, lease_ms, [self, token](int st, std::string_view holder, std::int64_t) {
      if (st == static_cast<int>(errc::canceled)) return self->finish(st, {}, 0);  // the session is closing
      self->refresh(st == 0 && holder == token ? token : std::string());
    });
  }

  // Stale: the caller holding the refresh lock gets errc::stale and refreshes (its set replaces
  // the entry it saw, only while it is still there); the others get the stale value within
  // stale-while-revalidate, or errc::stale past it (they compute; their set is refused).
  void refresh(std::string token) {
    const std::int64_t now = now_unix_ms(), staleness = now - fresh.fresh_until_ms;
    if (token.empty() && staleness <= fresh.windows.while_revalidate_ms) return finish(0, stale_value, -staleness);
    // A refresher naming other tags than the entry's would drop some: it computes, unstored.
    session.expect(full, token.empty() || !same_tags(value, tags) ? std::string() : value);
    refresh_token = std::move(token);
    finish(static_cast<int>(errc::stale), stale_value, -staleness);
  }

  // A miss this call may not store after: no lease is held (its last get found a value), so a
  // plain SET could land after an invalidation. Without generations, async_set refuses.
  void refuse() {
    tags.forget_generations();
    finish(static_cast<int>(errc::not_found), {}, 0);
  }

  void finish(int st, std::string_view v, std::int64_t ttl) {
    if (st == 0 || st == static_cast<int>(errc::stale)) stats::bump(counters->hits);
    if (st == static_cast<int>(errc::not_found)) stats::bump(counters->misses);
    done(st, v, ttl, tags, refresh_token);
  }
};

}  // namespace

void cache::async_get(async_session& s, std::string_view key, const std::vector<std::string>& tags,
                      tagged_get_done_fn done) const {
  std::string full = full_key(key);
  tag_set names(tags);
  if (names.empty()) {  // the common case: no state to keep unless the entry is tagged
    s.get(full, [this, &s, full, done = std::move(done)](int status, std::string_view value, std::int64_t ttl_ms) {
      if (status == 0 && (is_tagged(value) || is_fresh_wrapped(value))) {
        auto look = std::make_shared<tagged_lookup>(s, full, ns_, tag_set(), done, &stats_);
        look->lease_ms = lease_ms();
        look->value.assign(value);
        look->ttl_ms = ttl_ms;
        return look->judge();
      }
      if (status == 0) stats::bump(stats_.hits);
      if (status == static_cast<int>(errc::not_found)) stats::bump(stats_.misses);
      static const tag_set none;
      done(status, value, ttl_ms, none, std::string());
    });
    return;
  }
  auto look = std::make_shared<tagged_lookup>(s, std::move(full), ns_, std::move(names), std::move(done), &stats_);
  look->lease_ms = lease_ms();
  look->start();
}

void cache::async_set(async_session& s, std::string_view key, std::string_view value, const ttl_policy& policy,
                      count_done_fn done, const tag_set* tags, const stale_windows& stale) const {
  std::string full = full_key(key);
  check_value_size(value.size());
  check_not_lease(value);
  validate_stale_windows(stale);
  std::int64_t seconds = ttl(policy, now_unix_ms());
  // A tag whose generation the get could not read: the value is not stored (its lease goes).
  if (tags && !tags->empty() && !tags->complete())
    return s.release(full, [done = std::move(done)](int, std::int64_t) { done(static_cast<int>(errc::not_found), 0); });
  static const tag_set none;
  const std::string stored = stamped(value, seconds, stale, tags ? *tags : none);
  s.set(full, stored, seconds * 1000 + stale.longest(),
        [counters = &stats_, seconds, done = std::move(done)](int status, std::int64_t) {
          if (status == 0) stats::bump(counters->stores);
          done(status, status == 0 ? seconds : 0);
        });
}

void cache::async_end_refresh(async_session& s, std::string_view key, std::string refresh_token) const {
  if (refresh_token.empty()) return;
  s.del_if(refresh_key_for(full_key(key)), std::move(refresh_token), [](int, std::int64_t) {});
}

void cache::async_invalidate_tags(async_session& s, const std::vector<std::string_view>& tags,
                                  count_done_fn done) const {
  if (tags.empty()) throw error(errc::invalid, "no tags to invalidate");
  std::vector<std::string> keys;
  for (auto t : tags) keys.push_back(tag_key(ns_, t));
  for (auto& g : generations_) g.fetch_add(1, std::memory_order_acq_rel);
  struct tally {
    std::size_t left;
    int status = 0;
    count_done_fn done;
  };
  auto t = std::make_shared<tally>(tally{keys.size(), 0, std::move(done)});
  for (const auto& k : keys)
    s.set(k, make_generation(), tag_ttl_ms, [t](int status, std::int64_t) {
      if (status != 0 && t->status == 0) t->status = status;
      if (--t->left == 0) t->done(t->status, 0);
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
