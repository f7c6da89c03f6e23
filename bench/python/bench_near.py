# SPDX-License-Identifier: MIT
"""The near tier (issue 17): a hit served from the in-process copy of a Redis entry, beside what
it replaces (a Redis round trip), the peer that has one (cashews' client_side) and the in-process
floors it is held to (functools.lru_cache, the cheapest independent copy of the value).

    python bench_near.py --redis-url redis://127.0.0.1:PORT [--reps 5] [--rep-seconds 0.25]

One table, every case one caller at a time in one asyncio loop, all on the one redis-server of
--redis-url, round-robin within each repetition (bench_calls.py's machinery: n calibrated per
case so that a repetition takes about --rep-seconds, median ns per call, ratio to the baseline of
the same run, this process's CPU per call). Every cached function returns bench_calls.PAYLOAD
(the ~200-byte JSON-able dict) or a Starlette JSONResponse of it, and counts its computations: a
hit run that computed fails the run. Every httpcache near case also counts the handle's
near_hits during its timed calls: the "near" column is near_hits / calls (100%: no call made a
round trip; below it, the tier was emptied during the run and some calls went to Redis).

Cases:
  redis-py asyncio GET          the baseline: `await r.get(key)` with redis-py's hiredis parser,
                                as production installs it (`redis[hiredis]`); the bench checks
                                redis.utils.HIREDIS_AVAILABLE and prints the parser class used.
  httpcache async, near off     @cache on an async def, Redis, near tier off: a round trip per hit
                                (what the tier saves).
  cashews near hit              cashews 7.6 with `cache.setup(url, client_side=True)` (its
                                BcastClientSide backend: a local Memory in front of Redis,
                                invalidated over CLIENT TRACKING BCAST); its hits return the one
                                object it keeps (no copy per caller).
  httpcache near hit            @cache, HTTPCache.init(url, near_cache=True): async def and def.
  httpcache memory:// hit       the same decorators on memory:// (the value path it shares).
  functools.lru_cache           returning the same dict: the in-process floor (no copy at all).
  copy of the value             the independent copies a hit could hand out of a value decoded once:
                                _httpcache.copy_json (what a near hit uses), and for reference
                                json.loads of the stored bytes, marshal.loads, copy.deepcopy
                                (orjson and msgspec are not in the pinned venv: not measured here).
  wrapper floor                 a def wrapper(*args, **kwargs) calling the lru_cache: the least
                                any decorator written in Python adds to a call.
  await floor                   `await f()` of an async def returning the dict: what an async
                                call costs before any cache work.
  Response near hit             @cache on a def / async def returning JSONResponse(PAYLOAD): a
                                copy of the memoized Response plus its cache headers; beside
                                lru_cache returning one Response object, and the part a hit
                                must pay for an independent Response (_codec._copy_response).
  part: ...                     pieces of a near hit, for the analysis: the binding's blocking get,
                                and its no-I/O peek (bytes, or with a ValueMemo's table the
                                copy_json copy) where the binding has one.
Targets (issue 17): near hit <= 0.05x redis-py's GET and >= 4x faster than cashews' near hit;
Response near hit within 3x of lru_cache returning a Response; plain-value near hit (and the
memory:// hit) within 1.5x of the cheapest independent copy of the value.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import gc
import json
import marshal
import os
import platform
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_calls as bc  # noqa: E402

PAYLOAD, PAYLOAD_JSON, TTL = bc.PAYLOAD, bc.PAYLOAD_JSON, bc.TTL
log = bc.log


class NearCase(bc.Case):
    """A bench_calls Case that also counts the near hits of `handle` (None: not a near case)."""

    def __init__(self, label: str, kind: str, fn: Any, counter: bc.Counter | None = None, handle: Any = None) -> None:
        super().__init__(label, kind, fn, counter)
        self.handle = handle
        self.near: list[float] = []  # near_hits / calls, one per repetition


def near_hits(handle: Any) -> int:
    return handle.cache.stats()["near_hits"]


async def measure(title: str, cases: list[NearCase], reps: int, rep_seconds: float) -> list[NearCase]:
    """bench_calls.measure_table, plus the near-hit share of every near case's timed calls."""
    log(f"[near] {title}")
    for c in cases:
        await bc.run_loop(c.kind, c.fn, 50)
        elapsed, calls = await bc.run_loop(c.kind, c.fn, 200)
        c.n = min(max(int(rep_seconds * 1e9 / max(elapsed / calls, 1.0)), 200), 2_000_000)
    for _ in range(reps):
        for c in cases:
            before = c.counter.n if c.counter is not None else 0
            near0 = near_hits(c.handle) if c.handle is not None else 0
            gc.collect()
            cpu0 = time.process_time_ns()
            elapsed, calls = await bc.run_loop(c.kind, c.fn, c.n)
            c.cpu.append((time.process_time_ns() - cpu0) / calls)
            c.samples.append(elapsed / calls)
            if c.handle is not None:
                c.near.append((near_hits(c.handle) - near0) / calls)
            if c.counter is not None and c.counter.n != before:
                raise SystemExit(f"{c.label}: a hit run computed {c.counter.n - before} times (not hits)")
    for c in cases:
        log(f"    {c.label:60s} {c.median_us():9.3f} us/call  (n={c.n}, reps "
            f"{', '.join(f'{s / 1000:.3f}' for s in c.samples)})")
    return cases


