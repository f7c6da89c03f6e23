"""Issue 15's idioms over real HTTP: idioms_app.py served by a real uvicorn on loopback (on the
default asyncio loop and on uvloop), caching in memory:// and in the real Redis of the test
fixture, and once more with HTTPCACHE_DISABLED=1."""

from __future__ import annotations

import uuid

import httpx
import pytest

from uvicorn_support import uvicorn_server


@pytest.fixture(params=["memory", "redis"])
def app_url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


server = uvicorn_server(
    "idioms_app:app",
    env=lambda app_url, namespace: {
        "HTTPCACHE_TEST_APP_URL": app_url, "HTTPCACHE_TEST_APP_NAMESPACE": namespace, "HTTPCACHE_DISABLED": None,
    },
)
disabled_server = uvicorn_server(
    "idioms_app:app",
    env=lambda app_url, namespace: {
        "HTTPCACHE_TEST_APP_URL": app_url, "HTTPCACHE_TEST_APP_NAMESPACE": namespace, "HTTPCACHE_DISABLED": "1",
    },
)


def _twice(http: httpx.Client, path: str, **kw) -> tuple[httpx.Response, httpx.Response]:
    return http.get(path, **kw), http.get(path, **kw)


def test_idioms_over_real_http(server):
    oid = uuid.uuid4()
    with httpx.Client(base_url=server, timeout=10, trust_env=False) as http:
        miss, hit = _twice(http, f"/orders/{oid}")
        assert miss.json()["id"] == str(oid) and miss.json()["lines"] == [{"sku": "a", "price": "1.50"}]
        assert hit.content == miss.content and hit.headers["cache-hit"] == "true"
        assert hit.headers["content-type"] == miss.headers["content-type"] == "application/json"
        assert http.get(f"/orders/{uuid.uuid4()}").json()["run"] == 1, "another order: its own entry"

        for who in ("alice", "bob"):
            miss, hit = _twice(http, "/me", headers={"x-user": who})
            assert miss.json() == hit.json() == {"user": who, "run": 1}
            assert hit.headers["cache-control"].startswith("private")
            miss, hit = _twice(http, "/claims", headers={"x-user": who})
            assert miss.json() == hit.json() == {"sub": who, "run": 1}

        assert http.get("/items?page=2&size=5").json()["run"] == 1
        assert http.get("/items?size=5&page=2").headers["cache-hit"] == "true"
        assert http.get("/items?page=3&size=5").json() == {"page": 3, "size": 5, "run": 1}

        assert [http.get("/maybe/1").json()["run"] for _ in range(2)] == [1, 2], "odd: refused by condition"
        assert [http.get("/maybe/2").json()["run"] for _ in range(2)] == [1, 1]


def test_disabled_over_real_http(disabled_server):
    with httpx.Client(base_url=disabled_server, timeout=10, trust_env=False) as http:
        runs = [http.get("/items?page=1").json()["run"] for _ in range(3)]
        me = [http.get("/me", headers={"x-user": "a"}) for _ in range(2)]
    assert runs == [1, 2, 3]
    assert [r.json()["run"] for r in me] == [1, 2] and all("cache-hit" not in r.headers for r in me)
