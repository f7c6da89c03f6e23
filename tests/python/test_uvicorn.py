# SPDX-License-Identifier: MIT
"""The event loops httpcache runs on, and a real uvicorn (issue 15): uvicorn serves apps on
uvloop whenever it is installed, so the tests run on the default asyncio loop and on uvloop.

- The loop of this run: HTTPCACHE_TEST_LOOP=uvloop (CTest's python_wheel_cp311) must put every async
  test, asyncio.run() and FastAPI's TestClient on uvloop, and nothing else may (conftest.py).
- uvicorn_app.py served by a real uvicorn on loopback (uvicorn_support.py), `--loop asyncio` and
  `--loop uvloop`, caching in memory:// and in the Redis of the CTest `redis` fixture: over real
  HTTP, the second GET of an async route and of a def route is a hit with the same body."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from uvicorn_support import uvicorn_server

SWITCH = os.environ.get("HTTPCACHE_TEST_LOOP") or "asyncio"


def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def is_loop(module: str, name: str) -> bool:
    """`module` (a loop class's __module__) belongs to `name`'s implementation: uvloop's class
    lives in uvloop, the default one in asyncio.unix_events."""
    return module.split(".")[0] == name


async def test_async_tests_run_on_the_selected_loop():
    assert is_loop(loop_module(), SWITCH), f"HTTPCACHE_TEST_LOOP={SWITCH}, running on {loop_module()}"


def test_asyncio_run_and_testclient_run_on_the_selected_loop():
    async def which():
        return loop_module()

    assert is_loop(asyncio.run(which()), SWITCH)

    app = FastAPI()

    @app.get("/loop")
    async def route():
        return {"loop": loop_module()}

    with TestClient(app) as client:
        assert is_loop(client.get("/loop").json()["loop"], SWITCH)


@pytest.fixture(params=["memory", "redis"])
def app_backend(request, namespace) -> dict:
    """Where the served app caches: its environment and, for Redis, what the test reads there."""
    if request.param == "memory":
        return {"env": {"HTTPCACHE_TEST_APP_URL": "memory://"}, "namespace": namespace, "redis": None}
    url = request.getfixturevalue("redis_url")
    return {"env": {"HTTPCACHE_TEST_APP_URL": url}, "namespace": namespace,
            "redis": request.getfixturevalue("redis_client")}


def _app_env(app_backend) -> dict:
    # HTTPCACHE_DISABLED in the caller's environment would turn the served app's cache off.
    return {**app_backend["env"], "HTTPCACHE_TEST_APP_NAMESPACE": app_backend["namespace"], "HTTPCACHE_DISABLED": None}


server = uvicorn_server("uvicorn_app:app", env=_app_env)


def test_uvicorn_serves_on_the_loop_it_was_asked_for(server, request):
    loop = request.node.callspec.params["server"]
    answer = httpx.get(f"{server}/loop", timeout=10, trust_env=False).json()["loop"]
    assert is_loop(answer.split(".")[0], loop), answer


@pytest.mark.parametrize("route", ["async", "def"])
def test_second_get_over_real_http_is_a_hit(server, app_backend, route):
    with httpx.Client(base_url=server, timeout=10, trust_env=False) as http:
        first = http.get(f"/{route}")
        second = http.get(f"/{route}")
        other = "def" if route == "async" else "async"
        untouched = http.get(f"/{other}")
    assert first.status_code == 200 and second.status_code == 200
    assert first.json() == {"route": route, "run": 1}
    assert "cache-hit" not in first.headers
    assert second.headers.get("cache-hit") == "true"
    assert second.content == first.content  # the handler did not run again (its run would be 2)
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert "max-age=" in second.headers["cache-control"]
    # The other route is its own entry: computed now, not served from this one.
    assert untouched.json() == {"route": other, "run": 2} and "cache-hit" not in untouched.headers
    if app_backend["redis"] is not None:
        # Stored in the real Redis under the app's namespace, not in the server's own memory.
        assert app_backend["redis"].exists(f"{app_backend['namespace']}:uv.{route}") == 1
        assert app_backend["redis"].pttl(f"{app_backend['namespace']}:uv.{route}") > 50_000
