# SPDX-License-Identifier: MIT
"""HTTPCache.init(): URLs, zones, namespaces, options, and an unreachable Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from zoneinfo import ZoneInfo

import pytest
import redis as redis_py

import httpcache
from httpcache import HTTPCache, cache, invalidate_cache


@pytest.fixture(autouse=True)
def _reset():
    yield
    HTTPCache.close()


def test_defaults_and_attributes():
    assert HTTPCache.init() is HTTPCache
    assert HTTPCache.redis_url is None and HTTPCache.namespace == "httpcache" and HTTPCache.tz == "UTC"
    h = HTTPCache.handle()
    assert h.cache.namespace == "httpcache" and h.cache.timezone == "UTC"
    zone = ZoneInfo("Africa/Casablanca")
    HTTPCache.init(redis_url="memory://", namespace="test_namespace", tz=zone)
    assert HTTPCache.redis_url == "memory://" and HTTPCache.namespace == "test_namespace" and HTTPCache.tz is zone
    assert HTTPCache.handle().cache.timezone == "Africa/Casablanca"


def test_redis_and_unix_urls(redis_url, redis_socket, namespace):
    # (url, the database it names): each value is checked with an independent client in that
    # database and found absent from every other one, so an ignored /db or ?db= fails.
    urls = ((redis_url, 0), (redis_url + "/3", 3), (f"unix://{redis_socket}", 0), (f"unix://{redis_socket}?db=2", 2))
    clients = {db: redis_py.Redis(unix_socket_path=redis_socket, db=db) for db in (0, 2, 3)}
    for i, (url, db) in enumerate(urls):
        HTTPCache.init(redis_url=url, namespace=namespace)
        calls = []

        @cache(key=f"u{i}", ttl_in_seconds=60)
        def f():
            calls.append(1)
            return url

        assert f() == url and f() == url
        assert len(calls) == 1
        value, _ = HTTPCache.handle().cache.get(f"u{i}".encode())
        assert value.decode() == f'"{url}"'
        for other, client in clients.items():
            expected = f'"{url}"'.encode() if other == db else None
            assert client.get(f"{namespace}:u{i}") == expected, (url, other)
    for client in clients.values():
        client.close()


def test_cluster_urls(cluster_url, cluster_client, namespace):
    # One seed is enough (the others are found with CLUSTER SLOTS); options go in the query.
    one_seed = cluster_url.split(",")[0]
    urls = (cluster_url, one_seed, cluster_url + "?connect_timeout_ms=500&command_timeout_ms=500")
    for i, url in enumerate(urls):
        HTTPCache.init(redis_url=url, namespace=namespace)

        @cache(key=f"c{i}", ttl_in_seconds=60)
        def f():
            return url

        assert f() == url and f() == url
        assert cluster_client.get(f"{namespace}:c{i}") == f'"{url}"'.encode()
    HTTPCache.close()


class PytzLike(dt.tzinfo):
    """Duck-typed pytz zone: what pytz.timezone('Africa/Casablanca') offers (`zone`)."""

    zone = "Africa/Casablanca"


@pytest.mark.parametrize(
    "tz, name",
    [
        ("Europe/London", "Europe/London"),
        (ZoneInfo("Asia/Tokyo"), "Asia/Tokyo"),
        (PytzLike(), "Africa/Casablanca"),
        (dt.timezone.utc, "UTC"),
        (None, "UTC"),
    ],
)
def test_zone_forms(tz, name):
    HTTPCache.init(tz=tz)
    assert HTTPCache.handle().cache.timezone == name


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"redis_url": "bogus://host"}, "'bogus://host'"),
        ({"redis_url": "redis://host:notaport"}, "'redis://host:notaport'"),
        ({"redis_url": "http://example.com"}, "'http://example.com'"),
        ({"redis_url": "redis://"}, "'redis://'"),
        ({"redis_url": "unix://"}, "'unix://'"),
        ({"redis_url": 6379}, "6379"),
        ({"tz": "Mars/Olympus_Mons"}, "'Mars/Olympus_Mons'"),
        ({"tz": "europe/londn"}, "'europe/londn'"),
        ({"tz": ""}, "''"),
        ({"tz": 5}, "5"),
        ({"namespace": "a:b"}, "'a:b'"),
        ({"namespace": ""}, "''"),
        ({"namespace": "x" * 129}, "'" + "x" * 129 + "'"),
        ({"namespace": None}, "None"),
        ({"connect_timeout_ms": -1}, "connect_timeout_ms=-1"),
        ({"pool_size": "8"}, "pool_size='8'"),
        ({"command_timeout_ms": 2**40}, "command_timeout_ms="),
    ],
)
def test_bad_init_arguments_raise_value_error_naming_the_value(kwargs, needle):
    HTTPCache.init(namespace="before")
    with pytest.raises(ValueError) as info:
        HTTPCache.init(**kwargs)
    assert needle in str(info.value)
    assert HTTPCache.namespace == "before"  # a failed init changes nothing


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError) as info:
        HTTPCache.init(pool=3)
    assert "'pool'" in str(info.value)


def test_credentials_never_in_messages():
    with pytest.raises(ValueError) as info:
        HTTPCache.init(redis_url="redis://user:hunter2@host:notaport/0")
    assert "hunter2" not in str(info.value)
    assert "user:***@host" in str(info.value)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_redis_runs_uncached_and_logs_once(warnings_log):
    HTTPCache.init(redis_url=f"redis://127.0.0.1:{_free_port()}", namespace="down", connect_timeout_ms=200)
    calls = []

    @cache(key="k", ttl_in_seconds=60)
    def f():
        calls.append(1)
        return len(calls)

    @cache(key="a", ttl_in_seconds=60)
    async def g():
        calls.append(1)
        return len(calls)

    @invalidate_cache(key="k")
    async def inv():
        return "inv"

    @invalidate_cache(key="k")
    def inv_sync():
        return "inv"

    assert [f() for _ in range(5)] == [1, 2, 3, 4, 5]

    async def run():
        return [await g() for _ in range(5)] + [await inv()]

    assert asyncio.run(run()) == [6, 7, 8, 9, 10, "inv"]
    assert inv_sync() == "inv"
    assert len(warnings_log()) == 1, [r.getMessage() for r in warnings_log()]
    assert "serving uncached" in warnings_log()[0].getMessage()


def test_unreachable_redis_http_response_still_gets_headers():
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient

    HTTPCache.init(redis_url=f"redis://127.0.0.1:{_free_port()}", namespace="down")
    app = FastAPI()

    @app.get("/")
    @cache(key="home", ttl_in_seconds=180)
    async def home():
        return JSONResponse({"ok": True})

    with TestClient(app) as client:
        r = client.get("/")
        assert r.status_code == 200 and r.json() == {"ok": True}
        assert "cache-hit" not in r.headers
        assert r.headers["cache-control"] == "max-age=180"


def test_reinit_switches_backend(redis_backend, namespace):
    calls = []

    @cache(key="sw", ttl_in_seconds=60)
    def f():
        calls.append(HTTPCache.redis_url)
        return HTTPCache.redis_url

    HTTPCache.init(namespace=namespace)
    assert f() is None and f() is None  # memory://: a miss, then a hit
    assert calls == [None]
    HTTPCache.init(redis_url=redis_backend, namespace=namespace)
    assert f() == redis_backend  # a different store: a miss
    assert calls == [None, redis_backend]
    HTTPCache.init(namespace=namespace)
    assert f() is None  # a fresh memory store: a miss again, not the first store's entry
    assert calls == [None, redis_backend, None]


def test_exports():
    for name in ("HTTPCache", "cache", "invalidate_cache", "seconds_until_end_of_day", "seconds_until_end_of_week", "tzdata_version", "CacheMiss", "Error"):
        assert name in httpcache.__all__ and hasattr(httpcache, name)
    assert issubclass(httpcache.CacheMiss, KeyError) and issubclass(httpcache.CacheMiss, httpcache.Error)
    assert httpcache.__version__ == httpcache._httpcache.version_string() == httpcache._httpcache.HEADER_VERSION
