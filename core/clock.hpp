// SPDX-License-Identifier: MIT
// Milliseconds of the monotonic clock: what every deadline, cool-down and timeout in the core is
// measured against (never the wall clock, which can jump).
#pragma once

#include <chrono>
#include <cstdint>

namespace httpcache {

inline std::int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace httpcache
