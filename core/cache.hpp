// SPDX-License-Identifier: MIT
// The cache: a backend, a namespace and a time zone, and the get-or-compute orchestration.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend.hpp"
#include "breaker.hpp"
#include "key.hpp"
#include "options.hpp"  // cache_options
#include "single_flight.hpp"
#include "stats.hpp"
#include "stale.hpp"
#include "tags.hpp"
#include "ttl.hpp"
#include "url.hpp"

namespace httpcache {

class guarded_backend;

// coalesced: a concurrent caller computed the value; this one waited and shares it.
// stale: an entry past its freshness served within its windows (see stale.hpp).
enum class outcome : int { hit = 1, stored = 2, uncached = 3, coalesced = 4, stale = 5 };

// What a compute step produced. Failures are exceptions, which propagate unchanged.
struct computed {
  std::string value;
  bool store = true;
  std::optional<stale_windows> stale;  // this value's own windows (its response's Cache-Control)
};

// What one get_or_compute call asks besides its key and policy.
struct call_options {
  tag_set tags;
  stale_windows stale;  // the windows its stored values get (a computation may set its own)
};

struct get_or_compute_result {
  std::string value;
  std::int64_t ttl_ms = 0;
  enum outcome outcome = outcome::uncached;
};

class cache {
 public:
  // url: "" or memory://, redis://..., unix://... Throws error(errc::invalid) for a bad URL,
  // namespace or zone. A Redis backend connects lazily.
  // `tls` gives the TLS settings a TLS URL's query leaves unset (the C options' ssl_* fields).
  cache(std::string_view url, std::string_view ns, std::string_view tz, const cache_options& options,
        const tls_settings& tls = {});

  const std::string& ns() const noexcept { return ns_; }
  const time_zone& zone() const noexcept { return zone_; }

  std::string full_key(std::string_view key) const { return httpcache::full_key(ns_, key); }
  std::int64_t ttl(const ttl_policy& policy, std::int64_t now_ms) const { return ttl_seconds(policy, zone_, now_ms); }

  // Blocking calls; thread-safe. Backend failures throw backend_error.
  lookup_result get(std::string_view key);  // a tagged entry is checked (tags.hpp) and unwrapped
  // get(), when this process can answer it without I/O (memory://, the near tier): a hit, or a
  // miss the store is sure of. Nothing when the answer needs the store (a key not held here, a
  // tagged entry, a lease in progress, a stale entry). Never blocks; counts what it answers.
  // `known`: a version a peek of key answered before (backend::peek); an entry with a freshness
  // envelope (stale windows) has none, as its answer changes with time.
  // only_unchanged: nothing (and nothing counted) unless the value is the `known` one.
  std::optional<lookup_result> peek(std::string_view key, std::uint64_t known = 0, bool only_unchanged = false);
  std::int64_t set(std::string_view key, std::string_view value, const ttl_policy& policy);  // -> TTL seconds
  std::size_t invalidate(const std::vector<std::string_view>& keys);
  // Gives each tag a new generation: every entry stamped with one of them misses from now on.
  // One command per tag. Throws error(errc::invalid) for a bad tag (nothing is sent).
  void invalidate_tags(const std::vector<std::string_view>& tags);

  // Hit, or compute once and store. Fails open: a backend failure never fails the call.
  // Fenced (docs/design.md "Fencing"): a computation that began before an invalidation never
  // stores after it, and a caller arriving after an invalidation never gets a value computed
  // before it. Waiters of a failed computation get its failure (the same exception). A compute
  // callback calling get_or_compute on its own key (same thread) computes at once, uncached.
  // With tags, a hit must carry each tag's current generation (read in the hit's round trip),
  // and a stored value is stamped with the generations read before computing.
  get_or_compute_result get_or_compute(std::string_view key, const ttl_policy& policy,
                                       const std::function<computed()>& compute,
                                       const std::vector<std::string>& tags = {},
                                       const stale_windows& stale = {});

