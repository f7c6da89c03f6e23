# SPDX-License-Identifier: MIT
"""Migrating from the seed (authx_extra.cache): its document's examples run unchanged but for the
import line (seed_app.py) against a real redis-server, with the keys, TTLs and headers the seed
gave; and the rest of its public surface: HTTPCache.init's positional order (redis_url, tz,
namespace), HTTPCache.redis_client and HTTPCacheBackend.

Entries are read with redis-py straight from the servers, never through the code under test."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import logging
import socket
import sys
import time
from zoneinfo import ZoneInfo

import pytest
import redis as redis_py
from redis.cluster import RedisCluster
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient
from pytz import timezone

import httpcache
from httpcache import HTTPCache, HTTPCacheBackend, cache, seconds_until_end_of_day, seconds_until_end_of_week

CASABLANCA = "Africa/Casablanca"


def _seconds_until(zone: str, days_ahead) -> float:
    """Seconds from now to 00:00 local in `zone`, `days_ahead(today)` days after today; computed
    with zoneinfo, apart from the core's ICU."""
    now = dt.datetime.now(ZoneInfo(zone))
    day = now.date() + dt.timedelta(days=days_ahead(now))
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(zone))
    return midnight.timestamp() - time.time()


def end_of_day(zone: str) -> float:
    return _seconds_until(zone, lambda now: 1)


def end_of_week(zone: str) -> float:
    return _seconds_until(zone, lambda now: 7 - now.weekday())  # the next Monday


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the seed document's app and plain function (seed_app.py) ----


def _clear(client) -> None:
    for key in client.scan_iter("test_namespace:*"):
        client.delete(key)


@pytest.fixture
def seed(redis_url, monkeypatch):
    """seed_app imported afresh (its HTTPCache.init() calls run again) with REDIS_URL naming
    database 3 of the test server, as the document's default URL names database 3; and a redis-py
    client of that database, with the document's namespace emptied."""
    url = redis_url + "/3"
    monkeypatch.setenv("REDIS_URL", url)
    db3 = redis_py.Redis.from_url(url)
    _clear(db3)
    sys.modules.pop("seed_app", None)
    module = importlib.import_module("seed_app")
    yield module, db3
    HTTPCache.close()
    _clear(db3)
    db3.close()


def _max_age(response) -> int:
    directives = [d.strip() for d in response.headers["cache-control"].split(",")]
    return int(next(d for d in directives if d.startswith("max-age="))[len("max-age="):])


def test_seed_home_180_seconds_then_a_hit(seed):
    app, db3 = seed
    with TestClient(app.app) as client:
        first = client.get("/b/home")
        assert first.status_code == 200 and first.json()["page"] == "home"
        assert "cache-hit" not in first.headers
        assert 178 <= db3.ttl("test_namespace:b.home") <= 180
        assert 178 <= _max_age(first) <= 180
        second = client.get("/b/home")
    assert second.headers["cache-hit"] == "true"
    assert second.json() == first.json()  # the same datetime: served from the cache
    assert 170 <= _max_age(second) <= 180
    # The seed stored the body; the entry is now the core's response record, which ends with it.
    stored = db3.get("test_namespace:b.home")
    assert stored.startswith(b"HTTPCACHE-RESPONSE 2\n") and stored.endswith(first.content)


def test_seed_welcome_end_of_week_in_casablanca_shares_the_home_key(seed):
    app, db3 = seed
    with TestClient(app.app) as client:
        welcome = client.get("/b/welcome")
        ttl = db3.ttl("test_namespace:b.home")
        assert abs(ttl - end_of_week(CASABLANCA)) <= 3, (ttl, end_of_week(CASABLANCA))
        assert abs(_max_age(welcome) - ttl) <= 2
        # The document gives both routes the key b.home: /b/home now serves the welcome page,
        # as it did with the seed.
        home = client.get("/b/home")
    assert home.headers["cache-hit"] == "true" and home.json() == welcome.json() and home.json()["page"] == "welcome"


