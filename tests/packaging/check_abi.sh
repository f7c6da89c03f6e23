#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ABI gate: compares the built library with the ABI recorded in packaging/abi/ for its SONAME.
# Any change to what the baseline exports (a removed or changed function, a changed type such as a
# struct layout) fails: either it is a break, and HTTPCACHE_SOVERSION must be bumped, or it is a
# deliberate compatible change (fields appended to a versioned options struct), and the reviewer
# records the new baseline. New functions alone pass.
#   check_abi.sh LIB BASELINE_DIR SOVERSION HEADERS_DIR            check
#   check_abi.sh --record LIB BASELINE_DIR SOVERSION HEADERS_DIR   write the baseline
#   check_abi.sh --expect-break LIB BASELINE_DIR SOVERSION HEADERS_DIR   the gate must object
set -uo pipefail
mode=check
case "${1:-}" in --record|--expect-break) mode="${1#--}"; shift ;; esac
lib="$1"; dir="$2"; soversion="$3"; headers="$4"
baseline="$dir/libhttpcache.so.$soversion.abi"
dump() { abidw --no-corpus-path --no-comp-dir-path --headers-dir "$headers" --drop-private-types \
           --exported-interfaces-only "$1"; }

if [ "$mode" = record ]; then
  dump "$lib" > "$baseline" && echo "recorded $baseline"; exit $?
fi
if [ ! -f "$baseline" ]; then
  echo "no ABI baseline for libhttpcache.so.$soversion: run $0 --record $lib $dir $soversion $headers"
  exit 1
fi
current="$(mktemp)"; trap 'rm -f "$current"' EXIT
dump "$lib" > "$current" || { echo "abidw failed on $lib"; exit 1; }
abidiff --no-added-syms "$baseline" "$current" > "$current.diff" 2>&1
rc=$?
cat "$current.diff"; rm -f "$current.diff"
if (( rc & 3 )); then echo "abidiff itself failed (rc $rc)"; exit 1; fi
broken=$(( rc & 12 ))
if [ "$mode" = expect-break ]; then
  if (( broken )); then echo "gate works: the incompatible library was refused"; exit 0; fi
  echo "the gate missed an incompatible change"; exit 1
fi
if (( broken )); then
  echo "ABI CHANGE in libhttpcache.so.$soversion (abidiff rc $rc): if it breaks callers, bump HTTPCACHE_SOVERSION"
  echo "in include/httpcache.h; if it is compatible by design, record it: $0 --record $lib $dir $soversion $headers"
  exit 1
fi
echo "ABI of libhttpcache.so.$soversion is compatible with $baseline"
