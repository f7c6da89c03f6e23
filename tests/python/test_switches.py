"""Switches over caching (issue 15, first part): ``condition=`` skips storing by result, and
``HTTPCache.init(enabled=False)`` or ``HTTPCACHE_DISABLED=1`` turns caching off."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from httpcache import HTTPCache, cache, invalidate_cache


@pytest.fixture(params=["memory", "redis"])
def url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


def test_condition_skips_storing_by_result(url, namespace, redis_client, warnings_log):
    HTTPCache.init(redis_url=url, namespace=namespace)
    calls = []

    @cache(key="user.{}", obj="uid", obj_attr="real", ttl_in_seconds=60, condition=lambda r: r["found"])
    def lookup(uid: int) -> dict:
        calls.append(uid)
        return {"found": uid > 0, "uid": uid}

    assert lookup(-1) == {"found": False, "uid": -1} and lookup(-1) == {"found": False, "uid": -1}
    assert lookup(2) == {"found": True, "uid": 2} and lookup(2) == {"found": True, "uid": 2}
    assert calls == [-1, -1, 2]  # the refused result ran every time; the accepted one is a hit
    if url != "memory://":
        assert redis_client.get(f"{namespace}:user.-1") is None
        assert redis_client.get(f"{namespace}:user.2") is not None
    assert not warnings_log()  # a refusal by condition is not a warning


def test_condition_on_async_routes(url, namespace):
    HTTPCache.init(redis_url=url, namespace=namespace)
    app = FastAPI()
    calls = []

    @app.get("/items")
    @cache(key="items", ttl_in_seconds=60, condition=lambda r: bool(r["items"]))
    async def items():
        calls.append(1)
        return {"items": [] if len(calls) < 2 else [1, 2]}

    with TestClient(app) as client:
        bodies = [client.get("/items").json() for _ in range(4)]
    assert bodies == [{"items": []}, {"items": [1, 2]}, {"items": [1, 2]}, {"items": [1, 2]}]
    assert len(calls) == 2  # empty: not stored; the first non-empty one is, and served after


def test_condition_must_be_callable():
    with pytest.raises(TypeError, match="condition must be callable"):
        cache(key="k", condition=True)


def test_disabled_runs_every_call_and_touches_no_store(url, namespace, redis_client):
    HTTPCache.init(redis_url=url, namespace=namespace, enabled=False)
    calls = []

    @cache(key="k", ttl_in_seconds=60)
    def f():
        calls.append("f")
        return {"v": len(calls)}

    @cache(key="a", ttl_in_seconds=60)
    async def g():
        calls.append("g")
        return {"v": len(calls)}

    @invalidate_cache(key="k")
    def clear():
        calls.append("clear")

    assert f() == {"v": 1} and f() == {"v": 2}
    assert asyncio.run(g()) == {"v": 3} and asyncio.run(g()) == {"v": 4}
    clear()
    assert calls == ["f", "f", "g", "g", "clear"]
    stats = HTTPCache.stats()
    assert stats["hits"] == stats["misses"] == stats["stores"] == 0, stats
    if url != "memory://":
        assert redis_client.get(f"{namespace}:k") is None and redis_client.get(f"{namespace}:a") is None
    HTTPCache.init(redis_url=url, namespace=namespace)  # enabled again: cached from here on
    assert f() == {"v": 6} and f() == {"v": 6}


def test_environment_turns_caching_off(monkeypatch, namespace):
    monkeypatch.setenv("HTTPCACHE_DISABLED", "1")
    HTTPCache.init(redis_url="memory://", namespace=namespace, enabled=True)  # the environment wins
    assert HTTPCache.enabled is False
    calls = []

    @cache(key="k", ttl_in_seconds=60)
    def f():
        calls.append(1)
        return {}

    f()
    f()
    assert len(calls) == 2
    monkeypatch.setenv("HTTPCACHE_DISABLED", "0")
    HTTPCache.init(redis_url="memory://", namespace=namespace)
    assert HTTPCache.enabled is True


def test_disabled_also_stops_early_hits_of_an_attached_app(url, namespace):
    """HTTPCache.attach() answers learned routes before routing: turned off, it must not."""
    HTTPCache.init(redis_url=url, namespace=namespace)
    app = FastAPI()
    calls = []

    @app.get("/home")
    @cache(key="sw.home", ttl_in_seconds=60)
    async def home():
        calls.append(1)
        return {"n": len(calls)}

    HTTPCache.attach(app)
    with TestClient(app) as client:
        assert client.get("/home").json() == {"n": 1}
        assert client.get("/home").headers["cache-hit"] == "true"  # learned: answered early
        HTTPCache.init(redis_url=url, namespace=namespace, enabled=False)
        assert [client.get("/home").json()["n"] for _ in range(2)] == [2, 3]
