# SPDX-License-Identifier: MIT
"""What a tag check costs a Redis hit (issue 16): a hit of a function cached with tags vs the same
function without, and vs what a tag check in its own round trip would cost.

    python bench_tags.py --redis-url redis://127.0.0.1:PORT [--reps 7] [--rep-seconds 0.25]

Cases, each a hit of one entry, called one at a time (sync: the blocking get_or_compute; async:
the event loop's non-blocking context), all on the one redis-server of --redis-url:
  untagged      @cache(key="b.plain", ttl_in_seconds=600)
  tagged:1      the same with tags=["catalog"]
  untagged, key field   key="b.field.{user_id}" (a field filled per call), no tags
  tagged:3      the same key with tags=["catalog", "shop:1", "user:{user_id}"] (the tag's field
                filled per call too: compare it with the row above)
  +1 RTT        the untagged hit followed by one more GET through the same library and handle
                (HTTPCache.handle().cache.get of another key): what a tag check costs when it
                needs a round trip of its own (the peers that keep tag versions in Redis and
                read them after the entry).
The ratio column is each case's median over the untagged hit's median of the same repetition
set: a tag check folded into the hit's pipeline costs a few more commands in one round trip
(expected within about 1.2x), a separate round trip shows as the +1 RTT row (about 1.5-2x on
loopback; more on a real network, where the round trip dominates).

Method as bench_calls.py: warm up (the first call stores), n calibrated per case so one
repetition takes about --rep-seconds, cases round-robin within each repetition, median per
call reported. Each case counts its computations: a case whose body ran during timing is
reported NOT CACHED.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any, Callable

from httpcache import HTTPCache, cache

perf_ns = time.perf_counter_ns


def make_cases() -> tuple[dict[str, Callable[[], Any]], dict[str, Callable[[], Any]], list[int]]:
    runs = [0]

    def body() -> dict:
        runs[0] += 1
        return {"items": list(range(20))}

    plain = cache(key="b.plain", ttl_in_seconds=600)(lambda: body())
    one = cache(key="b.one", ttl_in_seconds=600, tags=["catalog"])(lambda: body())

    @cache(key="b.field.{user_id}", ttl_in_seconds=600)
    def field(user_id: int) -> dict:
        return body()

    @cache(key="b.three.{user_id}", ttl_in_seconds=600, tags=["catalog", "shop:1", "user:{user_id}"])
    def three(user_id: int) -> dict:
        return body()

    handle = HTTPCache.handle()
    handle.cache.set(b"b.elsewhere", b"1", __import__("httpcache")._httpcache.Policy.seconds(600))

    def plus_rtt() -> Any:
        plain()
        return handle.cache.get(b"b.elsewhere")

    @cache(key="b.aplain", ttl_in_seconds=600)
    async def aplain() -> dict:
        return body()

    @cache(key="b.aone", ttl_in_seconds=600, tags=["catalog"])
    async def aone() -> dict:
        return body()

    @cache(key="b.athree.{user_id}", ttl_in_seconds=600, tags=["catalog", "shop:1", "user:{user_id}"])
    async def athree(user_id: int) -> dict:
        return body()

    sync = {"untagged": plain, "tagged:1": one, "untagged, key field": lambda: field(7), "tagged:3": lambda: three(7),
            "+1 RTT": plus_rtt}
    asyn = {"untagged": aplain, "tagged:1": aone, "tagged:3": lambda: athree(7)}
    return sync, asyn, runs


def time_sync(fn: Callable[[], Any], n: int) -> int:
    t0 = perf_ns()
    for _ in range(n):
        fn()
    return perf_ns() - t0


async def time_async(fn: Callable[[], Any], n: int) -> int:
    t0 = perf_ns()
    for _ in range(n):
        await fn()
    return perf_ns() - t0


def measure(cases: dict[str, Callable[[], Any]], timer: Callable[[Callable[[], Any], int], int], runs: list[int],
            reps: int, rep_seconds: float) -> dict[str, tuple[float, bool]]:
    """Median ns per call of each case, and whether its body ran while timed."""
    for fn in cases.values():
        timer(fn, 3)  # store, then hit
    sizes = {name: max(50, int(rep_seconds * 1e9 / max(1, timer(fn, 200) / 200))) for name, fn in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    ran = dict.fromkeys(cases, False)
    for _ in range(reps):
        for name, fn in cases.items():
            before = runs[0]
            samples[name].append(timer(fn, sizes[name]) / sizes[name])
            ran[name] = ran[name] or runs[0] != before
    return {name: (statistics.median(s), ran[name]) for name, s in samples.items()}


def table(title: str, results: dict[str, tuple[float, bool]]) -> str:
    base = results["untagged"][0]
    lines = [f"### {title}", "", "| case | us per hit | ratio to untagged |", "|---|---:|---:|"]
    for name, (ns, ran) in results.items():
        note = " (NOT CACHED)" if ran else ""
        lines.append(f"| {name}{note} | {ns / 1000:.1f} | {ns / base:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--rep-seconds", type=float, default=0.25)
    args = parser.parse_args()
    HTTPCache.init(args.redis_url, "UTC", f"benchtags{int(time.time())}")
    sync, asyn, runs = make_cases()
    sync_results = measure(sync, time_sync, runs, args.reps, args.rep_seconds)

    async def run_async() -> dict[str, tuple[float, bool]]:
        loop_cases = {name: fn for name, fn in asyn.items()}
        for fn in loop_cases.values():
            await time_async(fn, 3)
        sizes = {}
        for name, fn in loop_cases.items():
            sizes[name] = max(50, int(args.rep_seconds * 1e9 / max(1, await time_async(fn, 200) / 200)))
        samples: dict[str, list[float]] = {name: [] for name in loop_cases}
        ran = dict.fromkeys(loop_cases, False)
        for _ in range(args.reps):
            for name, fn in loop_cases.items():
                before = runs[0]
                samples[name].append(await time_async(fn, sizes[name]) / sizes[name])
                ran[name] = ran[name] or runs[0] != before
        return {name: (statistics.median(s), ran[name]) for name, s in samples.items()}

    async_results = asyncio.run(run_async())
    print(table("Tagged hits, def functions (blocking get_or_compute)", sync_results))
    print()
    print(table("Tagged hits, async def functions (non-blocking context)", async_results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
