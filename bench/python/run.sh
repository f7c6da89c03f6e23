#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Python and HTTP benchmarks of issue 6; prints Markdown tables on stdout (progress on stderr)
# and keeps a copy in bench/.run/python/results.md.
#   bench/python/run.sh [--quick]        --quick: shorter runs, for a smoke test (numbers not for reports)
# Sets up bench/.venv-bench (setup_venv.sh, a no-op when up to date), starts a private
# redis-server on a free loopback port and a TLS one (tests/fixtures/redis_server.sh), runs
# bench_calls.py, bench_models.py, bench_tags.py, bench_near.py (issue 17's near tier), bench_tls.py and bench_http.py (twice: as is,
# with issue 17's floors and near-tier variants, then with gc.freeze() in the apps, the p99 analysis), and stops
# everything it started by pid, also on errors and Ctrl-C. About 12-13 min (the HTTP pass has 17 variants).
#
# The measurements run under flock /tmp/httpcache-build.lock, so no build shares the 2 cores with
# them. A caller that already holds that lock (the top-level bench/run.sh) sets
# HTTPCACHE_BUILD_LOCK_HELD=1, and then neither this script nor setup_venv.sh takes it again.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/bench/.run/python"
lockfile=/tmp/httpcache-build.lock

calls_args=(--reps 5 --rep-seconds 0.25)
# One table of 19 cases; more repetitions than calls_args: its baseline is a round trip, whose wall
# time swings with the VM's idle wake-ups (as bench_calls.py's one-caller table).
near_args=(--reps 9 --rep-seconds 0.2)
http_args=(--duration 10 --warmup 2 --runs 3)
# The second HTTP pass (analysis of p99): the same route with gc.freeze() after import.
freeze_args=(--gc-freeze --variants uncached httpcache httpcache-routed cashews --duration 8 --warmup 2 --runs 2)
if [ "${1:-}" = "--quick" ]; then
  calls_args=(--reps 2 --rep-seconds 0.05)
  near_args=(--reps 2 --rep-seconds 0.05)
  http_args=(--duration 2 --warmup 1 --runs 1)
  freeze_args=(--gc-freeze --variants uncached httpcache --duration 2 --warmup 1 --runs 1)
fi

py="$("$here/setup_venv.sh" | tail -n 1)"

locked() {
  if [ -n "${HTTPCACHE_BUILD_LOCK_HELD:-}" ]; then "$@"; else flock "$lockfile" "$@"; fi
}

mkdir -p "$work"
redis_dir="$work/redis"
tls_dir="$work/redis-tls"
cleanup() {
  "$root/tests/fixtures/redis_server.sh" stop "$redis_dir" >/dev/null 2>&1 || true
  "$root/tests/fixtures/redis_server.sh" stop "$tls_dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$root/tests/fixtures/redis_server.sh" start "$redis_dir" >&2
url="$(cat "$redis_dir/url")"
"$root/tests/fixtures/redis_server.sh" start "$tls_dir" tls >&2
tls_url="$(cat "$tls_dir/url")"

cd "$work"  # away from the checkout: `import httpcache` comes from the venv
echo "bench/python: measuring (waits for $lockfile unless HTTPCACHE_BUILD_LOCK_HELD is set)" >&2
locked "$py" "$here/bench_calls.py" --redis-url "$url" "${calls_args[@]}" > "$work/calls.md"
locked "$py" "$here/bench_models.py" --redis-url "$url" "${calls_args[@]}" > "$work/models.md"
locked "$py" "$here/bench_tags.py" --redis-url "$url" "${calls_args[@]}" > "$work/tags.md"
locked "$py" "$here/bench_near.py" --redis-url "$url" "${near_args[@]}" > "$work/near.md"
locked "$py" "$here/bench_tls.py" --redis-url "$tls_url" "${calls_args[@]}" > "$work/tls.md"
locked "$py" "$here/bench_http.py" --redis-url "$url" --workdir "$work/http" "${http_args[@]}" > "$work/http.md"
locked "$py" "$here/bench_http.py" --redis-url "$url" --workdir "$work/http" "${freeze_args[@]}" > "$work/http-freeze.md"
dirty=""
if [ -n "$(git -C "$root" status --porcelain -- core capi bindings include CMakeLists.txt pyproject.toml 2>/dev/null)" ]; then
  dirty=" + uncommitted changes in the library's sources"
fi
{
  echo "## Python and HTTP benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$dirty, redis-server $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/'))"
  echo
  cat "$work/calls.md"
  echo
  cat "$work/models.md"
  echo
  cat "$work/tags.md"
  echo
  cat "$work/near.md"
  echo
  cat "$work/tls.md"
  echo
  cat "$work/http.md"
  echo
  echo "Analysis pass (not the targets' conditions): the same, with gc.freeze() in each app after import."
  echo "It shows what the p99 of the async variants is made of (CPython full collections, see the 'full GCs' column)."
  echo
  cat "$work/http-freeze.md"
} | tee "$work/results.md"
