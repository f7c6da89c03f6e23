#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmark command: installs what it needs, builds a Release tree with the C benchmarks,
# starts a private redis-server and Redis Cluster on loopback, runs the C benchmarks (each beside
# its baseline, medians of repetitions), the memory checks, and the Python/HTTP benchmarks, and
# prints Markdown tables of times and ratios. Everything it started is stopped by pid at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
build="$root/build-bench"
BUILD_DIR="$build" "$root/scripts/build.sh" -DCMAKE_BUILD_TYPE=Release -DHTTPCACHE_BENCH=ON \
  -DHTTPCACHE_TEST=OFF -DHTTPCACHE_PYTHON=OFF >/dev/null

run="$root/bench/.run"
mkdir -p "$run"
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

echo "## C (Google Benchmark; $(nproc) cores)"
# Rounds of repetitions; report.py takes each ratio within a round (case and baseline measured
# minutes apart at most) and reports the median over rounds.
c_json=()
for round in $(seq 1 "${BENCH_ROUNDS:-3}"); do
  "$build/bench/c/bench_cache" --benchmark_repetitions="${BENCH_REPETITIONS:-3}" \
    --benchmark_min_time="${BENCH_MIN_TIME:-0.3}" --benchmark_report_aggregates_only=true \
    --benchmark_format=json --benchmark_out="$run/c-$round.json" --benchmark_out_format=json >/dev/null
  c_json+=("$run/c-$round.json")
done
python3 "$root/bench/c/report.py" "${c_json[@]}"

echo
echo "## Misses from 4 processes on one host: lmdb:// beside a local redis-server"
lmdb_dir="$(mktemp -d /tmp/httpcache-bench-procs-XXXXXX)"
"$build/bench/c/procs" "lmdb://$lmdb_dir" 4 "${PROCS_CALLS:-20000}" | tee "$run/procs-lmdb.txt"
"$build/bench/c/procs" "$HTTPCACHE_BENCH_REDIS_URL" 4 "${PROCS_CALLS:-20000}" | tee "$run/procs-redis.txt"
rm -rf "$lmdb_dir"
python3 - "$run/procs-lmdb.txt" "$run/procs-redis.txt" <<'PY'
import re, sys
rate = [float(re.search(r"([0-9.]+) calls/s", open(p).read()).group(1)) for p in sys.argv[1:]]
print(f"lmdb:// / Redis calls per second: {rate[0] / rate[1]:.2f}x")
PY

echo
echo "## Memory"
"$build/bench/c/soak" "${SOAK_CALLS:-1000000}" "$HTTPCACHE_BENCH_REDIS_URL"
if command -v valgrind >/dev/null; then
  SOAK_LEAK_CHECK_ONLY=1 valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=3 -q \
    "$build/bench/c/soak" "${VALGRIND_CALLS:-1000000}" >/dev/null 2>"$run/valgrind.log" \
    && echo "valgrind: no leaks over ${VALGRIND_CALLS:-1000000} calls on memory:// (definite/indirect)" \
    || { echo "valgrind found problems:"; cat "$run/valgrind.log"; exit 1; }
fi

if [ -x "$root/bench/python/run.sh" ]; then
  echo
  "$root/bench/python/run.sh"
fi

echo
echo "## Python memory"
bench_py="$("$root/bench/python/setup_venv.sh" | tail -n 1)"
"$bench_py" "$root/bench/python/soak.py" "${SOAK_CALLS:-1000000}" "$HTTPCACHE_BENCH_REDIS_URL"
