# SPDX-License-Identifier: MIT
"""Cached hits of a FastAPI route returning a pydantic model (issue 15): httpcache vs
fastapi-cache2 and cashews, and vs the same data as a JSONResponse route cached by httpcache.

    python bench_models.py --redis-url redis://127.0.0.1:PORT [--reps 5] [--rep-seconds 0.25]

What is measured: the time per request of `GET /page`, one request at a time, served in-process
by calling each app's ASGI callable directly (`await app(scope, receive, send)` with a minimal
HTTP scope, a receive that gives an empty body and a send that keeps the status), the same
harness for every case. Direct calls rather than httpx.ASGITransport: the transport builds an
httpx Request and Response around every call, which on this machine took the uncached route from
about 100 to 330 us per request: more than a hit itself costs, the same for every case, so it
would only dilute the differences. No server or socket either (bench_http.py measures those
under wrk). So a number here is the app's own cost per request (FastAPI, the cache
library, its Redis round trip), and its client CPU column is nearly all of this process's work.

Cases (apps/models_apps.py has the routes; all on the one redis-server of --redis-url):
  httpcache  `@app.get("/page", response_model=Page)` + `@cache(key=..., ttl_in_seconds=600)`
             returning a Page (UUID, datetimes, Decimals, nested models: about 1 KB of JSON),
             with HTTPCache.attach(app) (hits answered before routing, as examples/app.py) and
             with the decorator only (every hit routed by FastAPI, as with the peers); the same
             data returned as a JSONResponse by a route cached the same two ways (the reference:
             issue 15 asks for a model hit within 1.2x of the JSONResponse hit; the JSONResponse
             route with HTTPCache.attach is the baseline of the ratio column); the route uncached (what a
             cache has to beat).
  peers      the same model route cached by fastapi-cache2 (RedisBackend over redis.asyncio with
             hiredis, its default JsonCoder) and by cashews (@cache(ttl=...), redis backend).
The route body only builds the model (no database, no I/O), so the uncached route is the least
a request of this route can cost through FastAPI: a hit slower than it (the "ratio to no cache"
column above 1) still pays off only for a handler doing more than that, as real ones do.

Method, as bench_calls.py: each case is warmed up (the first request stores the entry), then
timed with time.perf_counter_ns over n requests (n calibrated once per case so that a
repetition takes about --rep-seconds), --reps times; the cases run round-robin within each
repetition, so drift of a noisy machine hits them alike; the median per request is reported,
with its ratio to the baseline measured in the same run.

Checks: before timing, every case's responses are 200 with JSON bodies equal, once parsed, to
Page's own JSON (bytes may differ between libraries); during timing, each route counts the runs
of its body. A cached case whose body ran during its timed requests is reported NOT CACHED (its
time is then that of a miss, not a hit) instead of stopping the run: until httpcache caches
models, its model rows are expected to say so.
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
from importlib import metadata
from typing import Any

from apps import models_apps
from apps.models_apps import Counter, make_page

perf_ns = time.perf_counter_ns
log = functools.partial(print, file=sys.stderr, flush=True)

# The request every case gets. Copied per request: Starlette and FastAPI add routing results to
# the scope they are given.
_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/page",
    "raw_path": b"/page",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench.local"), (b"accept", b"application/json"), (b"user-agent", b"bench_models")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}
_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def _receive() -> dict:
    # A GET without body parameters never reads its body; the checks count calls to be sure.
    return _REQUEST


async def request(app: Any) -> int:
    """One request, as timed: the response's status."""
    status = 0

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(_SCOPE), _receive, send)
    return status


async def request_captured(app: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes, int]:
    """One request for the checks: (status, headers, body, calls to receive)."""
    got: dict[str, Any] = {"status": 0, "headers": [], "body": [], "receives": 0}

    async def receive() -> dict:
        got["receives"] += 1
        return _REQUEST

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            got["status"] = message["status"]
            got["headers"] = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            got["body"].append(message.get("body", b""))

    await app(dict(_SCOPE), receive, send)
    return got["status"], got["headers"], b"".join(got["body"]), got["receives"]