def test_seed_logged_in_per_user_key_end_of_day_and_post_invalidates(seed):
    app, db3 = seed
    key = "test_namespace:b.logged_in.112358"
    with TestClient(app.app) as client:
        first = client.get("/b/logged-in")
        assert first.json()["user"] == "112358"
        assert abs(db3.ttl(key) - end_of_day(CASABLANCA)) <= 3  # the decorator's default TTL
        hit = client.get("/b/logged-in")
        assert hit.headers["cache-hit"] == "true" and hit.json() == first.json()
        assert "private" in hit.headers["cache-control"]  # a per-user key
        assert client.post("/b/logged-in").status_code == 200
        assert db3.exists(key) == 0
        again = client.get("/b/logged-in")
    assert "cache-hit" not in again.headers and again.json() != first.json()
    assert db3.exists(key) == 1


async def test_seed_multi_key_invalidation(seed):
    # The document's second POST /b/logged-in (keys=[...]) is shadowed by the first for HTTP
    # (FastAPI routes a path's POSTs to the route registered first): its endpoint is called.
    app, db3 = seed
    posts = [r for r in app.app.routes if getattr(r, "path", None) == "/b/logged-in" and "POST" in r.methods]
    assert len(posts) == 2
    for key in ("b.logged_in.112358", "b.profile.112358", "b.other"):
        db3.set(f"test_namespace:{key}", b"[1]", ex=60)
    response = await posts[1].endpoint(request=None, response=None)
    assert response.status_code == 200
    assert [db3.exists(f"test_namespace:{k}") for k in ("b.logged_in.112358", "b.profile.112358", "b.other")] == [0, 0, 1]


def test_seed_ttl_callable_3600_seconds(seed):
    app, db3 = seed
    with TestClient(app.app) as client:
        first = client.get("/b/ttl_callable")
        assert 3598 <= db3.ttl("test_namespace:b.ttl_callable_expiry") <= 3600
        assert 3598 <= _max_age(first) <= 3600
        second = client.get("/b/ttl_callable")
    assert second.headers["cache-hit"] == "true" and second.json() == first.json()


async def test_seed_cache_me_plain_function(seed):
    app, db3 = seed
    assert await app.cache_me(2, 0) == [4, 1]
    assert db3.get("test_namespace:cache.me") == b"[4,1]"
    assert 358 <= db3.ttl("test_namespace:cache.me") <= 360
    # A hit: the function does not run (its invoke_count would say 6), whatever the arguments,
    # since the document's key is fixed.
    assert await app.cache_me(x=2, invoke_count=5) == [4, 1]
    assert await app.cache_me(3, 0) == [4, 1]


def test_seed_redis_client_of_the_document_and_of_httpcache_see_the_entries(seed):
    app, db3 = seed
    with TestClient(app.app) as client:
        client.get("/b/home")
    assert app.redis_client.get("test_namespace:b.home") == db3.get("test_namespace:b.home") is not None
    assert HTTPCache.redis_client.get("test_namespace:b.home") == db3.get("test_namespace:b.home")


# ---- HTTPCache.init: the seed's positional order ----


@pytest.fixture
def _close():
    yield
    HTTPCache.close()


def test_init_positional_redis_url_tz(redis_url, _close):
    zone = timezone(CASABLANCA)
    HTTPCache.init(redis_url, zone)
    assert HTTPCache.redis_url == redis_url and HTTPCache.tz is zone and HTTPCache.namespace == "httpcache"
    assert HTTPCache.handle().cache.timezone == CASABLANCA


def test_init_positional_redis_url_tz_namespace(redis_url, namespace, _close):
    HTTPCache.init(redis_url, CASABLANCA, namespace)
    assert HTTPCache.namespace == namespace and HTTPCache.handle().cache.namespace == namespace
    assert HTTPCache.handle().cache.timezone == CASABLANCA

    @cache(key="pos", end_of_week=True)
    def f():
        return 1

    assert f() == 1
    client = redis_py.Redis.from_url(redis_url)
    assert abs(client.ttl(f"{namespace}:pos") - end_of_week(CASABLANCA)) <= 3
    client.close()


def test_init_keywords_in_any_order_and_enabled_keyword_only(namespace, _close):
    HTTPCache.init(namespace=namespace, tz="Asia/Tokyo", redis_url="memory://", enabled=False, pool_size=2)
    assert (HTTPCache.namespace, HTTPCache.handle().cache.timezone, HTTPCache.enabled) == (namespace, "Asia/Tokyo", False)
    with pytest.raises(TypeError):
        HTTPCache.init("memory://", "UTC", namespace, False)


