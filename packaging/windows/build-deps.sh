#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Windows build's dependencies, compiled with MinGW-w64 from Debian 12's source packages
# (apt-get source, pinned versions, the upstream tarballs checked against the checksums below),
# as static libraries under PREFIX: hiredis 0.14.1's reply reader, LMDB 0.9.24, ICU 72.1 (common,
# i18n, and the data trimmed to the time zones), OpenSSL 3.0, cmocka 1.1.5 (tests only), fmt 9.1
# (headers). Nothing comes from anywhere but Debian's archive.
#   build-deps.sh [PREFIX]     default: ~/.cache/httpcache/windows-deps-<hash of this file>
# Prints PREFIX last. A prefix that is complete is reused (a second run costs nothing): the
# sources, the trees and the libraries are kept between runs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
stamp="$(sha256sum "${BASH_SOURCE[0]}" "$here/hiredis_net_stubs.c" | sha256sum | cut -c1-12)"
prefix="${1:-$HOME/.cache/httpcache/windows-deps-$stamp}"
src="$prefix/src"
jobs="$(nproc)"
cc=x86_64-w64-mingw32-gcc-posix
cxx=x86_64-w64-mingw32-g++-posix
ar=x86_64-w64-mingw32-ar

# package=version  upstream tarball  sha256 of that tarball
pins=(
  "hiredis=0.14.1-3 hiredis_0.14.1.orig.tar.gz 2663b2aed9fd430507e30fc5e63274ee40cdd1a296026e22eafd7d99b01c8913"
  "lmdb=0.9.24-1 lmdb_0.9.24.orig.tar.gz 8e7200fdc9bb09b0cfad1d4eee8b20d539e43fe05c7ef9406247d64659c4a480"
  "icu=72.1-3+deb12u1 icu_72.1.orig.tar.gz a2d2d38217092a7ed56635e34467f92f976b370e20182ad325edea6681a71d68"
  "openssl=3.0.20-1~deb12u2 openssl_3.0.20.orig.tar.gz c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f"
  "cmocka=1.1.5-2.1 cmocka_1.1.5.orig.tar.xz f0ccd8242d55e2fd74b16ba518359151f6f8383ff8aef4976e48393f77bba8b6"
  "fmtlib=9.1.0+ds1-2 fmtlib_9.1.0+ds1.orig.tar.gz 84ce1c2d0be3a9863935137969dcec6970125caac032f82474640bfc81463583"
)

if [ -f "$prefix/.complete" ]; then echo "$prefix"; exit 0; fi
for tool in "$cc" "$cxx" icupkg genccode dpkg-source; do
  command -v "$tool" >/dev/null || { echo "build-deps: $tool is missing (scripts/install-deps.sh --windows)" >&2; exit 1; }
done
mkdir -p "$src" "$prefix/include" "$prefix/lib"

