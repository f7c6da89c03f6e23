// SPDX-License-Identifier: MIT
// What every store offers: a blocking interface (thread-safe) and a non-blocking session that a
// host event loop drives. Keys reaching a backend are already full (`namespace:key`).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "descriptor.hpp"
#include "error.hpp"

namespace httpcache {

struct lookup_result {
  bool found = false;
  std::string value;
  std::int64_t ttl_ms = 0;  // remaining time to live on a hit
  // The stored value's number within this process (value_version()), from the stores that keep
  // their values in memory (memory://, the near tier); 0: none. A peek that names it as known
  // gets `unchanged` and no copy of the value: a caller holding it decoded copies nothing.
  std::uint64_t version = 0;
  bool unchanged = false;
};

// A held value's answer to a peek that knows version `known`: its version, and either
// `unchanged` or a copy of the value.
inline void answer_held(lookup_result& r, std::string_view value, std::uint64_t version, std::uint64_t known) {
  r.found = true;
  r.version = version;
  r.unchanged = known != 0 && known == version;
  if (!r.unchanged) r.value.assign(value);
}

// A new value's version: unique in the process (every store and handle draw from one counter),
// never 0.
inline std::uint64_t value_version() noexcept {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

// ---- Leases (fencing; docs/design.md "Fencing") ----
// A miss takes a lease: a placeholder stored under the key itself (`SET key <placeholder> NX PX
// lease_ms`), holding a random token. A computation stores only by replacing its own placeholder
// (a script on Redis: the store is refused once the placeholder is gone), and an invalidation's
// DEL removes the placeholder, so a computation that began before an invalidation never stores
// after it. A reader that finds a placeholder treats it as a miss. Key and placeholder are one
// key, hence one cluster slot.
inline constexpr std::string_view lease_prefix{"\0httpcache-lease\0", 17};
inline constexpr std::int64_t default_lease_ms = 30000;  // without lock_ttl_ms
inline bool is_lease(std::string_view value) noexcept {
  return value.size() > lease_prefix.size() && value.substr(0, lease_prefix.size()) == lease_prefix;
}

// A new placeholder: lease_prefix and 128 random bits (per process: fork-safe).
std::string make_lease_placeholder();

// What a lease attempt found: granted (the placeholder is ours now), or what the key holds
// instead (a value, another placeholder, or nothing when it vanished in between).
struct lease_result {
  bool granted = false;
  lookup_result current;  // when not granted; current.value may be another lease's placeholder
  bool wrong_type = false;  // the key holds another type (someone else's list...): overwrite it
};

// The leases one non-blocking session took or saw, per key (single-threaded, like the session).
// A get miss reports a lease number in its ttl_ms: > 0 this session holds the key's lease (the
// next set of the key from this session is fenced with it), < 0 another holder's placeholder is
// there (the next set of the key is refused), 0 when the store could not be asked. The number is
// the same for as long as the same placeholder is seen, so callers can tell one lease from the
// next. A set of a key this session never missed is a plain SET (an explicit write); after a
// miss, the set is fenced by that miss's lease, and refused if the session has since seen the
// lease gone (a hit, another holder's placeholder).
class lease_book {
 public:
  // A get found `placeholder` (ours or another holder's): the lease number to report.
  std::int64_t saw(const std::string& key, const std::string& placeholder);
  // A lease attempt of this session was granted.
  std::int64_t granted(const std::string& key, std::string placeholder);
  // A get found a value (or nothing, after a refused lease attempt): a lease this session held
  // for the key is void from now on (a later set of the key is refused, until the next miss).
  // A refresher's record (expect()) stays: its compare-and-set is fenced by the bytes it expects.
  void forget(const std::string& key) {
    if (auto it = records_.find(key); it != records_.end() && !it->second.expected)
      it->second = record{std::string(), it->second.number, false};
  }
  // A set of key must replace `value` (a stale entry being refreshed; empty: refused).
  void expect(const std::string& key, std::string value);
  // For a set: 0 no record (plain SET), 1 fenced with *placeholder, -1 refused. Consumes the record.
  // *expected: the record was an expect() (a release must not delete what the key holds).
  int take(const std::string& key, std::string& placeholder, bool* expected = nullptr);

 private:
  struct record {
    std::string placeholder;
    std::int64_t number;
    bool ours;
    bool expected = false;
  };
  static constexpr std::size_t max_records = 65536;  // beyond: the oldest half is forgotten
  void make_room();
  std::unordered_map<std::string, record> records_;
  std::int64_t next_ = 0;
};

// Event bits, the same as the public HTTPCACHE_EV_*.
enum : unsigned { event_read = 1u, event_write = 2u };

using watch_fn = std::function<void(descriptor fd, unsigned events)>;
// status is 0 or a negative errc value; `value` is borrowed for the call.
using get_done_fn = std::function<void(int status, std::string_view value, std::int64_t ttl_ms)>;
using count_done_fn = std::function<void(int status, std::int64_t count)>;

// The last backend failure on this thread. A non-blocking session sets it right before it runs a
// completion with errc::backend or errc::timeout, and the layers above read it during that
// completion: the breaker (is it an outage?) and the C API (httpcache_error_last() inside the
// callback). The guarded backend sets it for each failed blocking call too, so that a call that
// failed open (get_or_compute) can still say why. Per thread, like httpcache_error_last():
// completions run on the thread that calls process() or starts the request. The detail never
// holds credentials.
struct backend_failure {
  std::string detail;
  bool outage = true;  // as backend_error::outage()
};
backend_failure& last_backend_failure() noexcept;
// Sets last_backend_failure() and returns `status`, for `return done(note_backend_failure(...), ...)`.
int note_backend_failure(int status, std::string detail, bool outage = true);

// One non-blocking connection, owned by one thread (the host loop's).
class async_session {
 public:
  virtual ~async_session() = default;
  virtual void get(const std::string& key, get_done_fn done) = 0;
  virtual void set(const std::string& key, std::string_view value, std::int64_t ttl_ms, count_done_fn done) = 0;
  virtual void del(const std::vector<std::string>& keys, count_done_fn done) = 0;
  // Gives up the lease a miss of this session took for key, when its caller stores nothing: the
  // placeholder is deleted if it is still there (count 1), so that raw readers never see it and
  // the next caller need not wait for it to expire. Count 0 at once without such a lease.
  virtual void release(const std::string& key, count_done_fn done) {
    (void)key;
    done(0, 0);
  }
  // Tags (tags.hpp) and refresh locks (stale.hpp). What key holds, set to `candidate` (PX
  // ttl_ms) when it holds nothing (GET; then SET NX and GET): done(0, value) ("" when the key
  // holds no string), or a failure. No lease is taken or voided. Requests queued together go out
  // together, so an entry's get and its tags' stamps cost one round trip.
  virtual void stamp(const std::string& key, const std::string& candidate, std::int64_t ttl_ms, get_done_fn done) = 0;
  // The next set of key from this session replaces `value` only (empty: it is refused), as a
  // caller refreshing a stale entry stores over the entry it saw. release() then forgets it.
  virtual void expect(const std::string& key, std::string value) = 0;
  // Deletes key if it still holds `value` (count 1), as a reader that found it stale does.
  virtual void del_if(const std::string& key, std::string value, count_done_fn done) = 0;
  virtual void process(unsigned ready_events) = 0;
  virtual std::int64_t timeout_ms() const = 0;  // -1 when idle
  virtual std::size_t pending() const = 0;
};

// ---- Server-assisted invalidation (near_cache.hpp) ----
// What a store reports to the near tier in front of it: one key changed (or expired, or was
// evicted), or anything may have changed (the report link was lost, the database was flushed,
// the store's nodes changed). Called on the feed's own thread.
class invalidation_sink {
 public:
  virtual void invalidated(std::string_view key) noexcept = 0;
  virtual void invalidated_all() noexcept = 0;

 protected:
  ~invalidation_sink() = default;
};

// A running report of the changes to every key under some prefixes, made by the store itself
// (Redis: CLIENT TRACKING). Destroying it stops it.
class invalidation_feed {
 public:
  virtual ~invalidation_feed() = default;
  // Whether every change the store makes from now on is reported: the feed is connected to every
  // node that may hold such a key now. While it is not, the near tier serves and keeps nothing.
  // Cheap (atomic loads): asked on every near hit. In a forked child, starts the child's own feed.
  virtual bool covers() noexcept = 0;
};

class backend {
 public:
  virtual ~backend() = default;
  // Errors: backend_error (errc::backend / errc::timeout) when the store cannot be reached.
  virtual lookup_result get(std::string_view key) = 0;
  virtual void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) = 0;
  virtual std::size_t del(const std::vector<std::string_view>& keys) = 0;
  virtual std::unique_ptr<async_session> open_async(watch_fn watch) = 0;
  // What get() would return, when this process can answer it without any I/O (an embedded store,
  // a near tier covering the key); nothing otherwise. Never blocks. When the value held has
  // version `known` (not 0), the answer is `unchanged`, with its TTL and no copy of the value.
  virtual std::optional<lookup_result> peek(std::string_view key, std::uint64_t known) {
    (void)key, (void)known;
    return std::nullopt;
  }

  // Cross-process stampede lock (SET NX PX; released only by its holder's token). A store shared
  // by one process only needs none: its default "acquires" at once.
  virtual bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) {
    (void)lock_key, (void)token, (void)ttl_ms;
    return true;
  }
  virtual void unlock(std::string_view lock_key, std::string_view token) { (void)lock_key, (void)token; }

