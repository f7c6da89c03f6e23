// SPDX-License-Identifier: MIT
// Wraps any backend with the circuit breaker and the error counters, for the blocking calls and
// the non-blocking sessions alike, so every path fails fast and is counted the same way.
#pragma once

#include <memory>

#include "backend.hpp"
#include "breaker.hpp"
#include "stats.hpp"

namespace httpcache {

class guarded_backend final : public backend {
 public:
  guarded_backend(std::unique_ptr<backend> inner, circuit_breaker& breaker, struct stats& counters)
      : inner_(std::move(inner)), breaker_(breaker), stats_(counters) {}

  lookup_result get(std::string_view key) override;
  void set(std::string_view key, std::string_view value, std::int64_t ttl_ms) override;
  std::size_t del(const std::vector<std::string_view>& keys) override;
  std::unique_ptr<async_session> open_async(watch_fn watch) override;
  // No I/O, so no breaker: what the store holds in this process.
  std::optional<lookup_result> peek(std::string_view key, std::uint64_t known) override {
    return inner_->peek(key, known);
  }
  bool try_lock(std::string_view lock_key, std::string_view token, std::int64_t ttl_ms) override;
  void unlock(std::string_view lock_key, std::string_view token) override;

  // For both paths: may the backend be used now? Counts a skip when not.
  bool admit();
  // Records the outcome of one backend operation (status: 0 or a negative errc value).
  // An outage feeds the breaker; an error reply (outage false) only counts as an error.
  void record(int status, bool outage = true);

  // Runs one blocking call of the wrapped store under the breaker and the counters, noting a
  // failure (last_backend_failure): what every override here does, and what the cache uses for
  // the store calls this interface does not have (its leases).
  template <typename Op>
  auto guarded(Op&& op) -> decltype(op()) {
    if (!admit()) throw_breaker_open();
    try {
      auto result = op();
      record(0);
      return result;
    } catch (const backend_error& e) {
      note_backend_failure(static_cast<int>(e.code()), e.what(), e.outage());
      record(static_cast<int>(e.code()), e.outage());
      throw;
    }
  }

 private:
  [[noreturn]] static void throw_breaker_open();

  std::unique_ptr<backend> inner_;
  circuit_breaker& breaker_;
  struct stats& stats_;
};

}  // namespace httpcache