class Conditional:
    """The app asked with If-None-Match: <the ETag its response carries> (set by check()): its
    answer is the bodiless 304 of issue 16, timed like the hits. Answers 200 when it is a 304.
    With match=False it asks with an ETag that never matches: a full hit that pays the same
    extra header and this wrapper, the fair reference for the 304."""

    def __init__(self, app: Any, match: bool = True) -> None:
        self.app = app
        self.match = match
        self.etag: bytes | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self.etag is None:  # the check's first request: learn the ETag
            async def learn(message: dict) -> None:
                if message["type"] == "http.response.start":
                    self.etag = dict(message.get("headers", [])).get(b"etag") if self.match else b'"no-match"'
                await send(message)

            await self.app(scope, receive, learn)
            return
        scope = dict(scope, headers=scope["headers"] + [(b"if-none-match", self.etag)])

        async def as_ok(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] == 304:
                message = dict(message, status=200)
            await send(message)

        await self.app(scope, receive, as_ok)


class Case:
    def __init__(self, label: str, app: Any, runs: Counter, cached: bool, not_modified: bool = False) -> None:
        self.not_modified = not_modified  # answered 304 (no body) once the check learned the ETag
        self.label = label
        self.app = app
        self.runs = runs
        self.cached = cached  # False: the uncached route, whose body runs on every request
        self.n = 0
        self.samples: list[float] = []  # ns per request, one per repetition
        self.cpu: list[float] = []  # this process's CPU ns per request, one per repetition
        self.requests = 0  # timed requests, all repetitions
        self.body_runs = 0  # runs of the route's body during them

    @property
    def hit(self) -> bool:
        return self.cached and self.body_runs == 0

    def median_us(self) -> float:
        return statistics.median(self.samples) / 1000.0

    def status(self) -> str:
        if not self.cached:
            return "uncached (by design)"
        if self.hit:
            return "hit"
        return f"**NOT CACHED** (body ran {self.body_runs} times in {self.requests} requests)"


async def run_loop(app: Any, n: int) -> tuple[int, int]:
    """(elapsed ns, responses that were not 200)."""
    bad = 0
    t0 = perf_ns()
    for _ in range(n):
        if await request(app) != 200:
            bad += 1
    return perf_ns() - t0, bad


async def check(cases: list[Case]) -> dict[str, Any]:
    """Every case answers 200 with Page's JSON (compared parsed); logs what each sends. The first
    request of a cached case stores its entry. Returns facts for the report."""
    expected = make_page().model_dump(mode="json")
    sizes = {}
    for c in cases:
        before = c.runs.n
        bodies = []
        for i in range(3):
            try:
                status, headers, body, receives = await request_captured(c.app)
            except Exception as e:  # noqa: BLE001 - which case failed, then stop
                raise SystemExit(f"{c.label}: request {i + 1} raised {type(e).__name__}: {e}") from e
            if status != 200:
                raise SystemExit(f"{c.label}: request {i + 1} answered {status}: {body[:200]!r}")
            if receives > 1:
                raise SystemExit(f"{c.label}: the app called receive {receives} times for a GET")
            try:
                parsed = json.loads(body) if body or not c.not_modified else None
            except ValueError as e:
                raise SystemExit(f"{c.label}: request {i + 1}: the body is not JSON ({e}): {body[:200]!r}") from e
            if c.not_modified and i > 0:
                if body:
                    raise SystemExit(f"{c.label}: request {i + 1}: a 304 with a body: {body[:200]!r}")
                continue
            if parsed != expected:
                raise SystemExit(f"{c.label}: request {i + 1}: the body differs from Page's JSON:\n  got      "
                                 f"{parsed!r}\n  expected {expected!r}")
            bodies.append(body)
        ran = c.runs.n - before
        sizes[c.label] = len(bodies[-1])
        shown = {n.decode("latin-1"): v.decode("latin-1") for n, v in headers
                 if n.lower() in (b"content-type", b"cache-control", b"etag", b"x-fastapi-cache", b"cache-hit", b"age")}
        same = "identical bytes" if len(set(bodies)) == 1 else "equal JSON, different bytes between requests"
        log(f"    {c.label}: 3 requests, body ran {ran}x, {len(bodies[-1])} B ({same}); headers {shown}")
        if c.cached and ran != 1:
            log(f"    {c.label}: NOT CACHED: its body ran {ran} times in 3 requests (1 expected: the first stores)")
    return {"sizes": sizes}


