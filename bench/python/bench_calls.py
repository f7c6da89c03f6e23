# SPDX-License-Identifier: MIT
"""Function-call benchmarks of httpcache's Python decorators against their baselines and peers.

    python bench_calls.py --redis-url redis://127.0.0.1:PORT [--reps 5] [--rep-seconds 0.25]

Every case is timed with time.perf_counter_ns over n calls (n calibrated once per case so that a
repetition takes about --rep-seconds), repeated --reps times; cases of one table are run
round-robin within each repetition (so drift of a noisy machine hits them alike) and the
median per-call time is reported, with its ratio to the table's baseline measured in the same
run. The last column is this process's CPU time per call (time.process_time_ns: the client's
own work, without redis-server's; where it is far below the wall time, the round trip dominates).
Every case returns the same ~200-byte JSON-able dict (PAYLOAD), and every cached function
is checked: no recomputation during a hit run, one computation per call during a miss run.

Cases (issue 6):
  async hit      redis-py asyncio GET (baseline) vs httpcache @cache (Redis) vs authx_extra.cache,
                 fastapi-cache2 (RedisBackend), cashews (redis): one caller at a time, and 32
                 concurrent callers (32 tasks in asyncio.gather, each looping).
  sync hit       redis-py GET (baseline) vs httpcache @cache on a def function.
  memory hit     functools.lru_cache (the in-process floor) vs httpcache on memory://, plus the
                 parts of a memory hit (json.loads of the payload, the binding's Cache.get).
  miss+store     unique keys: redis-py GET then SET (a hand-written cache miss, the baseline) vs
                 httpcache and the peers; sync: redis-py vs httpcache.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
from typing import Any, Awaitable, Callable

PAYLOAD: dict[str, Any] = {
    "id": 4711,
    "name": "benchmark payload",
    "tags": ["alpha", "beta", "gamma", "delta"],
    "price": 12.5,
    "in_stock": True,
    "owner": {"id": "112358", "email": "owner@example.com"},
    "updated": "2026-11-25T10:00:00+00:00",
    "notes": "a small JSON object, about 200 bytes when encoded",
}
PAYLOAD_JSON = json.dumps(PAYLOAD, separators=(",", ":")).encode()
TTL = 3600
CONC = 32

perf_ns = time.perf_counter_ns
log = functools.partial(print, file=sys.stderr, flush=True)


class Counter:
    """Counts computations of a cached function (checks hits are hits and misses are misses)."""

    def __init__(self) -> None:
        self.n = 0


class Obj:
    """The argument a per-key template reads its {} from (obj/obj_attr in httpcache and authx)."""

    __slots__ = ("id",)

    def __init__(self, i: int) -> None:
        self.id = i


# ---------------------------------------------------------------------------------------------
# Timing loops. A case is (label, kind, fn, counter, expect): kind selects the loop.
#   "ahit":  await fn()                 "shit": fn()
#   "amiss": await fn(i) (unique i)     "smiss": fn(i)
#   "aconc": CONC tasks, each `await fn()` in a loop (all on one key)
#   "akeys": CONC tasks, task w `await fn(w)` in a loop (one key per task)
# ---------------------------------------------------------------------------------------------

_unique = [int(time.time() * 1000) * 1000]


def _next_block(n: int) -> int:
    start = _unique[0]
    _unique[0] += n
    return start


async def _loop_ahit(fn: Callable[[], Awaitable[Any]], n: int) -> int:
    t0 = perf_ns()
    for _ in range(n):
        await fn()
    return perf_ns() - t0


async def _loop_amiss(fn: Callable[[int], Awaitable[Any]], n: int) -> int:
    start = _next_block(n)
    t0 = perf_ns()
    for i in range(start, start + n):
        await fn(i)
    return perf_ns() - t0


def _loop_shit(fn: Callable[[], Any], n: int) -> int:
    t0 = perf_ns()
    for _ in range(n):
        fn()
    return perf_ns() - t0


def _loop_smiss(fn: Callable[[int], Any], n: int) -> int:
    start = _next_block(n)
    t0 = perf_ns()
    for i in range(start, start + n):
        fn(i)
    return perf_ns() - t0


async def _loop_aconc(fn: Callable[[], Awaitable[Any]], n: int) -> int:
    per = max(1, n // CONC)

    async def worker() -> None:
        for _ in range(per):
            await fn()

    t0 = perf_ns()
    await asyncio.gather(*[worker() for _ in range(CONC)])
    return perf_ns() - t0


async def _loop_akeys(fn: Callable[[int], Awaitable[Any]], n: int) -> int:
    per = max(1, n // CONC)

    async def worker(w: int) -> None:
        for _ in range(per):
            await fn(w)

    t0 = perf_ns()
    await asyncio.gather(*[worker(w) for w in range(CONC)])
    return perf_ns() - t0


async def run_loop(kind: str, fn: Any, n: int) -> tuple[int, int]:
    """(elapsed ns, calls made)."""
    if kind == "ahit":
        return await _loop_ahit(fn, n), n
    if kind == "amiss":
        return await _loop_amiss(fn, n), n
    if kind == "shit":
        return _loop_shit(fn, n), n
    if kind == "smiss":
        return _loop_smiss(fn, n), n
    if kind == "aconc":
        per = max(1, n // CONC)
        return await _loop_aconc(fn, n), per * CONC
    if kind == "akeys":
        per = max(1, n // CONC)
        return await _loop_akeys(fn, n), per * CONC
    raise ValueError(kind)


class Case:
    def __init__(self, label: str, kind: str, fn: Any, counter: Counter | None = None, note: str = "") -> None:
        self.label = label
        self.kind = kind
        self.fn = fn
        self.counter = counter
        self.note = note
        self.n = 0
        self.samples: list[float] = []  # ns per call, one per repetition
        self.cpu: list[float] = []  # this process's CPU ns per call, one per repetition

    def median_us(self) -> float:
        return statistics.median(self.samples) / 1000.0


async def measure_table(title: str, cases: list[Case], reps: int, rep_seconds: float) -> list[Case]:
    """Calibrates n per case, then runs `reps` round-robin repetitions."""
    log(f"[calls] {title}")
    for c in cases:
        # warm-up (also stores the hit entries), then calibration
        conc = c.kind in ("aconc", "akeys")
        await run_loop(c.kind, c.fn, CONC * 4 if conc else 50)
        elapsed, calls = await run_loop(c.kind, c.fn, CONC * 8 if conc else 200)
        per = max(elapsed / calls, 1.0)
        n = int(rep_seconds * 1e9 / per)
        n = max(n, 200)
        if conc:
            n = max(CONC, (n // CONC) * CONC)
        c.n = min(n, 2_000_000)
    for rep in range(reps):
        for c in cases:
            before = c.counter.n if c.counter is not None else None
            gc.collect()
            cpu0 = time.process_time_ns()
            elapsed, calls = await run_loop(c.kind, c.fn, c.n)
            c.cpu.append((time.process_time_ns() - cpu0) / calls)
            c.samples.append(elapsed / calls)
            if c.counter is not None:
                computed = c.counter.n - before
                if c.kind in ("amiss", "smiss"):
                    if computed != calls:
                        raise SystemExit(f"{c.label}: a miss run of {calls} calls computed {computed} times")
                elif computed != 0:
                    raise SystemExit(f"{c.label}: a hit run computed {computed} times (not hits)")
    for c in cases:
        log(f"    {c.label:55s} {c.median_us():9.2f} us/call  (n={c.n}, reps {', '.join(f'{s / 1000:.2f}' for s in c.samples)})")
    return cases


# ---------------------------------------------------------------------------------------------
# The cached functions, per library. Each returns PAYLOAD and counts its computations.
# ---------------------------------------------------------------------------------------------


def build_httpcache(url: str) -> dict[str, Any]:
    from httpcache import HTTPCache, cache

    HTTPCache.init(redis_url=url, namespace="bench_httpcache", tz="UTC")
    hit_c, miss_c, shit_c, smiss_c, hitk_c = Counter(), Counter(), Counter(), Counter(), Counter()

    @cache(key="bench.hit", ttl_in_seconds=TTL)
    async def ahit() -> dict:
        hit_c.n += 1
        return PAYLOAD

    @cache(key="bench.miss.{}", obj="o", obj_attr="id", ttl_in_seconds=TTL)
    async def amiss_inner(o: Obj) -> dict:
        miss_c.n += 1
        return PAYLOAD

    async def amiss(i: int) -> dict:
        return await amiss_inner(Obj(i))

    @cache(key="bench.hitk.{}", obj="o", obj_attr="id", ttl_in_seconds=TTL)
    async def ahitk_inner(o: Obj) -> dict:
        hitk_c.n += 1
        return PAYLOAD

    objs = [Obj(w) for w in range(CONC)]

    async def ahitk(w: int) -> dict:
        return await ahitk_inner(objs[w])

    @cache(key="bench.shit", ttl_in_seconds=TTL)
    def shit() -> dict:
        shit_c.n += 1
        return PAYLOAD

    @cache(key="bench.smiss.{}", obj="o", obj_attr="id", ttl_in_seconds=TTL)
    def smiss_inner(o: Obj) -> dict:
        smiss_c.n += 1
        return PAYLOAD

    def smiss(i: int) -> dict:
        return smiss_inner(Obj(i))

    return dict(ahit=(ahit, hit_c), amiss=(amiss, miss_c), ahitk=(ahitk, hitk_c), shit=(shit, shit_c),
                smiss=(smiss, smiss_c))


def build_authx(url: str) -> dict[str, Any]:
    from authx_extra.cache import cache
    from authx_extra.extra._cache import HTTPCache as AxCache

    # authx sets its logger to DEBUG with logging.basicConfig() at import, so every hit writes a
    # line to stderr; muted here (as a user would in production), which only favours authx.
    logging.getLogger("authx").setLevel(logging.WARNING)
    AxCache.init(redis_url=url, namespace="bench_authx")
    hit_c, miss_c, hitk_c = Counter(), Counter(), Counter()

    @cache(key="bench.hit", ttl_in_seconds=TTL)
    async def ahit() -> dict:
        hit_c.n += 1
        return PAYLOAD

    @cache(key="bench.miss.{}", obj="o", obj_attr="id", ttl_in_seconds=TTL)
    async def amiss_inner(o: Obj) -> dict:
        miss_c.n += 1
        return PAYLOAD

    async def amiss(i: int) -> dict:
        return await amiss_inner(o=Obj(i))  # authx reads obj from kwargs only

    @cache(key="bench.hitk.{}", obj="o", obj_attr="id", ttl_in_seconds=TTL)
    async def ahitk_inner(o: Obj) -> dict:
        hitk_c.n += 1
        return PAYLOAD

    objs = [Obj(w) for w in range(CONC)]

    async def ahitk(w: int) -> dict:
        return await ahitk_inner(o=objs[w])

    return dict(ahit=(ahit, hit_c), amiss=(amiss, miss_c), ahitk=(ahitk, hitk_c))


def build_fastapi_cache(url: str) -> dict[str, Any]:
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.redis import RedisBackend
    from fastapi_cache.decorator import cache
    from redis import asyncio as aioredis

    FastAPICache.init(RedisBackend(aioredis.from_url(url)), prefix="bench_fastapi_cache")
    hit_c, miss_c, hitk_c = Counter(), Counter(), Counter()

    @cache(expire=TTL)
    async def ahit() -> dict:
        hit_c.n += 1
        return PAYLOAD

    @cache(expire=TTL)
    async def amiss(i: int) -> dict:  # the key is built from the arguments
        miss_c.n += 1
        return PAYLOAD

    @cache(expire=TTL)
    async def ahitk(w: int) -> dict:
        hitk_c.n += 1
        return PAYLOAD

    return dict(ahit=(ahit, hit_c), amiss=(amiss, miss_c), ahitk=(ahitk, hitk_c))


def build_cashews(url: str) -> dict[str, Any]:
    from cashews import Cache

    c = Cache()
    c.setup(url)
    hit_c, miss_c, hitk_c = Counter(), Counter(), Counter()

    @c(ttl=TTL, key="bench_cashews:hit")
    async def ahit() -> dict:
        hit_c.n += 1
        return PAYLOAD

    @c(ttl=TTL, key="bench_cashews:miss:{i}")
    async def amiss(i: int) -> dict:
        miss_c.n += 1
        return PAYLOAD

    @c(ttl=TTL, key="bench_cashews:hitk:{w}")
    async def ahitk(w: int) -> dict:
        hitk_c.n += 1
        return PAYLOAD

    return dict(ahit=(ahit, hit_c), amiss=(amiss, miss_c), ahitk=(ahitk, hitk_c), _cache=c)


def build_redispy(url: str) -> dict[str, Any]:
    import redis
    from redis import asyncio as aioredis

    ar = aioredis.from_url(url)
    sr = redis.Redis.from_url(url)
    sr.set("bench_raw:hit", PAYLOAD_JSON)

    async def aget() -> bytes | None:
        return await ar.get("bench_raw:hit")

    def sget() -> bytes | None:
        return sr.get("bench_raw:hit")

    keys = [f"bench_raw:hitk:{w}" for w in range(CONC)]
    for k in keys:
        sr.set(k, PAYLOAD_JSON)

    async def agetk(w: int) -> bytes | None:
        return await ar.get(keys[w])

    # A hand-written cache miss: GET (miss), compute, SET with a TTL.
    amiss_c, smiss_c = Counter(), Counter()

    async def amiss(i: int) -> dict:
        k = f"bench_raw:miss:{i}"
        v = await ar.get(k)
        if v is not None:
            return json.loads(v)
        amiss_c.n += 1
        await ar.set(k, json.dumps(PAYLOAD, separators=(",", ":")), ex=TTL)
        return PAYLOAD

    def smiss(i: int) -> dict:
        k = f"bench_raw:smiss:{i}"
        v = sr.get(k)
        if v is not None:
            return json.loads(v)
        smiss_c.n += 1
        sr.set(k, json.dumps(PAYLOAD, separators=(",", ":")), ex=TTL)
        return PAYLOAD

    return dict(aget=aget, sget=sget, agetk=agetk, amiss=(amiss, amiss_c), smiss=(smiss, smiss_c), _clients=(ar, sr))


async def check_results(libs: dict[str, dict[str, Any]]) -> None:
    """Every cached function returns PAYLOAD, on a miss and on a hit."""
    for name, lib in libs.items():
        for kind in ("ahit", "amiss"):
            if kind not in lib:
                continue
            fn = lib[kind][0]
            for _ in range(2):
                got = await (fn() if kind == "ahit" else fn(-1))
                if got != PAYLOAD:
                    raise SystemExit(f"{name} {kind}: returned {got!r}, not the payload")
        for kind in ("shit", "smiss"):
            if kind in lib:
                fn = lib[kind][0]
                for _ in range(2):
                    got = fn() if kind == "shit" else fn(-1)
                    if got != PAYLOAD:
                        raise SystemExit(f"{name} {kind}: returned {got!r}, not the payload")


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def table(title: str, cases: list[Case], baseline: Case, target: str = "") -> str:
    lines = [f"#### {title}", ""]
    if target:
        lines += [target, ""]
    lines += ["| case | us/call (median) | min..max over reps | ratio to baseline | client CPU us/call |",
              "|---|---:|---:|---:|---:|"]
    base = baseline.median_us()
    for c in cases:
        us = c.median_us()
        lo, hi = min(c.samples) / 1000, max(c.samples) / 1000
        ratio = us / base
        mark = " (baseline)" if c is baseline else ""
        cpu = statistics.median(c.cpu) / 1000.0
        lines.append(f"| {c.label}{mark} | {us:.2f} | {lo:.2f}..{hi:.2f} | {ratio:.2f}x | {cpu:.2f} |")
    lines.append("")
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


async def main_async(args: argparse.Namespace) -> str:
    url = args.redis_url
    out: list[str] = []
    reps, rs = args.reps, args.rep_seconds

    raw = build_redispy(url)
    libs = {
        "httpcache": build_httpcache(url),
        "authx_extra": build_authx(url),
        "fastapi-cache2": build_fastapi_cache(url),
        "cashews": build_cashews(url),
    }
    await check_results(libs)
    peers = ["authx_extra", "fastapi-cache2", "cashews"]
    pretty = {
        "httpcache": "httpcache @cache (Redis)",
        "authx_extra": "authx_extra.cache @cache (seed)",
        "fastapi-cache2": "fastapi-cache2 @cache (RedisBackend)",
        "cashews": "cashews @cache (redis)",
    }

    def hit_cases(kind: str) -> list[Case]:
        cs = [Case("redis-py asyncio GET", kind, raw["aget"])]
        for name in ["httpcache"] + peers:
            fn, counter = libs[name]["ahit"]
            cs.append(Case(pretty[name] + " hit", kind, fn, counter))
        return cs

    summary: list[tuple[str, str, bool]] = []

    def peer_check(title: str, cs: list[Case], ours: Case, peer_cases: list[Case]) -> None:
        best = min(peer_cases, key=lambda c: c.median_us())
        r = ours.median_us() / best.median_us()
        summary.append((f"{title}: httpcache vs best peer ({best.label})", f"{r:.2f}x time (< 1.0)", r < 1.0))

    # (a) async hit, one at a time
    # One caller at a time is a round trip per call, whose wall time swings with the VM's idle
    # wake-ups: twice the repetitions (still round-robin) for a steadier median.
    a1 = await measure_table("async hit, one caller", hit_cases("ahit"), 2 * reps, rs)
    out.append(table("Async hit on Redis, one caller at a time", a1, a1[0],
                     "Target: httpcache <= 0.8x the redis-py asyncio GET; ahead of every peer."))
    r = a1[1].median_us() / a1[0].median_us()
    summary.append(("async hit, 1 caller: httpcache / redis-py asyncio GET", f"{r:.2f}x (<= 0.8)", r <= 0.8))
    peer_check("async hit, 1 caller", a1, a1[1], a1[2:])

    # (a) async hit, 32 concurrent callers
    a32 = await measure_table("async hit, 32 concurrent callers", hit_cases("aconc"), reps, rs)
    out.append(table(f"Async hit on Redis, {CONC} concurrent callers (asyncio.gather; time per call = wall / calls)",
                     a32, a32[0], "Target: httpcache <= 0.8x the redis-py asyncio GET; ahead of every peer."))
    r = a32[1].median_us() / a32[0].median_us()
    summary.append((f"async hit, {CONC} callers: httpcache / redis-py asyncio GET", f"{r:.2f}x (<= 0.8)", r <= 0.8))
    peer_check(f"async hit, {CONC} callers", a32, a32[1], a32[2:])

    # (a') the same with one key per caller: no peer can coalesce the callers' GETs
    ks = [Case("redis-py asyncio GET", "akeys", raw["agetk"])]
    for name in ["httpcache"] + peers:
        fn, counter = libs[name]["ahitk"]
        ks.append(Case(pretty[name] + " hit", "akeys", fn, counter))
    a32k = await measure_table("async hit, 32 concurrent callers, 32 keys", ks, reps, rs)
    out.append(table(f"Async hit on Redis, {CONC} concurrent callers on {CONC} distinct keys (one key per caller)",
                     a32k, a32k[0], "Not a target of issue 6: shows the cost per call when callers cannot share a GET "
                     "(cashews coalesces concurrent calls of one key, see above)."))
    r = a32k[1].median_us() / a32k[0].median_us()
    summary.append((f"async hit, {CONC} callers on {CONC} keys: httpcache / redis-py asyncio GET", f"{r:.2f}x (<= 0.8)", r <= 0.8))
    peer_check(f"async hit, {CONC} callers on {CONC} keys", a32k, a32k[1], a32k[2:])

    # (b) sync hit
    h = libs["httpcache"]
    b = await measure_table("sync hit", [
        Case("redis-py GET (blocking)", "shit", raw["sget"]),
        Case("httpcache @cache on a def function (Redis) hit", "shit", h["shit"][0], h["shit"][1]),
    ], reps, rs)
    out.append(table("Sync hit on Redis", b, b[0], "No numeric target; the peers have no sync decorator (authx_extra and cashews are async-only)."))

    # (e) miss + store
    ms = [Case("redis-py asyncio GET + SET (hand-written)", "amiss", raw["amiss"][0], raw["amiss"][1])]
    for name in ["httpcache"] + peers:
        fn, counter = libs[name]["amiss"]
        ms.append(Case(pretty[name] + " miss+store", "amiss", fn, counter))
    e = await measure_table("async miss+store", ms, reps, rs)
    out.append(table("Async miss + store on Redis (unique keys, one caller)", e, e[0], "Target: ahead of every peer."))
    peer_check("async miss+store", e, e[1], e[2:])

    es = await measure_table("sync miss+store", [
        Case("redis-py GET + SET (blocking, hand-written)", "smiss", raw["smiss"][0], raw["smiss"][1]),
        Case("httpcache @cache def miss+store", "smiss", h["smiss"][0], h["smiss"][1]),
    ], reps, rs)
    out.append(table("Sync miss + store on Redis (unique keys)", es, es[0]))

    # (c) memory:// hit vs lru_cache (re-init: the same decorated functions now use memory://)
    from httpcache import HTTPCache, _httpcache

    HTTPCache.init(redis_url=None, namespace="bench_httpcache", tz="UTC")
    lru_c = Counter()

    @functools.lru_cache(maxsize=None)
    def lru() -> dict:
        lru_c.n += 1
        return PAYLOAD

    lru()
    mem_cache = _httpcache.Cache("memory://", "bench_parts")
    mem_cache.set(b"k", PAYLOAD_JSON, _httpcache.Policy.seconds(TTL))
    policy = _httpcache.Policy.seconds(TTL)

    def part_get() -> Any:
        return mem_cache.get(b"k")

    def part_goc() -> Any:
        return mem_cache.get_or_compute(b"k", policy, lambda: (PAYLOAD_JSON, True))

    def part_loads() -> Any:
        return json.loads(PAYLOAD_JSON)

    m = await measure_table("memory hit", [
        Case("functools.lru_cache hit", "shit", lru, lru_c),
        Case("httpcache @cache def, memory:// hit", "shit", h["shit"][0], h["shit"][1]),
        Case("httpcache @cache async def, memory:// hit", "ahit", h["ahit"][0], h["ahit"][1]),
        Case("part: json.loads of the 200-byte payload", "shit", part_loads),
        Case("part: binding Cache.get(key) on memory://", "shit", part_get),
        Case("part: binding Cache.get_or_compute(key) hit on memory://", "shit", part_goc),
    ], reps, rs)
    out.append(table("Hit on memory:// vs functools.lru_cache (the in-process floor)", m, m[0],
                     "Target: httpcache <= 5x lru_cache. The 'part' rows are pieces of a memory hit, for the analysis."))
    r = m[1].median_us() / m[0].median_us()
    summary.append(("memory:// sync hit / functools.lru_cache", f"{r:.1f}x (<= 5)", r <= 5.0))

    out.append(await lmdb_vs_memory(h, summary))

    if args.soak:
        out.append(await soak(url, args.soak))

    # close the peers' clients (redis.asyncio warns otherwise)
    for c in raw["_clients"]:
        res = c.aclose() if hasattr(c, "aclose") else c.close()
        if asyncio.iscoroutine(res):
            await res

    head = ["| target (bench_calls.py) | measured | |", "|---|---:|---|"]
    head += [f"| {t} | {v} | {verdict(ok)} |" for t, v, ok in summary]
    return "\n".join(head) + "\n\n" + "\n".join(out)


async def lmdb_vs_memory(h: dict[str, Any], summary: list) -> str:
    """The same decorated functions on memory:// and on lmdb:// (a fresh directory), re-initialised
    in turn for several rounds (one store at a time: HTTPCache has one URL); the ratio is the
    median over rounds of each round's lmdb/memory times."""
    import shutil
    import statistics
    import tempfile

    from httpcache import HTTPCache

    log("[calls] lmdb:// vs memory:// hits")
    directory = tempfile.mkdtemp(prefix="httpcache-bench-lmdb-")
    stores = {"memory://": "memory://", "lmdb://": f"lmdb://{directory}"}
    times: dict[tuple[str, str], list[float]] = {}
    n = 20000
    try:
        for _ in range(7):
            for name, store in stores.items():
                HTTPCache.init(redis_url=store, namespace="bench_httpcache", tz="UTC")
                h["shit"][0]()
                await h["ahit"][0]()
                times.setdefault((name, "def"), []).append(_loop_shit(h["shit"][0], n) / n / 1000)
                times.setdefault((name, "async def"), []).append(await _loop_ahit(h["ahit"][0], n) / n / 1000)
    finally:
        HTTPCache.init(redis_url=None, namespace="bench_httpcache", tz="UTC")
        shutil.rmtree(directory, ignore_errors=True)
    lines = ["#### Hit on lmdb:// (shared by the processes of a host) vs memory:// (one process)", "",
             "Target (issue 18): a Python hit on lmdb:// within 1.3x of a memory:// hit.", "",
             "| case | memory:// us/call | lmdb:// us/call | ratio (median of rounds) |", "|---|---:|---:|---:|"]
    for kind in ("def", "async def"):
        mem, lm = times[("memory://", kind)], times[("lmdb://", kind)]
        ratio = statistics.median(b / a for a, b in zip(mem, lm))
        lines.append(f"| @cache {kind} hit | {statistics.median(mem):.2f} | {statistics.median(lm):.2f} | {ratio:.2f}x |")
        summary.append((f"lmdb:// {kind} hit / memory:// hit", f"{ratio:.2f}x (<= 1.3)", ratio <= 1.3))
    return "\n".join(lines)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


