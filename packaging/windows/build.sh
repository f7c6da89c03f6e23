#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Windows DLL, cross-built and tested under Wine (not on a real Windows machine):
#   1. MinGW-w64 (POSIX threads) and Wine from Debian (scripts/install-deps.sh --windows);
#   2. the dependencies from Debian's source packages (build-deps.sh; cached between runs);
#   3. build-win/: httpcache.dll, its import library httpcache.dll.a and httpcache.def, the
#      Windows tests (tests/windows.cmake), with packaging/windows/mingw-w64-x86_64.cmake;
#   4. ctest -L windows there: the tests under Wine, against redis-servers on the host.
#   packaging/windows/build.sh [BUILD_DIR]          (default: build-win)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/build-win}"
"$root/scripts/install-deps.sh" --windows
deps="$("$root/packaging/windows/build-deps.sh" | tail -n 1)"
cmake -S "$root" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$root/packaging/windows/mingw-w64-x86_64.cmake" -DHTTPCACHE_WINDOWS_DEPS="$deps" \
  -DHTTPCACHE_TEST=ON -DHTTPCACHE_PYTHON=OFF -DHTTPCACHE_INSTALL=OFF >/dev/null
cmake --build "$out" -j "$(nproc)"
# Wine's first start makes its prefix; no Mono or Gecko installers, no debug chatter.
export WINEPREFIX="${WINEPREFIX:-$out/wine}" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
(cd "$out" && ctest --output-on-failure -L windows)
ls -l "$out/bin/httpcache.dll" "$out/capi/httpcache.dll.a" "$out/capi/httpcache.def" 2>/dev/null || true