# ---- sources ----
have_deb_src() { apt-get source --print-uris -qq "hiredis=0.14.1-3" >/dev/null 2>&1; }
if ! have_deb_src; then
  # The same mirrors and suites as the binary packages, for sources.
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  for f in /etc/apt/sources.list.d/*.sources; do
    grep -q '^Types: deb$' "$f" || continue
    sed 's/^Types: deb$/Types: deb-src/' "$f" | $sudo_cmd tee "/etc/apt/sources.list.d/httpcache-src-$(basename "$f")" >/dev/null
  done
  $sudo_cmd apt-get update -qq
fi
for pin in "${pins[@]}"; do
  read -r pkgver tarball sum <<<"$pin"
  pkg="${pkgver%%=*}"
  if [ ! -d "$src/$pkg" ]; then
    (cd "$src" && apt-get source --download-only -qq "$pkgver")
    got="$(sha256sum "$src/$tarball" | cut -d' ' -f1)"
    if [ "$got" != "$sum" ]; then echo "build-deps: $tarball has sha256 $got, not the pinned $sum" >&2; exit 1; fi
    (cd "$src" && dpkg-source --no-check -q -x "$(ls "${pkg}"_*.dsc)" "$pkg")  # Debian's patches applied
  fi
done

# ---- hiredis: the reply reader and reply objects; its sockets are never used (see the stubs) ----
if [ ! -f "$prefix/lib/libhiredis.a" ]; then
  b="$prefix/build/hiredis"; mkdir -p "$b" "$prefix/include/hiredis"
  for f in hiredis.c read.c sds.c; do $cc -O2 -c "$src/hiredis/$f" -o "$b/${f%.c}.o"; done
  $cc -O2 -I"$src/hiredis" -c "$here/hiredis_net_stubs.c" -o "$b/net_stubs.o"
  $ar rcs "$prefix/lib/libhiredis.a" "$b"/*.o
  cp "$src/hiredis"/{hiredis.h,read.h,sds.h,alloc.h} "$prefix/include/hiredis/" 2>/dev/null || cp "$src/hiredis"/{hiredis.h,read.h,sds.h} "$prefix/include/hiredis/"
fi

# ---- LMDB ----
if [ ! -f "$prefix/lib/liblmdb.a" ]; then
  b="$prefix/build/lmdb"; mkdir -p "$b"; l="$src/lmdb/libraries/liblmdb"
  for f in mdb.c midl.c; do $cc -O2 -c "$l/$f" -o "$b/${f%.c}.o"; done
  $ar rcs "$prefix/lib/liblmdb.a" "$b"/*.o
  cp "$l/lmdb.h" "$prefix/include/"
fi

# ---- fmt: headers (FMT_HEADER_ONLY) ----
[ -d "$prefix/include/fmt" ] || cp -r "$src/fmtlib/include/fmt" "$prefix/include/"

# ---- ICU: common and i18n compiled directly (no configure), data = the time zones ----
if [ ! -f "$prefix/lib/libicudata.a" ]; then
  i="$src/icu/source"; b="$prefix/build/icu"; mkdir -p "$b/common" "$b/i18n" "$b/data"
  compile_dir() {  # compile_dir common|i18n DEFINE: every .cpp of that part, $jobs at a time
    find "$i/$1" -maxdepth 1 -name '*.cpp' -printf '%f\n' | sed 's/\.cpp$//' |
      xargs -P "$jobs" -I{} "$cxx" -std=c++17 -O2 -DU_STATIC_IMPLEMENTATION "$2" -I"$i/common" -I"$i/i18n" \
        -c "$i/$1/{}.cpp" -o "$b/$1/{}.o"
  }
  compile_dir common -DU_COMMON_IMPLEMENTATION
  compile_dir i18n -DU_I18N_IMPLEMENTATION
  $ar rcs "$prefix/lib/libicuuc.a" "$b/common"/*.o
  $ar rcs "$prefix/lib/libicui18n.a" "$b/i18n"/*.o
  # The data: zoneinfo64.res of the package ICU ships prebuilt, as a C array named icudt72_dat.
  icupkg -x zoneinfo64.res -d "$b/data" "$i/data/in/icudt72l.dat"
  echo zoneinfo64.res > "$b/data/list.txt"
  mkdir -p "$b/data/pkg"
  icupkg -tl -a "$b/data/list.txt" -s "$b/data" new "$b/data/pkg/icudt72l.dat"
  cp "$b/data/pkg/icudt72l.dat" "$b/data/pkg/icudt72.dat"
  genccode -q -d "$b/data" "$b/data/pkg/icudt72.dat"
  $cc -O1 -DU_STATIC_IMPLEMENTATION -I"$i/common" -c "$b/data/icudt72_dat.c" -o "$b/data/icudt72_dat.o"
  $ar rcs "$prefix/lib/libicudata.a" "$b/data/icudt72_dat.o"
  mkdir -p "$prefix/include/unicode" && cp "$i/common/unicode"/*.h "$i/i18n/unicode"/*.h "$prefix/include/unicode/"
fi

# ---- OpenSSL (its own mingw64 target; libraries only) ----
if [ ! -f "$prefix/lib/libssl.a" ]; then
  b="$prefix/build/openssl"; rm -rf "$b"; cp -r "$src/openssl" "$b"
  (cd "$b" && ./Configure mingw64 no-shared no-tests no-module no-legacy \
      --cross-compile-prefix=x86_64-w64-mingw32- CC=gcc-posix CXX=g++-posix \
      --prefix="$prefix" --libdir=lib >/dev/null &&
    make -s -j"$jobs" build_libs >/dev/null && make -s install_dev >/dev/null)
fi

# ---- cmocka (the test suite) ----
if [ ! -f "$prefix/lib/libcmocka.a" ]; then
  b="$prefix/build/cmocka"; mkdir -p "$b"
  $cc -O2 -DHAVE_SIGNAL_H -DHAVE_STRINGS_H -DHAVE_INTTYPES_H -DHAVE_STDINT_H -DHAVE_MALLOC_H -DHAVE_SETJMP_H \
    -DHAVE_STDARG_H -DHAVE_STDDEF_H -DHAVE__VSNPRINTF_S -DHAVE__SNPRINTF_S -DHAVE_GETTIMEOFDAY \
    -I"$src/cmocka/include" -c "$src/cmocka/src/cmocka.c" -o "$b/cmocka.o"
  $ar rcs "$prefix/lib/libcmocka.a" "$b/cmocka.o"
  cp "$src/cmocka/include/cmocka.h" "$prefix/include/"
fi

touch "$prefix/.complete"
echo "$prefix"