def test_init_with_the_old_order_fails_naming_the_namespace_as_zone(_close):
    # init(url, "myapp") meant namespace "myapp" before: now a clear error, never a silent swap.
    with pytest.raises(ValueError, match="unknown time zone 'myapp'"):
        HTTPCache.init("memory://", "myapp")


# ---- HTTPCache.redis_client ----


def _sees_entries(url: str, namespace: str, **options) -> object:
    """init(url), a @cache entry stored, and HTTPCache.redis_client reading it; the client."""
    HTTPCache.init(redis_url=url, namespace=namespace, **options)

    @cache(key="rc", ttl_in_seconds=60)
    def f():
        return url

    assert f() == url
    client = HTTPCache.redis_client
    assert client.get(f"{namespace}:rc") == json.dumps(url).encode()
    assert 58 <= client.ttl(f"{namespace}:rc") <= 60
    return client


def test_redis_client_none_on_memory(_close):
    HTTPCache.init()
    assert HTTPCache.redis_client is None
    HTTPCache.init(redis_url="memory://")
    assert HTTPCache.redis_client is None


def test_redis_client_made_once_until_init_or_close(redis_url, namespace, _close):
    client = _sees_entries(redis_url + "/3", namespace)
    assert isinstance(client, redis_py.Redis) and HTTPCache.redis_client is client
    assert client.connection_pool.connection_kwargs["db"] == 3
    HTTPCache.init(redis_url=redis_url, namespace=namespace)
    other = HTTPCache.redis_client
    assert other is not client and other.connection_pool.connection_kwargs["db"] == 0
    HTTPCache.close()
    assert HTTPCache.redis_client is not other


def test_redis_client_credentials_and_timeouts(redis_auth_url, namespace, caplog, _close):
    caplog.set_level(logging.DEBUG)
    client = _sees_entries(redis_auth_url, namespace, connect_timeout_ms=700, command_timeout_ms=900)
    assert client.acl_whoami() == "app"
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (0.7, 0.9)
    password = redis_auth_url.split("@")[0].rsplit(":", 1)[1]
    assert password not in caplog.text


def test_redis_client_unix_socket_database(redis_socket, namespace, _close):
    client = _sees_entries(f"unix://{redis_socket}?db=2", namespace)
    assert client.connection_pool.connection_kwargs["db"] == 2


def test_redis_client_tls(rediss_url, rediss_dir, redis_mtls_dir, namespace, _close):
    _sees_entries(rediss_url, namespace)
    bare = rediss_url.split("?")[0]
    _sees_entries(bare, namespace + "k", ssl_ca_certs=rediss_dir / "tls" / "ca.crt")
    client = _sees_entries((rediss_dir / "url_auth").read_text().strip(), namespace + "a")
    assert client.acl_whoami() == "app"
    _sees_entries((redis_mtls_dir / "url").read_text().strip(), namespace + "m")


def test_redis_client_tls_server_hostname_is_refused_without_the_password(rediss_dir, namespace, _close):
    url = (rediss_dir / "url_auth").read_text().strip() + "&ssl_server_hostname=redis.test"
    HTTPCache.init(redis_url=url, namespace=namespace)
    with pytest.raises(RuntimeError, match="ssl_server_hostname") as info:
        HTTPCache.redis_client
    assert "app-pw" not in str(info.value)


def test_redis_client_cluster(cluster_url, cluster_tls_dir, namespace, _close):
    client = _sees_entries(cluster_url, namespace)
    assert isinstance(client, RedisCluster)
    _sees_entries((cluster_tls_dir / "url").read_text().strip(), namespace + "t")


def test_redis_client_sentinel(sentinel_dir, sentinel_tls_dir, namespace, _close):
    client = _sees_entries((sentinel_dir / "url").read_text().strip(), namespace)
    assert client.connection_pool.service_name == "mymaster"
    _sees_entries((sentinel_tls_dir / "url").read_text().strip(), namespace + "t")


def test_redis_client_without_redis_py(redis_url, monkeypatch, _close):
    HTTPCache.init(redis_url=redis_url)
    monkeypatch.setitem(sys.modules, "redis", None)  # what `import redis` meets when not installed
    with pytest.raises(RuntimeError, match="pip install redis"):
        HTTPCache.redis_client
    HTTPCache.init()
    assert HTTPCache.redis_client is None  # memory:// needs no redis-py


# ---- HTTPCacheBackend ----