def extra_handle(namespace: str, url: str, **options: Any) -> Any:
    """A handle of another URL (or other options) beside init()'s, for one namespace: HTTPCache has
    one URL per process, the table needs memory:// and the near tier off beside it in the same
    run. Registered in HTTPCache._handles as handle() does (a private table; a benchmark only)."""
    from httpcache import HTTPCache, _httpcache
    from httpcache._config import Handle

    h = Handle(_httpcache.Cache(url, namespace, "UTC", **options), namespace, url)
    with HTTPCache._lock:
        handles = dict(HTTPCache._handles)
        handles[namespace] = h
        HTTPCache._handles = handles
    return h


def decorated(namespace: str | None) -> dict[str, tuple[Any, bc.Counter]]:
    """The four cached functions of one namespace: a plain value and a Response, async and def."""
    from starlette.responses import JSONResponse

    from httpcache import cache

    counters = [bc.Counter() for _ in range(4)]

    @cache(key="near.value", ttl_in_seconds=TTL, namespace=namespace)
    async def avalue() -> dict:
        counters[0].n += 1
        return PAYLOAD

    @cache(key="near.svalue", ttl_in_seconds=TTL, namespace=namespace)
    def svalue() -> dict:
        counters[1].n += 1
        return PAYLOAD

    @cache(key="near.response", ttl_in_seconds=TTL, namespace=namespace)
    async def aresponse() -> Any:
        counters[2].n += 1
        return JSONResponse(PAYLOAD)

    @cache(key="near.sresponse", ttl_in_seconds=TTL, namespace=namespace)
    def sresponse() -> Any:
        counters[3].n += 1
        return JSONResponse(PAYLOAD)

    return {"avalue": (avalue, counters[0]), "svalue": (svalue, counters[1]),
            "aresponse": (aresponse, counters[2]), "sresponse": (sresponse, counters[3])}


def build_httpcache(url: str) -> dict[str, Any]:
    """The decorated functions: near tier (init's namespace), near off, memory://."""
    from httpcache import HTTPCache

    HTTPCache.init(redis_url=url, namespace="bench_near", tz="UTC", near_cache=True)
    near = HTTPCache.handle()
    off = extra_handle("bench_near_off", url, near_cache=2)  # 2: HTTPCACHE_NEAR_CACHE_OFF
    mem = extra_handle("bench_near_mem", "memory://")
    out: dict[str, Any] = {"_handles": {"near": near, "off": off, "mem": mem}}
    for where, ns in (("near", None), ("off", "bench_near_off"), ("mem", "bench_near_mem")):
        out[where] = decorated(ns)
    return out


