// SPDX-License-Identifier: MIT
// A circuit breaker: after `threshold` consecutive backend failures the backend is skipped for a
// cool-down, so a dead server adds almost nothing per call; then one caller probes it, and a
// success closes the breaker again. Lock-free: it sits on every call's path.
#pragma once

#include <atomic>
#include <cstdint>

namespace httpcache {

class circuit_breaker {
 public:
  circuit_breaker(std::uint32_t threshold, std::uint32_t cooldown_ms) : threshold_(threshold), cooldown_ms_(cooldown_ms) {}

  // True if the caller may use the backend now (closed, or this caller won the probe).
  bool allow();
  void record_success();
  // Returns true when this failure opened the breaker, or re-opened it after a failed probe (a
  // trip, to be counted).
  bool record_failure();
  bool is_open() const { return open_until_ms_.load(std::memory_order_relaxed) != 0; }

 private:
  const std::uint32_t threshold_;
  const std::uint32_t cooldown_ms_;
  std::atomic<std::uint32_t> consecutive_failures_{0};
  std::atomic<std::int64_t> open_until_ms_{0};  // 0 = closed
  std::atomic<bool> probing_{false};            // a caller was admitted to probe since it opened
};

}  // namespace httpcache