async def test_backend_round_trip(store):
    backend = HTTPCacheBackend(namespace=store.namespace)
    assert await backend.set("k.dict", {"a": [1, "é"]}, ttl_in_seconds=60) is True
    assert store.get("k.dict") == '{"a":[1,"é"]}'.encode()
    ttl, value = await backend.get("k.dict")
    assert value == {"a": [1, "é"]} and 59 <= ttl <= 60
    await backend.set("k.bytes", b'{"raw": true}', ttl_in_seconds=60)
    assert store.get("k.bytes") == b'{"raw": true}'
    assert (await backend.get("k.bytes"))[1] == {"raw": True}
    await backend.set("k.text", b"not json", ttl_in_seconds=60)
    assert (await backend.get("k.text"))[1] == b"not json"
    assert await backend.invalidate("k.dict") is True
    assert await backend.invalidate("k.dict") is False
    assert await backend.get("k.dict") == (-2, None)
    assert await backend.invalidate_all(["k.bytes", "k.missing", "k.text"]) == [True, False, True]
    assert await backend.invalidate_all([]) == []
    assert store.get("k.bytes") is None and store.get("k.text") is None


async def test_backend_ttl_precedence(store):
    backend = HTTPCacheBackend(namespace=store.namespace)

    async def forty():
        return 40

    cases = [
        ({"ttl_func": forty, "ttl_in_seconds": 100, "end_of_week": True}, 40),
        ({"ttl_func": lambda: 30}, 30),
        ({"ttl_in_seconds": 100, "end_of_week": True}, 100),
        ({"end_of_week": True, "end_of_day": True}, seconds_until_end_of_week("UTC")),
        ({"end_of_day": True}, seconds_until_end_of_day("UTC")),
        ({}, seconds_until_end_of_day("UTC")),
    ]
    for i, (kwargs, expected) in enumerate(cases):
        await backend.set(f"ttl.{i}", i, **kwargs)
        assert abs(store.ttl_ms(f"ttl.{i}") / 1000 - expected) <= 2, (kwargs, expected)
        assert abs((await backend.get(f"ttl.{i}"))[0] - expected) <= 2


async def test_backend_reads_what_cache_stored(store):
    runs = []

    @cache(key="plain", ttl_in_seconds=120)
    async def plain():
        runs.append(1)
        return [1, 2]

    app = FastAPI()

    @app.get("/page")
    @cache(key="page", ttl_in_seconds=90)
    async def page():
        return JSONResponse({"page": "home"})

    @app.get("/text")
    @cache(key="text", ttl_in_seconds=90)
    async def text():
        return PlainTextResponse("hello")

    with TestClient(app) as client:
        client.get("/page")
        client.get("/text")
    assert await plain() == [1, 2]
    backend = HTTPCacheBackend()  # init()'s namespace
    ttl, value = await backend.get("plain")
    assert value == [1, 2] and 118 <= ttl <= 120
    ttl, value = await backend.get("page")
    assert value == {"page": "home"} and 88 <= ttl <= 90  # a response record: its JSON body
    assert (await backend.get("text"))[1] == b"hello"  # a body that is not JSON: its bytes
    assert await backend.invalidate("plain") is True
    assert await plain() == [1, 2] and len(runs) == 2  # computed again


async def test_cached_functions_see_what_the_backend_set(store):
    backend = HTTPCacheBackend(namespace=store.namespace)
    await backend.set("f.sync", {"from": "backend"}, ttl_in_seconds=60)
    await backend.set("f.async", [3, 4], ttl_in_seconds=60)
    runs = []

    @cache(key="f.sync")
    def sync_f():
        runs.append("sync")
        return {"from": "function"}

    @cache(key="f.async")
    async def async_f():
        runs.append("async")
        return [0]

    assert await asyncio.to_thread(sync_f) == {"from": "backend"}
    assert await async_f() == [3, 4]
    assert runs == []


async def test_backend_set_is_never_refused(store):
    # An explicit set is a plain SET: what the decorators' fenced stores would refuse (a value or
    # a lease seen on this loop's connection, an invalidation since a miss) never refuses it.
    @cache(key="fenced", ttl_in_seconds=60)
    async def f():
        return "computed"

    backend = HTTPCacheBackend(namespace=store.namespace)
    assert await f() == "computed" and await f() == "computed"
    await backend.set("fenced", "explicit", ttl_in_seconds=60)
    assert store.get("fenced") == b'"explicit"'
    assert await f() == "explicit"
    assert await backend.get("after.miss") == (-2, None)
    await backend.invalidate("after.miss")
    assert await backend.set("after.miss", 1, ttl_in_seconds=60) is True
    assert store.get("after.miss") == b"1"


