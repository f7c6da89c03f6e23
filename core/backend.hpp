// SPDX-License-Identifier: MIT
// What every store offers: a blocking interface (thread-safe) and a non-blocking session that a
// host event loop drives. Keys reaching a backend are already full (`namespace:key`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"

namespace httpcache {

struct lookup_result {
  bool found = false;
  std::string value;
  std::int64_t ttl_ms = 0;  // remaining time to live on a hit
};

// Event bits, the same as the public HTTPCACHE_EV_*.
enum : unsigned { event_read = 1u, event_write = 2u };

using watch_fn = std::function<void(int fd, unsigned events)>;
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
  virtual void process(unsigned ready_events) = 0;
  virtual std::int64_t timeout_ms() const = 0;  // -1 when idle
  virtual std::size_t pending() const = 0;
};

class backend {
 public:
  virtual ~backend() = default;
  // Errors: backend_error (errc::backend / errc::timeout) when the store cannot be reached.
  virtual lookup_result get(std::string_view key) = 0;
  virtual void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) = 0;
  virtual std::size_t del(const std::vector<std::string_view>& keys) = 0;
  virtual std::unique_ptr<async_session> open_async(watch_fn watch) = 0;

  // Cross-process stampede lock (SET NX PX; released only by its holder's token). A store shared
  // by one process only needs none: its default "acquires" at once.
  virtual bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) {
    (void)lock_key, (void)token, (void)ttl_ms;
    return true;
  }
  virtual void unlock(std::string_view lock_key, std::string_view token) { (void)lock_key, (void)token; }
};

struct backend_options {
  std::uint32_t connect_timeout_ms = 1000;
  std::uint32_t command_timeout_ms = 1000;
  std::uint32_t pool_size = 8;
  std::uint64_t memory_max_entries = 100000;
  std::uint64_t memory_max_bytes = 64ull << 20;
};

}  // namespace httpcache