  // Leases (see lease_prefix). The cache calls these on the real store (not through the guard,
  // which does not know them): it applies the breaker and counters itself. The defaults are for
  // the guard only and are never called.
  // SET key placeholder NX PX lease_ms, and what the key holds when refused: one round trip.
  virtual lease_result lease(std::string_view key, std::string_view placeholder, std::int64_t lease_ms) {
    (void)key, (void)placeholder, (void)lease_ms;
    return {true, {}};
  }
  // Replaces the placeholder with value (TTL ttl_ms) only if the key still holds it; false when
  // refused (invalidated, expired or overwritten since the lease was taken).
  virtual bool store_leased(std::string_view key, std::string_view placeholder, std::string_view value,
                            std::int64_t ttl_ms) {
    (void)placeholder;
    set(key, value, ttl_ms);
    return true;
  }
  // Deletes the placeholder if the key still holds it (a computation that stores nothing).
  virtual void release(std::string_view key, std::string_view placeholder) { unlock(key, placeholder); }

  // Tags (tags.hpp), on the real store like the leases. The entry at key as get() would return
  // it (key empty: none is read), and each tag key's generation, created as candidates[i] when
  // there is none (SET NX PX tag_ttl_ms, then GET): generations[i], "" when it could not be read.
  // One round trip on one server; the default asks lease() once per tag.
  // A report of the changes to the keys under `prefixes` (a near tier in front of this store), or
  // null when the store cannot report them (an embedded store has nothing to report).
  virtual std::unique_ptr<invalidation_feed> watch(const std::vector<std::string>& prefixes,
                                                   invalidation_sink& sink) {
    (void)prefixes, (void)sink;
    return nullptr;
  }

  virtual lookup_result get_stamped(std::string_view key, const std::vector<std::string_view>& tag_keys,
                                    const std::vector<std::string>& candidates,
                                    std::vector<std::string>& generations);
};

struct backend_options {
  std::uint32_t connect_timeout_ms = 1000;
  std::uint32_t command_timeout_ms = 1000;
  std::uint32_t pool_size = 8;
  std::uint64_t memory_max_entries = 100000;
  std::uint64_t memory_max_bytes = 64ull << 20;
  // The near tier (near_cache.hpp) in front of a Redis store.
  std::uint32_t near_cache = 0;                  // 1: on (the C API's 2, off, arrives as 0)
  std::uint64_t near_max_bytes = 32ull << 20;    // keys and values it keeps, at most
  std::uint32_t near_max_age_ms = 60000;         // how long it keeps an entry, at most
};

}  // namespace httpcache
