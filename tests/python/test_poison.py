# SPDX-License-Identifier: MIT
"""Never poison: a value under our key that we did not write (another program's bytes, a record
with a bad magic, a Redis value of another type written with redis-py) is a miss for plain
functions and FastAPI responses alike, sync and async: the call computes, returns the fresh
value, overwrites the foreign one, and never raises. A value over max_value_bytes is returned
uncached and counted."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient

from httpcache import HTTPCache, _httpcache, cache
from httpcache._codec import MAGIC

FOREIGN_BYTES = {
    "garbage": b"\xff\xfe\x00\x01 not json",
    "empty": b"",
    "truncated-json": b'{"n": [1, ',
    "json-then-garbage": b'{"n": 1} x',
    "two-json-texts": b'{"n":1}{"n":2}',
    "latin-1-json": b'"caf\xe9"',
    "bad-magic": b"HTTPCACHE-RESPONSE 9\n200 0\n\nbody",
    "record-garbled": MAGIC + b"200 3\ntext/plain\nx-a: 1\n",
    "record-bad-status": MAGIC + b"2000 0\n\nbody",
}
FOREIGN_TYPES = {
    "list": lambda c, k: c.rpush(k, "a", "b"),
    "hash": lambda c, k: c.hset(k, mapping={"f": "v"}),
    "set": lambda c, k: c.sadd(k, "m"),
    "zset": lambda c, k: c.zadd(k, {"m": 1.0}),
}


def writer(kind: str, client, namespace: str):
    """write(key): puts the foreign value under namespace:key, with redis-py (for memory://,
    where only this process can write, through the C library)."""

    def write(key: str) -> None:
        full = f"{namespace}:{key}"
        if kind in FOREIGN_TYPES:
            client.delete(full)
            FOREIGN_TYPES[kind](client, full)
        elif client is not None:
            client.set(full, FOREIGN_BYTES[kind])
        else:
            HTTPCache.handle(namespace).cache.set(key.encode(), FOREIGN_BYTES[kind], _httpcache.Policy.seconds(60))

    return write


def stored(client, namespace: str, key: str) -> bytes:
    """What is under namespace:key now, read by the library and (on Redis) by redis-py."""
    value, ttl_ms = HTTPCache.handle(namespace).cache.get(key.encode())
    assert 0 < ttl_ms <= 60_000
    if client is not None:
        assert client.type(f"{namespace}:{key}") == b"string"
        assert client.get(f"{namespace}:{key}") == value
        assert 0 < client.pttl(f"{namespace}:{key}") <= 60_000  # ours has a TTL; the foreign one had none
    return value


def check_plain_functions(write, client, namespace: str) -> None:
    calls = []

    @cache(key="plain", ttl_in_seconds=60)
    def f():
        calls.append("sync")
        return {"n": 1}

    @cache(key="aplain", ttl_in_seconds=60)
    async def g():
        calls.append("async")
        return {"n": 2}

    write("plain")
    write("aplain")
    assert f() == {"n": 1}  # a miss: computed, never the foreign value, never an exception
    assert asyncio.run(g()) == {"n": 2}
    assert calls == ["sync", "async"]
    assert stored(client, namespace, "plain") == b'{"n":1}'  # overwritten
    assert stored(client, namespace, "aplain") == b'{"n":2}'
    assert f() == {"n": 1} and asyncio.run(g()) == {"n": 2}
    assert calls == ["sync", "async"]  # and served from the cache from then on


def check_responses(write, client, namespace: str) -> None:
    app = FastAPI()
    calls = []

    @app.get("/async")
    @cache(key="resp", ttl_in_seconds=60)
    async def async_handler():
        calls.append("async")
        return JSONResponse({"page": "async"})

    @app.get("/sync")
    @cache(key="sresp", ttl_in_seconds=60)
    def sync_handler():
        calls.append("sync")
        return PlainTextResponse("sync page")

    write("resp")
    write("sresp")
    with TestClient(app) as client_:
        first = client_.get("/async"), client_.get("/sync")
        assert first[0].status_code == 200 and first[0].json() == {"page": "async"}
        assert first[1].status_code == 200 and first[1].text == "sync page"
        assert all("cache-hit" not in r.headers for r in first)
        assert calls == ["async", "sync"]
        assert stored(client, namespace, "resp").startswith(b"HTTPCACHE-RESPONSE 2\n200 ")
        assert stored(client, namespace, "sresp").startswith(b"HTTPCACHE-RESPONSE 2\n200 ")
        second = client_.get("/async"), client_.get("/sync")
        assert [r.headers.get("cache-hit") for r in second] == ["true", "true"]
        assert second[0].json() == {"page": "async"} and second[1].text == "sync page"
        assert calls == ["async", "sync"]


@pytest.mark.parametrize("kind", FOREIGN_BYTES)
def test_foreign_bytes_are_a_miss_and_overwritten(store, backend_client, kind, warnings_log):
    write = writer(kind, backend_client, store.namespace)
    check_plain_functions(write, backend_client, store.namespace)
    check_responses(write, backend_client, store.namespace)
    assert warnings_log() == []  # an ordinary miss: nothing to warn about


@pytest.mark.parametrize("kind", FOREIGN_TYPES)
def test_foreign_redis_types_are_a_miss_and_overwritten(redis_backend, redis_backend_client, namespace, kind, request):
    # GET on a list answers WRONGTYPE: a miss, not a backend failure (no breaker, no error counted).
    HTTPCache.init(redis_url=redis_backend, namespace=namespace)
    request.addfinalizer(HTTPCache.close)
    write = writer(kind, redis_backend_client, namespace)
    check_plain_functions(write, redis_backend_client, namespace)
    check_responses(write, redis_backend_client, namespace)
    st = HTTPCache.stats()
    assert st["errors"] == 0 and st["breaker_trips"] == 0 and not st["breaker_open"]


def test_oversized_responses_are_served_uncached_and_counted(backend, backend_client, namespace, request, warnings_log):
    HTTPCache.init(redis_url=backend, namespace=namespace, max_value_bytes=200)
    request.addfinalizer(HTTPCache.close)
    app = FastAPI()
    calls = []

    @app.get("/async")
    @cache(key="big", ttl_in_seconds=60)
    async def async_big():
        calls.append(1)
        return PlainTextResponse("a" * 1000)

    @app.get("/sync")
    @cache(key="sbig", ttl_in_seconds=60)
    def sync_big():
        calls.append(1)
        return PlainTextResponse("s" * 1000)

    with TestClient(app) as c:
        for _ in range(2):
            a, s = c.get("/async"), c.get("/sync")
            assert a.status_code == s.status_code == 200
            assert a.text == "a" * 1000 and s.text == "s" * 1000
            assert "cache-hit" not in a.headers and "cache-hit" not in s.headers
    assert len(calls) == 4
    for key in ("big", "sbig"):
        with pytest.raises(_httpcache.CacheMiss):
            HTTPCache.handle().cache.get(key.encode())
        if backend_client is not None:
            assert backend_client.exists(f"{namespace}:{key}") == 0
    st = HTTPCache.stats()
    assert st["oversized"] == 4 and st["uncached"] == 4 and st["stores"] == 0
    assert len(warnings_log()) == 4 and all("max_value_bytes" in w.getMessage() for w in warnings_log())
