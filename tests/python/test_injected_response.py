# SPDX-License-Identifier: MIT
"""The Response FastAPI injects into a handler (issue 13, finding 5), and the cache headers of
handlers that return a dict, through FastAPI's TestClient on memory://, Redis and the cluster.

- What a handler sets on its injected ``response: Response`` (headers, cookies, status) is
  judged by the same storage rules as a returned Response: ``private``/``no-store``/Set-Cookie
  under a shared key is never stored (bob once received alice's greeting).
- A hit replays the status and headers the computing call set on its injected response.
- Dict results get Cache-Control, Expires and (on hits) Cache-Hit like Response results,
  ``private`` under a per-user key, whether or not the handler declares a Response parameter.
"""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI, Request, Response

from httpcache import cache

CURRENT = {"user": "alice"}


class User:
    def __init__(self, name: str) -> None:
        self.name = name


def current_user() -> User:
    return User(CURRENT["user"])


@pytest.fixture
def app(store):
    app = FastAPI()
    app.state.calls = calls = {}

    def ran(name: str) -> int:
        calls[name] = calls.get(name, 0) + 1
        return calls[name]

    @app.get("/greeting")
    @cache(key="inj.greeting", ttl_in_seconds=60)
    async def greeting(response: Response, user: User = Depends(current_user)):
        # Personal: the handler says so on the injected response, and sets a cookie.
        response.headers["Cache-Control"] = "private, no-store"
        response.set_cookie("seen", user.name)
        return {"hello": user.name, "n": ran("greeting")}

    @app.get("/created")
    @cache(key="inj.created", ttl_in_seconds=60)
    async def created(response: Response):
        response.status_code = 201
        response.headers["X-Custom"] = "kept"
        response.headers["Cache-Control"] = "public, max-age=5"
        return {"made": ran("created")}

    @app.get("/created-sync")
    @cache(key="inj.created.sync", ttl_in_seconds=60)
    def created_sync(response: Response):
        response.status_code = 201
        response.headers["X-Custom"] = "kept-sync"
        return {"made": ran("created_sync")}

    @app.get("/plain")
    @cache(key="inj.plain", ttl_in_seconds=60)
    async def plain():
        return {"plain": ran("plain")}

    @app.get("/plain-sync")
    @cache(key="inj.plain.sync", ttl_in_seconds=60)
    def plain_sync(request: Request):
        return {"plain": ran("plain_sync")}

    @app.get("/mine")
    @cache(key="inj.mine.{}", obj="user", obj_attr="name", ttl_in_seconds=60)
    async def mine(user: User = Depends(current_user)):
        return {"mine": user.name, "n": ran("mine")}

    @app.get("/teapot")
    @cache(key="inj.teapot", ttl_in_seconds=60)
    async def teapot(response: Response):
        response.status_code = 418
        return {"tea": ran("teapot")}

    return app


def _as(user: str) -> None:
    CURRENT["user"] = user


def test_private_injected_response_is_never_shared(client, app, store):
    _as("alice")
    a = client.get("/greeting")
    _as("bob")
    b = client.get("/greeting")
    assert a.json()["hello"] == "alice" and b.json()["hello"] == "bob"  # bob never gets alice's
    assert app.state.calls["greeting"] == 2
    assert store.get("inj.greeting") is None
    assert "cache-hit" not in b.headers
    assert b.headers["cache-control"] == "private, no-store"  # the handler's, untouched
    assert "seen=bob" in b.headers["set-cookie"]


def test_error_status_on_injected_response_is_not_stored(client, app, store):
    assert client.get("/teapot").status_code == 418
    assert client.get("/teapot").status_code == 418
    assert app.state.calls["teapot"] == 2
    assert store.get("inj.teapot") is None


@pytest.mark.parametrize("path,custom", [("/created", "kept"), ("/created-sync", "kept-sync")])
def test_hit_replays_status_and_headers_of_the_injected_response(client, app, path, custom):
    first = client.get(path)
    second = client.get(path)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first.headers["x-custom"] == second.headers["x-custom"] == custom
    assert "cache-hit" not in first.headers and second.headers["cache-hit"] == "true"
    assert "expires" in first.headers and "expires" in second.headers


def test_handler_max_age_on_injected_response_caps_the_entry(client, app, store):
    first = client.get("/created")
    assert first.headers["cache-control"] == "public, max-age=5"  # capped at the handler's 5 s
    assert 0 < store.ttl_ms("inj.created") <= 5000
    second = client.get("/created")
    assert second.headers["cache-hit"] == "true"
    control = second.headers["cache-control"]
    assert control.startswith("public, max-age=") and int(control.rsplit("=", 1)[1]) <= 5


@pytest.mark.parametrize("path", ["/plain", "/plain-sync"])
def test_dict_results_get_cache_headers(client, app, path):
    first = client.get(path)
    second = client.get(path)
    assert first.json() == second.json()
    assert first.headers["cache-control"] == "max-age=60"
    assert "cache-hit" not in first.headers
    assert second.headers["cache-hit"] == "true"
    assert second.headers["cache-control"].startswith("max-age=")
    assert "expires" in first.headers and "expires" in second.headers


def test_per_user_dict_results_are_private(client, app):
    _as("carol")
    first = client.get("/mine")
    second = client.get("/mine")
    assert first.headers["cache-control"].startswith("private, max-age=")
    assert second.headers["cache-hit"] == "true" and second.headers["cache-control"].startswith("private, ")
    assert app.state.calls["mine"] == 1