async def soak(url: str, calls: int) -> str:
    """Memory: RSS before and after `calls` hits (memory:// sync, Redis async with 32 callers), and
    memory:// with a byte limit written with 10x that limit of unique entries."""
    from httpcache import HTTPCache, cache

    rows = []

    async def run(label: str, body: Callable[[], Awaitable[None]]) -> None:
        gc.collect()
        before = rss_mb()
        t0 = perf_ns()
        await body()
        gc.collect()
        after = rss_mb()
        rows.append(f"| {label} | {(perf_ns() - t0) / 1e9:.1f} | {before:.1f} | {after:.1f} | {after - before:+.1f} |")
        log(f"    {label}: RSS {before:.1f} -> {after:.1f} MB")

    log("[calls] memory: long runs")
    HTTPCache.init(redis_url=None, namespace="bench_soak", tz="UTC")

    @cache(key="soak.hit", ttl_in_seconds=TTL)
    def shit() -> dict:
        return PAYLOAD

    for _ in range(10_000):
        shit()

    async def mem_hits() -> None:
        for _ in range(calls):
            shit()

    await run(f"{calls:,} sync hits on memory://", mem_hits)

    limit = 8 << 20
    HTTPCache.init(redis_url=None, namespace="bench_soak", tz="UTC", memory_max_bytes=limit)
    big = {"blob": "x" * 4000}

    @cache(key="soak.fill.{}", obj="o", obj_attr="id", ttl_in_seconds=TTL)
    def fill(o: Obj) -> dict:
        return big

    n_fill = 10 * limit // 4000

    async def mem_fill() -> None:
        for i in range(n_fill):
            fill(Obj(i))

    await run(f"memory:// with memory_max_bytes = 8 MiB: {n_fill:,} unique 4 kB entries (10x the limit)", mem_fill)

    HTTPCache.init(redis_url=url, namespace="bench_soak", tz="UTC")

    @cache(key="soak.ahit", ttl_in_seconds=TTL)
    async def ahit() -> dict:
        return PAYLOAD

    await _loop_aconc(ahit, CONC * 100)

    async def redis_hits() -> None:
        await _loop_aconc(ahit, calls)

    await run(f"{calls:,} async hits on Redis, {CONC} callers", redis_hits)
    head = ["#### Memory: RSS of this process around long runs", "",
            "Target (issue 6): nothing grows without bound; the memory backend keeps to its byte limit.", "",
            "| run | seconds | RSS before MB | RSS after MB | growth MB |", "|---|---:|---:|---:|---:|"]
    return "\n".join(head + rows) + "\n"


def environment(args: argparse.Namespace) -> str:
    import redis
    from redis.utils import HIREDIS_AVAILABLE

    import httpcache

    loop = "uvloop" if args.loop == "uvloop" else "asyncio (default loop)"
    parser = "with its hiredis parser" if HIREDIS_AVAILABLE else "with its pure-Python parser (no hiredis)"
    return (f"Python {platform.python_version()}, {os.cpu_count()} CPUs, loop {loop}, redis-py {redis.__version__} "
            f"{parser}, httpcache {httpcache._httpcache.version_string()}; {args.reps} reps of about "
            f"{args.rep_seconds} s per case; payload {len(PAYLOAD_JSON)} bytes of JSON")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rep-seconds", type=float, default=0.25)
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--soak", type=int, default=1_000_000, help="calls of the memory runs (0: skip them)")
    args = ap.parse_args()
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run
    body = runner(main_async(args))
    print("### Python function calls (bench/python/bench_calls.py)\n")
    print(environment(args) + "\n")
    print(body)


if __name__ == "__main__":
    main()
