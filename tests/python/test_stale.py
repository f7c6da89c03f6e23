"""Stale entries (issue 16): ``@cache(stale_while_revalidate=..., stale_if_error=...)`` and a
handler's own ``Cache-Control: stale-while-revalidate=N, stale-if-error=N`` (RFC 5861), against
real FastAPI apps (TestClient) and plain functions, sync and async, on memory:// and Redis:

- past its TTL, within stale-while-revalidate, callers are answered at once with the stale entry
  while exactly one caller recomputes: in threads, in tasks of one loop, and in processes
  (counted in Redis);
- within stale-if-error, a handler that raises is answered with the stale entry (logged once);
- stale answers tell the truth: ``Age`` is the time since the entry was stored, ``max-age`` its
  lifetime, so Age > max-age; no ``Warning`` header;
- an invalidated entry is never served stale."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
import time

import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient

from httpcache import HTTPCache, cache, invalidate_cache


@pytest.fixture(params=["memory", "redis"])
def url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


def make_app(calls: list[str], fail: list[bool]) -> FastAPI:
    app = FastAPI()

    @app.get("/swr")
    @cache(key="st.swr", ttl_in_seconds=1, stale_while_revalidate=30)
    async def swr():
        calls.append("swr")
        return {"version": len(calls)}

    @app.get("/sie")
    @cache(key="st.sie", ttl_in_seconds=1, stale_if_error=30)
    def sie():
        calls.append("sie")
        if fail[0]:
            raise RuntimeError("the database is down")
        return {"version": len(calls)}

    @app.get("/own")
    @cache(key="st.own", ttl_in_seconds=60)
    async def own(response: Response):
        calls.append("own")
        if fail[0]:
            raise RuntimeError("the database is down")
        response.headers["cache-control"] = "max-age=1, stale-if-error=30"
        return {"version": len(calls)}

    @app.put("/swr")
    @invalidate_cache(key="st.swr")
    async def change():
        return {}

    return app


def test_stale_while_revalidate_answers_at_once_and_says_its_age(redis_url, redis_client, namespace):
    """Redis: another process's refresh is a lock key that process holds."""
    url = redis_url
    HTTPCache.init(url, namespace=namespace)
    calls: list[str] = []
    client = TestClient(make_app(calls, [False]))
    first = client.get("/swr")
    assert first.json() == {"version": 1}
    time.sleep(1.2)
    # the first caller past the TTL refreshes (its own answer is the new value), as one caller must
    refreshed = client.get("/swr")
    assert refreshed.json() == {"version": 2}
    time.sleep(1.2)
    # stale again: while another caller holds the refresh, a caller is answered with the stale one
    lock_key = f"httpcache-refresh!{namespace}:st.swr"  # the core's refresh lock, held "elsewhere"
    assert redis_client.set(lock_key, b"someone-else", nx=True, px=10_000)
    try:
        stale = client.get("/swr")
    finally:
        redis_client.delete(lock_key)
    assert stale.json() == {"version": 2} and calls == ["swr", "swr"]
    age, max_age = int(stale.headers["age"]), int(stale.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert max_age == 1 and age >= 1 and age > max_age - 1
    assert "warning" not in stale.headers


def test_one_refresh_among_threads(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    runs: list[int] = []
    gate = threading.Event()

    @cache(key="st.threads", ttl_in_seconds=1, stale_while_revalidate=30)
    def slow() -> int:
        runs.append(1)
        if len(runs) > 1:
            gate.wait(5)
        return len(runs)

    assert slow() == 1
    time.sleep(1.2)
    results: list[int] = []
    refresher = threading.Thread(target=lambda: results.append(slow()))
    refresher.start()
    while len(runs) < 2:
        time.sleep(0.001)
    others = [slow() for _ in range(20)]  # the refresh is running: all stale, none computing
    gate.set()
    refresher.join()
    assert others == [1] * 20 and results == [2] and len(runs) == 2
    assert slow() == 2


def test_one_refresh_among_tasks(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    runs: list[int] = []

    @cache(key="st.tasks", ttl_in_seconds=1, stale_while_revalidate=30)
    async def slow() -> int:
        runs.append(1)
        if len(runs) > 1:
            await asyncio.sleep(0.3)
        return len(runs)

    async def scenario() -> list[int]:
        assert await slow() == 1
        await asyncio.sleep(1.2)
        return await asyncio.gather(*[slow() for _ in range(20)])

    answers = asyncio.run(scenario())
    assert sorted(answers) == [1] * 19 + [2] and len(runs) == 2


def _process_worker(url: str, namespace: str, go, out) -> None:
    import redis

    HTTPCache.init(url, namespace=namespace)
    counter = redis.Redis.from_url(url)

    @cache(key="st.procs", ttl_in_seconds=1, stale_while_revalidate=30)
    def slow() -> int:
        n = counter.incr(f"{namespace}-runs")
        time.sleep(0.3)
        return int(n)

    out.put("ready")
    go.wait(60)
    out.put([slow() for _ in range(5)])


def test_one_refresh_among_processes(redis_url, redis_client, namespace):
    HTTPCache.init(redis_url, namespace=namespace)

    @cache(key="st.procs", ttl_in_seconds=1, stale_while_revalidate=30)
    def slow() -> int:
        return int(redis_client.incr(f"{namespace}-runs"))

    assert slow() == 1
    time.sleep(1.2)
    # Fresh interpreters (spawn), released together once all are ready: forking this process,
    # whose threads may hold locks, is what the cache's users must not do either.
    ctx = multiprocessing.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_process_worker, args=(redis_url, namespace, go, out)) for _ in range(4)]
    for p in procs:
        p.start()
    assert [out.get(timeout=120) for _ in procs] == ["ready"] * 4
    go.set()
    answers = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    assert int(redis_client.get(f"{namespace}-runs")) == 2  # exactly one refresh across 4 processes
    flat = sorted(a for batch in answers for a in batch)
    assert set(flat) <= {1, 2} and flat.count(2) >= 1


def test_stale_if_error_answers_a_failing_handler(url, namespace, caplog):
    HTTPCache.init(url, namespace=namespace)
    calls: list[str] = []
    fail = [False]
    client = TestClient(make_app(calls, fail), raise_server_exceptions=True)
    assert client.get("/sie").json() == {"version": 1}
    assert client.get("/own").json() == {"version": 2}
    time.sleep(1.2)
    fail[0] = True
    with caplog.at_level(logging.WARNING, logger="httpcache"):
        for path, version in (("/sie", 1), ("/own", 2)):
            r = client.get(path)
            assert r.status_code == 200 and r.json() == {"version": version}
            assert int(r.headers["age"]) >= 1 and "warning" not in r.headers
    assert "stale-if-error" in caplog.text and "the database is down" in caplog.text
    fail[0] = False
    assert client.get("/sie").json()["version"] == len(calls)  # recovered: refreshed and stored


def test_an_invalidated_entry_is_never_served_stale(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    calls: list[str] = []
    client = TestClient(make_app(calls, [False]))
    assert client.get("/swr").json() == {"version": 1}
    time.sleep(1.2)
    client.put("/swr")
    assert client.get("/swr").json() == {"version": 2}  # computed, not the stale version 1


def test_bad_windows_are_refused():
    with pytest.raises(TypeError):
        cache(key="k", stale_while_revalidate=1.5)
    with pytest.raises(ValueError):
        cache(key="k", stale_if_error=-1)


def test_attach_serves_stale_early_and_hands_the_refresh_to_the_route(redis_url, redis_client, namespace):
    """HTTPCache.attach(): a stale entry within stale-while-revalidate is answered before routing
    while another process refreshes; when this request should refresh, its route does."""
    HTTPCache.init(redis_url, namespace=namespace)
    calls: list[str] = []
    app = HTTPCache.attach(make_app(calls, [False]))
    client = TestClient(app)
    assert client.get("/swr").json() == {"version": 1}
    assert client.get("/swr").json() == {"version": 1}  # learned and answered early
    time.sleep(1.2)
    lock_key = f"httpcache-refresh!{namespace}:st.swr"
    assert redis_client.set(lock_key, b"someone-else", nx=True, px=10_000)
    try:
        stale = client.get("/swr")
    finally:
        redis_client.delete(lock_key)
    assert stale.json() == {"version": 1} and calls == ["swr"] and int(stale.headers["age"]) >= 1
    assert client.get("/swr").json() == {"version": 2}  # this request refreshed, through its route
    assert client.get("/swr").json() == {"version": 2} and calls == ["swr", "swr"]
    assert redis_client.get(lock_key) is None  # the refresh lock was given back


def test_an_async_refresh_never_stores_across_an_invalidation(url, namespace):
    """Found by review: a task refreshing a stale entry, the key invalidated, another task of the
    same loop missing (a new lease) and failing: the refresh's value, computed before the
    invalidation, is never stored under the other task's lease."""
    HTTPCache.init(url, namespace=namespace)
    runs: list[int] = []
    gates = {"refresh": asyncio.Event(), "miss": asyncio.Event()}

    @cache(key="st.fence", ttl_in_seconds=1, stale_while_revalidate=30)
    async def f() -> str:
        runs.append(1)
        if len(runs) == 2:
            await gates["refresh"].wait()
            return "computed before the invalidation"
        if len(runs) == 3:
            await gates["miss"].wait()
            raise RuntimeError("the miss fails")
        return f"v{len(runs)}"

    async def scenario() -> tuple[str, str]:
        assert await f() == "v1"
        await asyncio.sleep(1.2)
        refresh = asyncio.create_task(f())
        while len(runs) < 2:
            await asyncio.sleep(0.005)
        HTTPCache.handle().cache.invalidate([b"st.fence"])
        miss = asyncio.create_task(f())
        while len(runs) < 3:
            await asyncio.sleep(0.005)
        gates["refresh"].set()
        refreshed = await refresh
        gates["miss"].set()
        with pytest.raises(RuntimeError):
            await miss
        return refreshed, await f()

    refreshed, later = asyncio.run(scenario())
    assert refreshed == "computed before the invalidation"  # its own caller gets it
    assert later == "v4"  # never served after the invalidation


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_refresh_naming_no_tags_does_not_drop_the_entrys_tags(kind, redis_url):
    """Found by review: a caller naming no tags refreshing a tagged stale entry would store it
    without the tags, so a tag invalidation during its computation would not reach it."""
    from httpcache import _httpcache

    c = _httpcache.Cache("memory://" if kind == "memory" else redis_url, namespace=f"tl{time.time_ns()}")
    policy = _httpcache.Policy.seconds(1)
    assert c.get_or_compute(b"k", policy, lambda: b"v1", [b"user"], (30000, 0))[0] == b"v1"
    time.sleep(1.2)

    def compute() -> bytes:
        c.invalidate_tags([b"user"])
        return b"computed before the tag's invalidation"

    value, ttl_ms, outcome, _ = c.get_or_compute(b"k", policy, compute, [], (30000, 0))
    assert value == b"computed before the tag's invalidation" and outcome != _httpcache.OUTCOME_STORED
    assert c.get_or_compute(b"k", policy, lambda: b"v3", [], (30000, 0))[0] == b"v3"
    c.close()


def test_a_huge_handler_window_is_clamped_not_an_error(namespace):
    """Found by review: a handler's stale-while-revalidate=99999999 made a def route fail."""
    HTTPCache.init("memory://", namespace=namespace)
    app = FastAPI()

    @app.get("/sync")
    @cache(key="st.huge", ttl_in_seconds=10)
    def huge(response: Response):
        response.headers["cache-control"] = "max-age=10, stale-while-revalidate=99999999"
        return {"ok": 1}

    client = TestClient(app)
    assert client.get("/sync").status_code == 200
    assert client.get("/sync").headers.get("cache-hit") == "true"
