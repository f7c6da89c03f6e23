// SPDX-License-Identifier: MIT
#include "breaker.hpp"

#include "clock.hpp"

namespace httpcache {

bool circuit_breaker::allow() {
  std::int64_t until = open_until_ms_.load(std::memory_order_relaxed);
  if (until == 0) return true;
  std::int64_t now = steady_ms();
  if (now < until) return false;
  // Half-open: exactly one caller per cool-down wins the right to probe; the others keep skipping.
  if (!open_until_ms_.compare_exchange_strong(until, now + cooldown_ms_, std::memory_order_relaxed)) return false;
  probing_.store(true, std::memory_order_relaxed);
  return true;
}

void circuit_breaker::record_success() {
  consecutive_failures_.store(0, std::memory_order_relaxed);
  probing_.store(false, std::memory_order_relaxed);
  open_until_ms_.store(0, std::memory_order_relaxed);
}

bool circuit_breaker::record_failure() {
  if (threshold_ == 0) return false;  // disabled
  if (consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1 < threshold_) return false;
  std::int64_t previous = open_until_ms_.exchange(steady_ms() + cooldown_ms_, std::memory_order_relaxed);
  // A trip is the breaker opening from closed, or re-opening after a probe (half-open) failed:
  // one trip per cool-down that ended in a failure. Failures of calls admitted before it opened
  // only push the cool-down back; they are not trips.
  const bool was_probing = probing_.exchange(false, std::memory_order_relaxed);
  return previous == 0 || was_probing;
}

}  // namespace httpcache