  // Non-blocking calls through a session from open_async(). Arguments are checked (and the TTL
  // computed) before anything starts, so a bad call throws and no callback runs.
  std::unique_ptr<async_session> open_async(watch_fn watch) { return backend_->open_async(std::move(watch)); }
  // Counters; the async caller reports its own hits and misses through these too.
  struct stats& counters() const noexcept { return stats_; }
  bool breaker_open() const noexcept { return breaker_.is_open(); }
  // The tags' generations come with the answer (read in the same round trip): a caller that
  // computes after a miss passes them to async_set, which stamps the value with them.
  // A stale entry (stale.hpp) past its freshness comes as status 0 within stale-while-revalidate
  // (ttl_ms: minus its staleness), or errc::stale when this caller should recompute: with
  // refresh_token non-empty it holds the key's refresh lock (its async_set replaces the stale
  // entry; end_refresh releases the lock after), without one another caller does (its set is
  // refused).
  using tagged_get_done_fn = std::function<void(int status, std::string_view value, std::int64_t ttl_ms,
                                                const tag_set& tags, const std::string& refresh_token)>;
  void async_end_refresh(async_session& s, std::string_view key, std::string refresh_token) const;
  void async_get(async_session& s, std::string_view key, const std::vector<std::string>& tags,
                 tagged_get_done_fn done) const;
  void async_set(async_session& s, std::string_view key, std::string_view value, const ttl_policy& policy,
                 count_done_fn done, const tag_set* tags = nullptr, const stale_windows& stale = {}) const;
  void async_invalidate_tags(async_session& s, const std::vector<std::string_view>& tags, count_done_fn done) const;
  void async_invalidate(async_session& s, const std::vector<std::string_view>& keys, count_done_fn done) const;
  void async_release(async_session& s, std::string_view key, count_done_fn done) const;

 private:
  using flight_ptr = std::shared_ptr<single_flight::call>;
  void check_value_size(std::size_t size) const;
  std::atomic<std::uint64_t>& generation(const std::string& full) const;
  std::int64_t lease_ms() const;
  template <typename Op>
  auto guarded(Op&& op) -> decltype(op());
  computed run(const std::string& full, const std::function<computed()>& compute);
  get_or_compute_result lead(const std::string& full, const ttl_policy& policy,
                             const std::function<computed()>& compute, const flight_ptr& flight, bool backend_up,
                             const std::string& seen, const std::string& granted, call_options& call);
  get_or_compute_result lead_flight(const std::string& full, const ttl_policy& policy,
                                    const std::function<computed()>& compute, const flight_ptr& flight,
                                    bool backend_up, const std::string& seen, const std::string& granted,
                                    bool& shareable, call_options& call);
  get_or_compute_result lease_and_compute(const std::string& full, const ttl_policy& policy,
                                          const std::function<computed()>& compute, const flight_ptr& flight,
                                          bool& shareable, call_options& call);
  get_or_compute_result compute_leased(const std::string& full, const ttl_policy& policy,
                                       const std::function<computed()>& compute, const std::string& placeholder,
                                       bool& shareable, call_options& call);
  get_or_compute_result compute_uncached(const std::string& full, const std::function<computed()>& compute,
                                         bool& shareable, bool fenced = true);
  bool accept(const std::string& full, lookup_result& r, tag_set& tags, bool drop_stale, std::string* raw = nullptr);
  get_or_compute_result served(lookup_result&& hit, outcome o) const;
  void store_in_place_of(const std::string& full, const std::string& expected, const ttl_policy& policy,
                         const std::optional<stale_windows>& own, const call_options& call,
                         get_or_compute_result& result);
  get_or_compute_result fresh_or_stale(const std::string& full, const ttl_policy& policy,
                                       const std::function<computed()>& compute, call_options& call,
                                       lookup_result hit, std::string raw);
  get_or_compute_result serve_stale(const std::string& full, const ttl_policy& policy,
                                    const std::function<computed()>& compute, call_options& call,
                                    const std::string& raw, std::string value, const freshness& f, std::int64_t now);
  lookup_result lookup(const std::string& full, tag_set& tags);
  lookup_result read_stamped(const std::string& full, const std::vector<std::string>& names, tag_set& tags);
  void publish(const flight_ptr& flight, const std::string& full, std::string placeholder, bool value,
               const tag_set& tags) const;

  std::string ns_;
  time_zone zone_;
  cache_options options_;
  mutable struct stats stats_;  // counters change under const calls too (check_value_size)
  circuit_breaker breaker_;
  single_flight flights_;
  std::unique_ptr<backend> backend_;  // guarded: breaker + error counters around the real store
  backend* store_ = nullptr;           // the real store, for the lease calls the guard does not know
  guarded_backend* guard_ = nullptr;
  bool near_ = false;  // the store is the near tier (peek's answers are near hits)
  // Invalidations through this handle, striped by key: a flight records its key's generation
  // when it starts computing, and a caller that read a later one does not join it.
  mutable std::array<std::atomic<std::uint64_t>, 64> generations_{};
};

}  // namespace httpcache