async def warm_near(fns: list[Any], handle: Any, timeout: float = 5.0) -> None:
    """Calls each function until the near tier answers it: the first call stores (or reads from
    Redis), and the tier keeps a copy only once its report link is subscribed."""
    for fn in fns:
        deadline = time.monotonic() + timeout
        while True:
            before = near_hits(handle)
            res = fn()
            if asyncio.iscoroutine(res):
                await res
            if near_hits(handle) > before:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{getattr(fn, '__qualname__', fn)}: no near hit within {timeout} s")
            await asyncio.sleep(0.005)


def build_cashews(url: str) -> tuple[Any, Any, bc.Counter]:
    """cashews' documented client-side cache: setup(url, client_side=True)."""
    from cashews import Cache

    c = Cache()
    c.setup(url, client_side=True)
    counter = bc.Counter()

    @c(ttl=TTL, key="bench_near_cashews:value")
    async def value() -> dict:
        counter.n += 1
        return PAYLOAD

    return c, value, counter


async def warm_cashews(c: Any, fn: Any) -> None:
    """Stores the entry, then waits until cashews' invalidation listener is subscribed and its
    local copy is filled (its `get` reads the local Memory only once _listen_started is set)."""
    await fn()
    backend = c._get_backend("bench_near_cashews:value")
    deadline = time.monotonic() + 5.0
    while not backend._listen_started.is_set():
        if time.monotonic() > deadline:
            raise SystemExit("cashews: client-side listener not started within 5 s")
        await asyncio.sleep(0.01)
    for _ in range(3):
        await fn()
    local = await backend._local_cache.get("bench_near_cashews:value")
    if local is None:
        raise SystemExit("cashews: no local copy after the warm-up (not a near hit)")


def redis_parser(client: Any) -> str:
    conns = getattr(client.connection_pool, "_available_connections", [])
    return type(conns[0]._parser).__name__ if conns else "?"