async def measure(cases: list[Case], reps: int, rep_seconds: float) -> None:
    """Calibrates n per case, then runs `reps` round-robin repetitions."""
    for c in cases:
        await run_loop(c.app, 50)  # warm-up
        elapsed, _ = await run_loop(c.app, 200)
        c.n = min(max(int(rep_seconds * 1e9 / max(elapsed / 200, 1.0)), 200), 1_000_000)
    for _ in range(reps):
        for c in cases:
            before = c.runs.n
            gc.collect()
            cpu0 = time.process_time_ns()
            elapsed, bad = await run_loop(c.app, c.n)
            c.cpu.append((time.process_time_ns() - cpu0) / c.n)
            c.samples.append(elapsed / c.n)
            if bad:
                raise SystemExit(f"{c.label}: {bad} of {c.n} timed responses were not 200")
            c.requests += c.n
            c.body_runs += c.runs.n - before
    for c in cases:
        reps_us = ", ".join(f"{s / 1000:.1f}" for s in c.samples)
        log(f"    {c.label:58s} {c.median_us():8.1f} us/request  (n={c.n}, reps {reps_us}; {c.status()})")


class _OncePerMessage(logging.Handler):
    """Shows each distinct log message of the libraries once on stderr and counts the repeats:
    today httpcache logs "not JSON" at every request of the model route, which would flood the
    output (and the count says it happened per request)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: dict[tuple[str, str], list] = {}  # (logger, message template) -> [count, first text]

    def emit(self, record: logging.LogRecord) -> None:
        key = (record.name, str(record.msg))
        seen = self.seen.get(key)
        if seen is None:
            text = record.getMessage()
            self.seen[key] = [1, text]
            log(f"    [log {record.name} {record.levelname}] {text}")
        else:
            seen[0] += 1

    def summary(self) -> None:
        for (name, _), (n, text) in self.seen.items():
            if n > 1:
                log(f"[models] {name} logged {n} times: {text}")


def ratio_row(what: str, num: Case, den: Case, target: float | None) -> str:
    if not num.hit or not den.hit:
        missing = " and ".join(c.label for c in (num, den) if not c.hit)
        return f"| {what} | n/a | {missing}: NOT CACHED |"
    r = num.median_us() / den.median_us()
    if target is None:
        return f"| {what} | {r:.2f}x | |"
    return f"| {what} | {r:.2f}x (<= {target}) | {'met' if r <= target else '**missed**'} |"


def table(cases: list[Case], baseline: Case, floor: Case) -> str:
    lines = ["| case | us/request (median) | min..max over reps | ratio to httpcache JSONResponse hit "
             "| ratio to no cache | client CPU us/request | cache |",
             "|---|---:|---:|---:|---:|---:|---|"]
    base, none = baseline.median_us(), floor.median_us()
    for c in cases:
        us = c.median_us()
        lo, hi = min(c.samples) / 1000, max(c.samples) / 1000
        mark = " (baseline)" if c is baseline else ""
        cpu = statistics.median(c.cpu) / 1000.0
        lines.append(f"| {c.label}{mark} | {us:.1f} | {lo:.1f}..{hi:.1f} | {us / base:.2f}x | {us / none:.2f}x "
                     f"| {cpu:.1f} | {c.status()} |")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    url = args.redis_url
    # A prefix of this run in every key and namespace: an entry left by an earlier run (another
    # version of a library, another encoding) is never served as this run's hit.
    run = f"bench_models_{os.getpid()}_{int(time.time())}"

    models_apps.httpcache_init(url, run)
    attach_model = Case("httpcache model route, HTTPCache.attach", *models_apps.httpcache_model(True, "bench.model"), True)
    attach_json = Case("httpcache JSONResponse route, HTTPCache.attach", *models_apps.httpcache_json(True, "bench.json"), True)
    routed_model = Case("httpcache model route, decorator only", *models_apps.httpcache_model(False, "bench.model.routed"), True)
    routed_json = Case("httpcache JSONResponse route, decorator only", *models_apps.httpcache_json(False, "bench.json.routed"), True)
    fc_app, fc_runs, fc_client = models_apps.fastapi_cache_model(url, f"{run}_fastapi_cache")
    fc = Case("fastapi-cache2 model route (RedisBackend)", fc_app, fc_runs, True)
    cw_app, cw_runs, cw_cache = models_apps.cashews_model(url, f"{run}_cashews")
    cw = Case("cashews model route (redis)", cw_app, cw_runs, True)
    uncached = Case("model route, no cache", *models_apps.uncached_model(), False)
    attach_304_app, attach_304_runs = models_apps.httpcache_model(True, "bench.model.304")
    attach_304 = Case("httpcache model route, 304 (If-None-Match), HTTPCache.attach", Conditional(attach_304_app),
                      attach_304_runs, True, not_modified=True)
    routed_304_app, routed_304_runs = models_apps.httpcache_model(False, "bench.model.routed.304")
    routed_304 = Case("httpcache model route, 304 (If-None-Match), decorator only", Conditional(routed_304_app),
                      routed_304_runs, True, not_modified=True)
    attach_inm_app, attach_inm_runs = models_apps.httpcache_model(True, "bench.model.inm")
    attach_inm = Case("httpcache model route, hit asked with a non-matching If-None-Match, HTTPCache.attach",
                      Conditional(attach_inm_app, match=False), attach_inm_runs, True)
    routed_inm_app, routed_inm_runs = models_apps.httpcache_model(False, "bench.model.routed.inm")
    routed_inm = Case("httpcache model route, hit asked with a non-matching If-None-Match, decorator only",
                      Conditional(routed_inm_app, match=False), routed_inm_runs, True)
    cases = [attach_json, attach_model, routed_json, routed_model, attach_inm, attach_304, routed_inm, routed_304,
             fc, cw, uncached]

    log("[models] checks (3 requests per case; the first stores)")
    facts = await check(cases)
    log("[models] timing")
    await measure(cases, args.reps, args.rep_seconds)

    summary = ["| comparison of hits | ratio of times | |", "|---|---:|---|",
               ratio_row("httpcache, HTTPCache.attach: model route hit / JSONResponse route hit (issue 15)",
                         attach_model, attach_json, 1.2),
               ratio_row("httpcache, decorator only: model route hit / JSONResponse route hit (issue 15)",
                         routed_model, routed_json, 1.2),
               ratio_row("httpcache, HTTPCache.attach: 304 answer / hit asked the same way (issue 16)", attach_304,
                         attach_inm, 1.0),
               ratio_row("httpcache, decorator only: 304 answer / hit asked the same way (issue 16)", routed_304,
                         routed_inm, 1.0),
               ratio_row("httpcache, HTTPCache.attach: 304 answer / plain model route hit", attach_304, attach_model, None),
               ratio_row("httpcache, decorator only: 304 answer / plain model route hit", routed_304, routed_model, None),
               ratio_row("model route hit: httpcache (attach) / fastapi-cache2", attach_model, fc, None),
               ratio_row("model route hit: httpcache (attach) / cashews", attach_model, cw, None),
               ratio_row("model route hit: httpcache (decorator only) / fastapi-cache2", routed_model, fc, None),
               ratio_row("model route hit: httpcache (decorator only) / cashews", routed_model, cw, None)]

    # Close what the peers opened (redis.asyncio warns otherwise), and drop this run's keys.
    from httpcache import HTTPCache
    from redis import asyncio as aioredis

    await fc_client.aclose()
    await cw_cache.close()
    HTTPCache.close()
    client = aioredis.from_url(url)
    keys = [k async for k in client.scan_iter(match=f"*{run}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    facts["keys"] = len(keys)
    log(f"[models] deleted this run's {len(keys)} keys")

    body = table(cases, attach_json, uncached) + "\n" + "\n".join(summary) + "\n"
    return body, facts


def environment(args: argparse.Namespace, facts: dict[str, Any]) -> str:
    import redis
    from redis.utils import HIREDIS_AVAILABLE

    import httpcache

    def v(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"

    loop = "uvloop" if args.loop == "uvloop" else "asyncio (default loop)"
    size = max(facts["sizes"].values())
    return (f"Python {platform.python_version()}, {os.cpu_count()} CPUs, loop {loop}; FastAPI {v('fastapi')}, "
            f"pydantic {v('pydantic')}, httpcache {httpcache._httpcache.version_string()}, fastapi-cache2 "
            f"{v('fastapi-cache2')}, cashews {v('cashews')}, redis-py {redis.__version__} "
            f"({'hiredis' if HIREDIS_AVAILABLE else 'no hiredis'}); {args.reps} reps of about {args.rep_seconds} s "
            f"per case; one request at a time, the ASGI app called directly (no server); body {size} bytes of JSON. "
            f"Baseline: the httpcache JSONResponse route's hit with HTTPCache.attach.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rep-seconds", type=float, default=0.25)
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = ap.parse_args()
    handler = _OncePerMessage()
    for name in ("httpcache", "fastapi_cache", "cashews"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).propagate = False
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run
    body, facts = runner(main_async(args))
    handler.summary()
    print("### FastAPI routes returning a pydantic model, cached hits (bench/python/bench_models.py)\n")
    print(environment(args, facts) + "\n")
    print(body)


if __name__ == "__main__":
    main()
