// SPDX-License-Identifier: MIT
// Counters of what a cache did, readable while it runs (relaxed atomics: counts, not ordering).
#pragma once

#include <atomic>
#include <cstdint>

namespace httpcache {

struct stats {
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<std::uint64_t> stores{0};
  std::atomic<std::uint64_t> errors{0};          // backend failures (I/O, timeouts, error replies)
  std::atomic<std::uint64_t> breaker_trips{0};   // times the circuit breaker opened
  std::atomic<std::uint64_t> breaker_skips{0};   // backend calls skipped while it was open
  std::atomic<std::uint64_t> uncached{0};        // computed values not stored (declined, too large, backend down)
  std::atomic<std::uint64_t> oversized{0};       // values over max_value_bytes
  std::atomic<std::uint64_t> coalesced{0};       // callers that waited for another's computation
  std::atomic<std::uint64_t> near_hits{0};       // lookups it answered, one per call (in hits too; in misses for an invalidated tag)
  std::atomic<std::uint64_t> near_invalidations{0};  // keys the store reported changed
  std::atomic<std::uint64_t> near_flushes{0};    // times the near tier was emptied (link lost, FLUSHDB, nodes changed)

  static void bump(std::atomic<std::uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace httpcache
