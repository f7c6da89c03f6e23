#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per call of the Python memory:// hit paths for one or more builds' packages,
# counted by callgrind (the same for the same code whatever else the machine does):
#   bench/instructions.sh BUILD [BUILD...]      (each BUILD has python/httpcache inside)
# Prints one Markdown row per build and case; the first build is the reference for ratios.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
n="${CALLS:-20000}"
count() {  # build case calls -> total instructions
  local out; out="$(mktemp)"
  PYTHONPATH="$1/python" valgrind --tool=callgrind --callgrind-out-file="$out" "$py" \
    "$root/bench/python/instructions.py" "$2" "$3" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  rm -f "$out"
}
echo "| build | case | instructions per call | ratio to the first build |"
echo "|---|---|---:|---:|"
declare -A first
for build in "$@"; do
  for case in sync async; do
    a="$(count "$build" "$case" "$n")"
    b="$(count "$build" "$case" $((2 * n)))"
    per=$(( (b - a) / n ))
    [ -n "${first[$case]:-}" ] || first[$case]=$per
    ratio="$(python3 -c "print(f'{$per / ${first[$case]}:.3f}x')")"
    echo "| $build | $case | $per | $ratio |"
  done
done