async def test_backend_get_miss_leaves_nothing_behind(redis_backend, redis_backend_client, namespace, _close):
    HTTPCache.init(redis_url=redis_backend, namespace=namespace)
    backend = HTTPCacheBackend()
    assert await backend.get("absent") == (-2, None)
    assert redis_backend_client.exists(f"{namespace}:absent") == 0  # no lease placeholder


async def test_backend_prefixed_keys_and_namespaces(store):
    ns = store.namespace
    backend = HTTPCacheBackend(namespace=ns)
    await backend.set(f"{ns}:p.full", 1, ttl_in_seconds=60)
    assert store.get("p.full") == b"1"
    assert (await backend.get("p.full"))[1] == 1 and (await backend.get(f"{ns}:p.full"))[1] == 1
    assert await backend.invalidate(f"{ns}:p.full") is True
    other = HTTPCacheBackend(redis=HTTPCache.redis_client, namespace=ns + "x")  # redis: ignored
    await other.set("p.other", 2, ttl_in_seconds=60)
    assert store.get("p.other", namespace=ns + "x") == b"2" and store.get("p.other") is None


async def test_backend_namespace_follows_init(namespace, _close):
    backend = HTTPCacheBackend()  # made before init(), as at a module's import
    HTTPCache.init(namespace=namespace)
    assert backend.namespace == namespace
    await backend.set("n", 1, ttl_in_seconds=60)
    value, _ = HTTPCache.handle(namespace).cache.get(b"n")
    assert value == b"1"


async def test_backend_bad_arguments(store):
    backend = HTTPCacheBackend(namespace=store.namespace)
    with pytest.raises(TypeError):
        await backend.get(42)
    with pytest.raises(TypeError):
        await backend.set("k", object())
    with pytest.raises(TypeError):
        await backend.invalidate_all("k")
    for bad in (
        backend.set("", 1),
        backend.set(f"{store.namespace}:", 1),
        backend.set("k", float("nan")),
        backend.set("k", 1, ttl_in_seconds=0),
        backend.set("k", 1, ttl_func=lambda: "soon"),
        backend.get("k" * 5000),
    ):
        with pytest.raises(ValueError):
            await bad
    with pytest.raises(ValueError):
        HTTPCacheBackend(namespace="a:b")

    def broken():
        raise LookupError("ttl_func failed")

    with pytest.raises(LookupError):
        await backend.set("k", 1, ttl_func=broken)
    assert store.get("k") is None


async def test_backend_outage_raises_and_is_logged_once(namespace, warnings_log, _close):
    HTTPCache.init(redis_url=f"redis://127.0.0.1:{_free_port()}", namespace=namespace, connect_timeout_ms=100)
    backend = HTTPCacheBackend()
    for call in (backend.get("k"), backend.set("k", 1), backend.invalidate("k"), backend.invalidate_all(["k", "j"])):
        with pytest.raises(httpcache.Error) as info:
            await call
        assert info.value.code in (httpcache._httpcache.EBACKEND, httpcache._httpcache.ETIMEOUT)
    assert len([r for r in warnings_log() if "unavailable" in r.getMessage()]) == 1


async def test_backend_with_caching_off(store):
    HTTPCache.init(redis_url=store.url, namespace=store.namespace, enabled=False)
    backend = HTTPCacheBackend()
    assert await backend.set("off", 1, ttl_in_seconds=60) is False
    assert await backend.get("off") == (-2, None)
    assert await backend.invalidate("off") is False
    assert await backend.invalidate_all(["off"]) == [False]
    HTTPCache.init(redis_url=store.url, namespace=store.namespace)
    assert store.get("off") is None


async def test_backend_many_concurrent_calls(store):
    backend = HTTPCacheBackend(namespace=store.namespace)
    await asyncio.gather(*(backend.set(f"c.{i}", i, ttl_in_seconds=60) for i in range(50)))
    got = await asyncio.gather(*(backend.get(f"c.{i}") for i in range(50)))
    assert [v for _, v in got] == list(range(50))
    assert await backend.invalidate_all([f"c.{i}" for i in range(50)]) == [True] * 50
