#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's second command: installs what is missing, then builds and runs:
#   1. the whole suite (C and Python; each Redis test against a private redis-server that CTest
#      starts and stops by pid; the manylinux wheels built, installed and tested on CPython 3.11,
#      3.12 and 3.13, packaging/python),
#   2. the C suite under AddressSanitizer + UndefinedBehaviorSanitizer (leaks included),
#   3. the pytest suite against the library and the pybind11 extension built with ASan+UBSan,
#   4. the concurrency tests under ThreadSanitizer,
#   5. the libFuzzer targets (clang), HTTPCACHE_FUZZ_SECONDS (default 30) each.
# Every `ctest -R` passes --no-tests=error: a regex that stops matching fails instead of passing.
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
# The <test>_near reruns are left to the main and TSan stages (test_near itself runs here).
(cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs" -E '^test_.+_near$')

echo "== Python suite under ASan+UBSan (build-pyasan)"
# The library and the extension (src/async.cpp's re-entrancy included) instrumented; the
# interpreter is Debian's, uninstrumented, so the ASan runtime must be the first library loaded:
# LD_PRELOAD of gcc's libasan, and of libstdc++ with it (the interpreter is C: without it ASan
# finds no real __cxa_throw to intercept and aborts at the library's first C++ throw). The UBSan
# runtime comes in as a dependency of the extension and needs no preload (-fno-sanitize-recover:
# any finding aborts). PYTHONMALLOC=malloc puts Python objects on malloc, where ASan sees them.
# detect_leaks=0: CPython does not free its own objects at exit, and every allocation of ours is
# made under a CPython frame, so LeakSanitizer could only be silenced wholesale; the C suite above
# checks the library's leaks. The whole pytest suite runs, in two shards side by side (every other
# test each, each shard on a fixture set of its own): one pytest process keeps one core busy.
# The environment is ctest's, so the redis fixtures run preloaded too (harmless with leaks off).
py="$root/.venv/bin/python"
cmake -S "$root" -B "$root/build-pyasan" -G Ninja -DPython3_EXECUTABLE="$py" \
  -Dpybind11_DIR="$("$py" -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
  -DHTTPCACHE_TEST=ON -DHTTPCACHE_PYTHON=ON -DHTTPCACHE_SANITIZE=address,undefined \
  -DHTTPCACHE_PYTHON_SHARDS=2 >/dev/null
cmake --build "$root/build-pyasan" -j "$jobs" --target httpcache_python
# -R selects the shards; ctest adds the fixture tests they require (their servers) by itself.
(cd "$root/build-pyasan" &&
  LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" PYTHONMALLOC=malloc \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  HTTPCACHE_TEST_NEAR_TRIALS=200 \
  ctest --output-on-failure --no-tests=error -j "$jobs" -R '^python_shard[0-9]+$')

echo "== concurrency tests under TSan (build-tsan)"
# C tests only. The threaded Python tests are not run under TSan: CPython is uninstrumented, so
# TSan cannot see the GIL's acquire/release as synchronisation (and a libtsan preloaded into it
# knows nothing of the interpreter's own atomics); every object handed from one thread to another
# under the GIL would be reported as a race, the real ones drowned among them. The binding's
# threads only meet the library through the C API, whose concurrency these tests cover.
BUILD_DIR="$root/build-tsan" "$root/scripts/build.sh" -DHTTPCACHE_SANITIZE=thread -DHTTPCACHE_PYTHON=OFF
# test_fencing's thread and process races (leases, single-flight) run 200 rounds here, not 1,000.
(cd "$root/build-tsan" && TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp" \
  HTTPCACHE_TEST_FENCING_ROUNDS=200 \
  ctest --output-on-failure --no-tests=error -R \
  'redis_start|redis_stop|cluster_start|cluster_stop|cluster_ha_start|cluster_ha_stop|cluster_ha_near_start|cluster_ha_near_stop|test_threads|test_resilience|test_async|test_cluster|test_chaos|test_fencing|test_tls|test_sentinel|test_near|test_lmdb')

echo "== fuzzing (build-fuzz, ${HTTPCACHE_FUZZ_SECONDS:-30} s per target)"
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-fuzz" -G Ninja -DHTTPCACHE_FUZZ=ON -DHTTPCACHE_TEST=OFF \
  -DHTTPCACHE_PYTHON=OFF -DHTTPCACHE_SANITIZE=fuzzer-no-link,address,undefined \
  -DHTTPCACHE_FUZZ_SECONDS="${HTTPCACHE_FUZZ_SECONDS:-30}" >/dev/null
cmake --build "$root/build-fuzz" --target fuzz_url fuzz_key fuzz_response fuzz_reply fuzz_http fuzz_tags fuzz_fresh fuzz_lmdb
(cd "$root/build-fuzz" && ctest --output-on-failure -j "$jobs" &&
  grep -E "Testing: fuzz_[a-z]+$|stat::number_of_executed_units|stat::new_units_added" Testing/Temporary/LastTest.log)
echo "== all tests passed"
