#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's second command: installs what is missing, then builds and runs the whole suite
# twice: a normal build (C and Python tests, each Redis test against a private redis-server that
# CTest starts and stops), then the C suite under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"

jobs="$(nproc)"
echo "== build and test (${BUILD_DIR:-build})"
"$root/scripts/build.sh"
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "$jobs")

echo "== build and test under ASan+UBSan (build-asan)"
BUILD_DIR="$root/build-asan" "$root/scripts/build.sh" -DHTTPCACHE_SANITIZE=address,undefined \
  -DHTTPCACHE_PYTHON=OFF -DCMAKE_BUILD_TYPE=Debug
(cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs")
echo "== all tests passed"
