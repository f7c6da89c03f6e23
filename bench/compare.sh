#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Before/after: the C benchmarks and the Python call benchmarks of two builds of httpcache, run
# alternately in one session against the same private redis-server and Redis Cluster, so a change
# is judged by ratios measured side by side (new/old per case, each round's ratio shown).
#   bench/compare.sh OLD_BUILD NEW_BUILD
# Each BUILD is a build tree configured with -DCMAKE_BUILD_TYPE=Release -DHTTPCACHE_BENCH=ON
# -DHTTPCACHE_PYTHON=ON (e.g. of a `git worktree` of the old commit). The Python side runs
# bench_calls.py from the benchmark venv with the build's package first on PYTHONPATH.
# Knobs: COMPARE_ROUNDS (3), BENCH_REPETITIONS (3), BENCH_MIN_TIME (0.3), PY_REPS (3), BENCH_PY (the
# benchmark venv's python, skipping its set-up).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="$(cd "$1" && pwd)"
new="$(cd "$2" && pwd)"
run="$root/bench/.run/compare"
mkdir -p "$run"
rm -f "$run"/*.json "$run"/*.md
cleanup() {
  "$root/tests/fixtures/redis_server.sh" stop "$run/redis" >/dev/null 2>&1 || true
  "$root/tests/fixtures/redis_cluster.sh" stop "$run/cluster" >/dev/null 2>&1 || true
  "$root/tests/fixtures/redis_server.sh" stop "$run/redis-tls" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$root/tests/fixtures/redis_server.sh" start "$run/redis" >/dev/null
"$root/tests/fixtures/redis_cluster.sh" start "$run/cluster" 0 >/dev/null
"$root/tests/fixtures/redis_server.sh" start "$run/redis-tls" tls >/dev/null
export HTTPCACHE_BENCH_REDIS_URL="$(cat "$run/redis/url")"
export HTTPCACHE_BENCH_REDIS_TLS_URL="$(cat "$run/redis-tls/url")"
export HTTPCACHE_BENCH_CLUSTER_URL="$(cat "$run/cluster/url")"
py="${BENCH_PY:-$("$root/bench/python/setup_venv.sh" | tail -n 1)}"

# Measured under the build lock, as bench/python/run.sh does, so no build shares the cores.
locked() {
  if [ -n "${HTTPCACHE_BUILD_LOCK_HELD:-}" ]; then "$@"; else flock /tmp/httpcache-build.lock "$@"; fi
}
for round in $(seq 1 "${COMPARE_ROUNDS:-3}"); do
  for side in old new; do
    build="$old"; [ "$side" = new ] && build="$new"
    echo "compare: round $round, $side: C" >&2
    locked "$build/bench/c/bench_cache" --benchmark_repetitions="${BENCH_REPETITIONS:-3}" \
      --benchmark_min_time="${BENCH_MIN_TIME:-0.3}" --benchmark_report_aggregates_only=true \
      --benchmark_format=json --benchmark_out="$run/c-$side-$round.json" --benchmark_out_format=json >/dev/null
    echo "compare: round $round, $side: Python" >&2
    (cd "$run" && locked env PYTHONPATH="$build/python" "$py" "$root/bench/python/bench_calls.py" \
      --redis-url "$HTTPCACHE_BENCH_REDIS_URL" --reps "${PY_REPS:-3}" --rep-seconds 0.2 --soak 0 \
      > "$run/py-$side-$round.md")
  done
done
python3 "$root/bench/compare.py" "$run"
