#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's second command: installs what is missing, then builds and runs:
#   1. the whole suite (C and Python; each Redis test against a private redis-server that CTest
#      starts and stops by pid),
#   2. the C suite under AddressSanitizer + UndefinedBehaviorSanitizer (leaks included),
#   3. the concurrency tests under ThreadSanitizer,
#   4. the libFuzzer targets (clang), HTTPCACHE_FUZZ_SECONDS (default 60) each.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"

jobs="$(nproc)"
echo "== build and test (${BUILD_DIR:-build})"
"$root/scripts/build.sh" -DHTTPCACHE_TEST=ON -DHTTPCACHE_PYTHON=ON
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "$jobs")

echo "== build and test under ASan+UBSan (build-asan)"
BUILD_DIR="$root/build-asan" "$root/scripts/build.sh" -DHTTPCACHE_SANITIZE=address,undefined \
  -DHTTPCACHE_PYTHON=OFF -DCMAKE_BUILD_TYPE=Debug
(cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs")
echo "== concurrency tests under TSan (build-tsan)"
BUILD_DIR="$root/build-tsan" "$root/scripts/build.sh" -DHTTPCACHE_SANITIZE=thread -DHTTPCACHE_PYTHON=OFF
(cd "$root/build-tsan" && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --output-on-failure -R 'redis_start|redis_stop|cluster_start|cluster_stop|test_threads|test_resilience|test_async')

echo "== fuzzing (build-fuzz, ${HTTPCACHE_FUZZ_SECONDS:-60} s per target)"
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-fuzz" -G Ninja -DHTTPCACHE_FUZZ=ON -DHTTPCACHE_TEST=OFF \
  -DHTTPCACHE_PYTHON=OFF -DHTTPCACHE_SANITIZE=fuzzer-no-link,address,undefined \
  -DHTTPCACHE_FUZZ_SECONDS="${HTTPCACHE_FUZZ_SECONDS:-60}" >/dev/null
cmake --build "$root/build-fuzz" --target fuzz_url fuzz_key fuzz_response
(cd "$root/build-fuzz" && ctest --output-on-failure -j "$jobs" &&
  grep -E "Testing: fuzz_[a-z]+$|stat::number_of_executed_units|stat::new_units_added" Testing/Temporary/LastTest.log)
echo "== all tests passed"
