#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs consumers against an installed tree, as users outside the source tree would:
# pkg-config (C and C++), find_package (CMake), and dlopen by SONAME.
#   check_consumers.sh PREFIX LIBDIR WORKDIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="$1"; libdir="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export LD_LIBRARY_PATH="$libdir"

flags="$(pkg-config --cflags --libs httpcache)"
# Private dependencies must not leak into consumers' compile and link lines.
if grep -Eq 'hiredis|lmdb|fmt|icu' <<<"$flags"; then echo "private dependency leaked: $flags"; exit 1; fi
cc -std=c99 -Wall -Wextra -pedantic -Werror "$here/consumer.c" $flags -o "$work/consumer_pc"
"$work/consumer_pc"
c++ -std=c++17 -Wall -Wextra -pedantic -Werror "$here/consumer.cpp" $flags -o "$work/consumer_pc_cxx"
"$work/consumer_pc_cxx"

cmake -S "$here/cmake_consumer" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer_c"
"$work/cmake/consumer_cxx"

cc "$here/dlopen_soname.c" -ldl -o "$work/dlopen_soname"
"$work/dlopen_soname"
echo "consumers ok against $prefix"