async def main_async(args: argparse.Namespace) -> tuple[str, str]:
    import redis.utils
    from starlette.responses import JSONResponse, Response

    from httpcache import _httpcache
    from httpcache._codec import _copy_response, decode_record

    if not redis.utils.HIREDIS_AVAILABLE:
        raise SystemExit("redis.utils.HIREDIS_AVAILABLE is False: the redis-py baseline must use hiredis (pip install hiredis)")
    raw = bc.build_redispy(args.redis_url)
    await raw["aget"]()
    parser = redis_parser(raw["_clients"][0])
    log(f"[near] redis.utils.HIREDIS_AVAILABLE = {redis.utils.HIREDIS_AVAILABLE}, asyncio parser {parser}")

    ours = build_httpcache(args.redis_url)
    hs = ours["_handles"]
    for where in ("near", "off", "mem"):
        for name, (fn, _) in ours[where].items():
            r = fn()
            got = await r if asyncio.iscoroutine(r) else r
            want_type = dict if "value" in name else Response
            if not isinstance(got, want_type):
                raise SystemExit(f"httpcache {where} {name}: returned {type(got).__name__}")
    await warm_near([f for f, _ in ours["near"].values()], hs["near"])
    for where in ("near", "mem"):  # a hit returns the payload, as a copy of the caller's own
        a, b = ours[where]["svalue"][0](), ours[where]["svalue"][0]()
        aa = await ours[where]["avalue"][0]()
        if a != PAYLOAD or aa != PAYLOAD or a is b or a["tags"] is b["tags"]:
            raise SystemExit(f"httpcache {where}: a hit is not an independent copy of the payload")

    cashews, cashews_fn, cashews_c = build_cashews(args.redis_url)
    await warm_cashews(cashews, cashews_fn)
    if await cashews_fn() != PAYLOAD:
        raise SystemExit("cashews: the hit is not the payload")

    lru_c = bc.Counter()

    @functools.lru_cache(maxsize=None)
    def lru() -> dict:
        lru_c.n += 1
        return PAYLOAD

    lru_r = bc.Counter()

    @functools.lru_cache(maxsize=None)
    def lru_response() -> Any:
        lru_r.n += 1
        return JSONResponse(PAYLOAD)

    lru(), lru_response()

    async def await_floor() -> dict:
        return PAYLOAD

    def wrapper_floor(*args: Any, **kwargs: Any) -> dict:  # the least a Python decorator adds
        return lru(*args, **kwargs)

    decoded = json.loads(PAYLOAD_JSON)
    marshalled = marshal.dumps(decoded)
    copy_json = _httpcache.copy_json
    template = decode_record(hs["near"].cache.get(b"near.sresponse")[0])

    nv, mv = ours["near"], ours["mem"]
    cases = [
        NearCase("redis-py asyncio GET (hiredis parser)", "ahit", raw["aget"]),
        NearCase("httpcache @cache async def, Redis hit, near tier off", "ahit", *ours["off"]["avalue"]),
        NearCase("cashews @cache near hit (client_side=True)", "ahit", cashews_fn, cashews_c),
        NearCase("httpcache @cache async def, near hit", "ahit", *nv["avalue"], handle=hs["near"]),
        NearCase("httpcache @cache def, near hit", "shit", *nv["svalue"], handle=hs["near"]),
        NearCase("httpcache @cache async def, memory:// hit", "ahit", *mv["avalue"]),
        NearCase("httpcache @cache def, memory:// hit", "shit", *mv["svalue"]),
        NearCase("functools.lru_cache hit (the same dict)", "shit", lru, lru_c),
        NearCase("copy: _httpcache.copy_json(value)", "shit", lambda: copy_json(decoded)),
        NearCase("copy: json.loads(stored bytes)", "shit", lambda: json.loads(PAYLOAD_JSON)),
        NearCase("copy: marshal.loads(marshal.dumps(value))", "shit", lambda: marshal.loads(marshalled)),
        NearCase("copy: copy.deepcopy(value)", "shit", lambda: copy.deepcopy(decoded)),
        NearCase("wrapper floor: def wrapper(*args, **kwargs) calling the lru_cache", "shit", wrapper_floor, lru_c),
        NearCase("await floor: await of an async def returning the dict", "ahit", await_floor),
        NearCase("httpcache @cache async def -> Response, near hit", "ahit", *nv["aresponse"], handle=hs["near"]),
        NearCase("httpcache @cache def -> Response, near hit", "shit", *nv["sresponse"], handle=hs["near"]),
        NearCase("httpcache @cache def -> Response, memory:// hit", "shit", *mv["sresponse"]),
        NearCase("functools.lru_cache -> Response (the same object)", "shit", lru_response, lru_r),
        NearCase("part: _codec._copy_response(memoized Response)", "shit", lambda: _copy_response(template)),
        NearCase("part: binding Cache.get(key), near hit", "shit", lambda: hs["near"].cache.get(b"near.svalue"),
                 handle=hs["near"]),
    ]
    peek = getattr(hs["near"].cache, "peek", None)  # the no-I/O read a near hit takes, where the binding has it
    if peek is not None:
        states = {b"near.svalue": (hs["near"].cache.get(b"near.svalue")[0], decoded)}  # a ValueMemo's table
        cases += [
            NearCase("part: binding Cache.peek(key), near hit (bytes)", "shit", lambda: peek(b"near.svalue"),
                     handle=hs["near"]),
            NearCase("part: binding Cache.peek(key, memo), near hit (a copy_json copy)", "shit",
                     lambda: peek(b"near.svalue", states), handle=hs["near"]),
        ]
    res = await measure("near tier", cases, args.reps, args.rep_seconds)
    by = {c.label: c for c in res}

    def us(label: str) -> float:
        return by[label].median_us()

    summary: list[tuple[str, str, bool]] = []

    def ratio(what: str, num: str, den: str, target: float, faster: bool = False) -> None:
        r = us(num) / us(den)
        if faster:  # "at least N x faster": den / num
            r = us(den) / us(num)
            summary.append((what, f"{r:.2f}x faster (>= {target:g}x)", r >= target))
        else:
            summary.append((what, f"{r:.3f}x (<= {target:g}x)", r <= target))

    get = "redis-py asyncio GET (hiredis parser)"
    cashews_l = "cashews @cache near hit (client_side=True)"
    cj = "copy: _httpcache.copy_json(value)"
    ratio("async near hit / redis-py asyncio GET", "httpcache @cache async def, near hit", get, 0.05)
    ratio("def near hit / redis-py asyncio GET", "httpcache @cache def, near hit", get, 0.05)
    ratio("async near hit vs cashews near hit", "httpcache @cache async def, near hit", cashews_l, 4, faster=True)
    ratio("async Response near hit / lru_cache -> Response", "httpcache @cache async def -> Response, near hit",
          "functools.lru_cache -> Response (the same object)", 3)
    ratio("def Response near hit / lru_cache -> Response", "httpcache @cache def -> Response, near hit",
          "functools.lru_cache -> Response (the same object)", 3)
    ratio("def near hit (plain value) / copy_json", "httpcache @cache def, near hit", cj, 1.5)
    ratio("async near hit (plain value) / copy_json", "httpcache @cache async def, near hit", cj, 1.5)
    ratio("def memory:// hit / copy_json", "httpcache @cache def, memory:// hit", cj, 1.5)
    ratio("async memory:// hit / copy_json", "httpcache @cache async def, memory:// hit", cj, 1.5)

    # close the clients (redis.asyncio warns otherwise)
    for client in raw["_clients"]:
        r = client.aclose() if hasattr(client, "aclose") else client.close()
        if asyncio.iscoroutine(r):
            await r
    await cashews.close()

    lines = ["| target (bench_near.py) | measured | |", "|---|---:|---|"]
    lines += [f"| {t} | {v} | {bc.verdict(ok)} |" for t, v, ok in summary]
    lines += ["", "#### Near tier: hits one caller at a time (ratios to redis-py's asyncio GET and to copy_json, same run)",
              "", "| case | us/call (median) | min..max over reps | ratio to baseline | ratio to copy_json "
              "| client CPU us/call | near hits |", "|---|---:|---:|---:|---:|---:|---:|"]
    base, floor = res[0].median_us(), us(cj)
    for c in res:
        mark = " (baseline)" if c is res[0] else ""
        near = f"{100 * min(c.near):.0f}%" if c.near else "-"
        lines.append(f"| {c.label}{mark} | {c.median_us():.3f} | {min(c.samples) / 1000:.3f}..{max(c.samples) / 1000:.3f}"
                     f" | {c.median_us() / base:.4f}x | {c.median_us() / floor:.2f}x | {statistics.median(c.cpu) / 1000:.3f}"
                     f" | {near} |")
    env = environment(args, parser)
    return env, "\n".join(lines) + "\n"


def environment(args: argparse.Namespace, parser: str) -> str:
    from importlib import metadata

    import redis
    import redis.utils

    import httpcache

    return (f"Python {platform.python_version()}, {os.cpu_count()} CPUs, asyncio loop; redis-py {redis.__version__} "
            f"with hiredis {metadata.version('hiredis')} (redis.utils.HIREDIS_AVAILABLE = "
            f"{redis.utils.HIREDIS_AVAILABLE}, asyncio parser {parser}), cashews {metadata.version('cashews')}, "
            f"httpcache {httpcache._httpcache.version_string()}; {args.reps} reps of about {args.rep_seconds} s per "
            f"case, round-robin; payload {len(PAYLOAD_JSON)} bytes of JSON. \"near hits\": the lowest share of a "
            f"near case's timed calls the near tier answered, over the reps.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rep-seconds", type=float, default=0.25)
    args = ap.parse_args()
    env, body = asyncio.run(main_async(args))
    print("### Near tier (bench/python/bench_near.py, issue 17)\n")
    print(env + "\n")
    print(body)


if __name__ == "__main__":
    main()
