# SPDX-License-Identifier: MIT
"""FastAPI/Starlette responses through FastAPI's TestClient, on memory:// and Redis."""

from __future__ import annotations

import email.utils
import time

import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from fastapi.testclient import TestClient

from httpcache import HTTPCache, _httpcache, cache, invalidate_cache
from httpcache._codec import MAGIC

V2 = b"HTTPCACHE-RESPONSE 2\n"  # what the decorators store (version-1 records stay readable)


class User:
    def __init__(self, id):
        self.id = id


CURRENT_USER = {"id": "112358"}


def current_user() -> User:
    return User(CURRENT_USER["id"])


@pytest.fixture(params=["routed", "early"])
def app(store, request):
    """The seed's routes plus edge cases; `calls` counts handler runs per route. Every test runs
    twice: as routed by FastAPI, and with HTTPCache.attach() answering hits before routing, which
    must make no difference a client can see (test_early_hits.py checks it is really used)."""
    app = FastAPI()
    if request.param == "early":
        HTTPCache.attach(app)
    app.state.calls = calls = {}

    def ran(name):
        calls[name] = calls.get(name, 0) + 1
        return calls[name]

    @app.get("/b/home")
    @cache(key="b.home", ttl_in_seconds=180)
    async def home(request: Request, response: Response):
        return JSONResponse({"page": "home", "n": ran("home")})

    @app.get("/b/logged-in")
    @cache(key="b.logged_in.{}", obj="user", obj_attr="id")
    async def logged_in(request: Request, response: Response, user: User = Depends(current_user)):
        return JSONResponse({"page": "home", "user": user.id, "n": ran("logged_in")})

    @app.post("/b/logged-in")
    @invalidate_cache(keys=["b.logged_in.{}", "b.profile.{}"], obj="user", obj_attr="id", namespace=store.namespace)
    async def post_logged_in(request: Request, response: Response, user: User = Depends(current_user)):
        return JSONResponse({"page": "home", "user": user.id, "posted": ran("post")})

    async def my_ttl_callable():
        return 3600

    @app.get("/b/ttl_callable")
    @cache(key="b.ttl_callable_expiry", ttl_func=my_ttl_callable)
    async def path_with_ttl_callable(request: Request, response: Response):
        return JSONResponse({"page": "path_with_ttl_callable", "n": ran("ttl_callable")})

    @app.get("/sync")
    @cache(key="sync", ttl_in_seconds=60)
    def sync_handler(q: int = 0):
        return HTMLResponse(f"<p>{q} {ran('sync')}</p>", status_code=203, headers={"x-custom": "kept"})

    @app.get("/text")
    @cache(key="text", ttl_in_seconds=60)
    async def text():
        return PlainTextResponse(f"plain {ran('text')}", media_type="text/csv")

    @app.get("/status/{code}")
    @cache(key="status.{}", obj="code", obj_attr="real", ttl_in_seconds=60)
    async def status(code: int):
        n = ran(f"status{code}")
        if code in (301, 302):
            return RedirectResponse("/b/home", status_code=code)
        return JSONResponse({"n": n}, status_code=code)

    @app.get("/cookie")
    @cache(key="cookie", ttl_in_seconds=60)
    async def cookie():
        r = JSONResponse({"n": ran("cookie")})
        r.set_cookie("session", "secret")
        return r

    @app.get("/no-store")
    @cache(key="no-store", ttl_in_seconds=60)
    async def no_store():
        return JSONResponse({"n": ran("no_store")}, headers={"Cache-Control": "no-store"})

    @app.get("/private-shared")
    @cache(key="private-shared", ttl_in_seconds=60)
    async def private_shared():
        return JSONResponse({"n": ran("private_shared")}, headers={"Cache-Control": "private"})

    @app.get("/private-user")
    @cache(key="private-user.{}", obj="user", obj_attr="id", ttl_in_seconds=60)
    async def private_user(user: User = Depends(current_user)):
        return JSONResponse({"n": ran("private_user")}, headers={"Cache-Control": "private, max-age=5"})

    @app.get("/stream")
    @cache(key="stream", ttl_in_seconds=60)
    async def stream():
        ran("stream")
        return StreamingResponse(iter([b"a", b"b"]), media_type="text/plain")

    @app.get("/age")
    @cache(key="age", ttl_in_seconds=60)
    async def age():
        return JSONResponse({"n": ran("age")}, headers={"Age": "100"})

    @app.get("/dict")
    @cache(key="dict", ttl_in_seconds=60)
    async def plain_dict():
        return {"n": ran("dict")}

    return app


def _max_age(response) -> int:
    directives = [d.strip() for d in response.headers["cache-control"].split(",")]
    return int(next(d for d in directives if d.startswith("max-age=")).split("=", 1)[1])


def _check_expiry_headers(response, expected_max_age: int, slack: int = 3):
    # A hit says max-age=<lifetime> with Age=<seconds since stored>; a miss says its lifetime.
    age = int(response.headers.get("age", "0"))
    assert ("age" in response.headers) == (response.headers.get("cache-hit") == "true")
    max_age = _max_age(response) - age
    assert expected_max_age - slack <= max_age <= expected_max_age
    expires = email.utils.parsedate_to_datetime(response.headers["expires"])
    assert response.headers["expires"].endswith(" GMT")
    assert abs(expires.timestamp() - (time.time() + max_age)) <= 2


def test_home_miss_then_hit_with_headers(client, app, store):
    first = client.get("/b/home")
    assert first.status_code == 200
    assert "cache-hit" not in first.headers
    _check_expiry_headers(first, 180)
    assert "private" not in first.headers["cache-control"]
    second = client.get("/b/home")
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["cache-hit"] == "true"
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    _check_expiry_headers(second, 180)
    assert app.state.calls["home"] == 1
    assert store.get("b.home").startswith(V2)


def test_per_user_key_is_private(client, app, store):
    first = client.get("/b/logged-in")
    assert first.json()["user"] == "112358"
    assert first.headers["cache-control"].startswith("private")
    second = client.get("/b/logged-in")
    assert second.headers["cache-hit"] == "true"
    assert second.headers["cache-control"].startswith("private, max-age=")
    assert second.content == first.content
    assert store.get("b.logged_in.112358") is not None
    # Another user gets their own entry, never the first user's page.
    CURRENT_USER["id"] = "42"
    try:
        other = client.get("/b/logged-in")
    finally:
        CURRENT_USER["id"] = "112358"
    assert other.json()["user"] == "42" and "cache-hit" not in other.headers
    assert app.state.calls["logged_in"] == 2


def test_post_invalidates(client, app, store):
    client.get("/b/logged-in")
    assert client.get("/b/logged-in").headers["cache-hit"] == "true"
    store.put("b.profile.112358", b"{}")
    assert client.post("/b/logged-in").json()["posted"] == 1
    assert store.get("b.logged_in.112358") is None and store.get("b.profile.112358") is None
    after = client.get("/b/logged-in")
    assert "cache-hit" not in after.headers
    assert app.state.calls["logged_in"] == 2


def test_ttl_callable(client, app, store):
    first = client.get("/b/ttl_callable")
    _check_expiry_headers(first, 3600)
    assert 3595_000 < store.ttl_ms("b.ttl_callable_expiry") <= 3600_000
    assert client.get("/b/ttl_callable").headers["cache-hit"] == "true"


def test_sync_handler_status_media_type_and_headers_kept(client, app):
    first = client.get("/sync?q=3")
    second = client.get("/sync?q=4")  # fixed key: the cached page
    assert first.status_code == second.status_code == 203
    assert second.content == first.content == b"<p>3 1</p>"
    assert second.headers["content-type"] == first.headers["content-type"] == "text/html; charset=utf-8"
    assert second.headers["x-custom"] == "kept"
    assert second.headers["cache-hit"] == "true"
    assert second.headers["content-length"] == str(len(first.content))
    _check_expiry_headers(second, 60)


def test_media_type_kept(client):
    first = client.get("/text")
    second = client.get("/text")
    assert second.headers["cache-hit"] == "true"
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize("code", [201, 204, 299])
def test_other_2xx_are_stored(client, app, code):
    client.get(f"/status/{code}")
    second = client.get(f"/status/{code}")
    assert second.status_code == code
    assert second.headers["cache-hit"] == "true"
    assert app.state.calls[f"status{code}"] == 1


@pytest.mark.parametrize("code", [404, 500, 302, 304, 400])
def test_non_2xx_never_stored(client, app, store, code):
    for _ in range(2):
        r = client.get(f"/status/{code}", follow_redirects=False)
        assert r.status_code == code
        assert "cache-hit" not in r.headers
        assert "max-age" not in r.headers.get("cache-control", "")
    assert store.get(f"status.{code}") is None
    assert app.state.calls[f"status{code}"] == 2  # computed on every call, redirects included


@pytest.mark.parametrize(
    "path, key, name",
    [
        ("/cookie", "cookie", "cookie"),
        ("/no-store", "no-store", "no_store"),
        ("/private-shared", "private-shared", "private_shared"),
        ("/stream", "stream", "stream"),
    ],
)
def test_never_stored(client, app, store, path, key, name):
    r1 = client.get(path)
    r2 = client.get(path)
    assert r1.status_code == r2.status_code == 200
    assert "cache-hit" not in r2.headers
    assert store.get(key) is None
    assert app.state.calls[name] == 2
    if path == "/cookie":
        assert "session=secret" in r2.headers["set-cookie"]
    if path == "/no-store":
        assert r2.headers["cache-control"] == "no-store"


def test_private_response_stored_under_per_user_key(client, app, store):
    client.get("/private-user")
    r = client.get("/private-user")
    assert r.headers["cache-hit"] == "true"
    assert r.headers["cache-control"].startswith("private, max-age=")
    assert app.state.calls["private_user"] == 1
    assert store.get("private-user.112358") is not None


def test_age_header_on_hits_only(client):
    miss = client.get("/age")
    r = client.get("/age")
    assert "age" not in miss.headers
    assert r.headers["cache-hit"] == "true" and r.headers["age"] == "0"


def test_handler_returning_a_dict_is_cached_as_the_response_fastapi_sends(client, app, store):
    first = client.get("/dict")
    second = client.get("/dict")
    assert first.content == second.content == b'{"n":1}'
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    status, media, headers, body = _httpcache.response_decode(store.get("dict"))
    assert (status, media, body) == (200, b"application/json", b'{"n":1}')
    assert app.state.calls["dict"] == 1


@pytest.mark.parametrize(
    "garbage",
    [
        MAGIC,
        MAGIC + b"not a status line\nbody",
        MAGIC + b"200\n\nbody",
        MAGIC + b"99 0\n\nbody",
        MAGIC + b"200 2\ntext/plain\nx-a: 1\n",
        MAGIC + b"200 1\ntext/plain\nnot a header\nbody",
        MAGIC + b"200 x\ntext/plain\nbody",
        b"HTTPCACHE-RESPONSE 2\n200 0\n\n",
        b"\xff\xfe not json",
    ],
)
def test_invalid_record_is_a_miss(client, app, store, garbage):
    store.put("b.home", garbage)
    r = client.get("/b/home")
    assert r.status_code == 200 and r.json()["page"] == "home"
    assert "cache-hit" not in r.headers
    assert app.state.calls["home"] == 1
    assert store.get("b.home").startswith(V2 + b"200 ")  # overwritten with a good record
    assert client.get("/b/home").headers["cache-hit"] == "true"


def test_record_format_is_readable_by_anyone(client, store):
    # The core's record format (include/httpcache.h, "HTTP response records"), read by hand.
    client.get("/sync?q=9")
    raw = store.get("sync")
    magic, counts, media_type, rest = raw.split(b"\n", 3)
    assert magic == b"HTTPCACHE-RESPONSE 2"
    status, nheaders, stored_at_ms, nvary = map(int, counts.split(b" "))
    assert status == 203 and media_type == b"text/html" and nvary == 0
    assert abs(stored_at_ms / 1000 - time.time()) < 10
    lines = rest.split(b"\n", nheaders)
    headers, body = lines[:nheaders], lines[nheaders]
    assert b"x-custom: kept" in headers
    assert b"etag: " + _httpcache.http_strong_etag(b"<p>9 1</p>") in headers
    assert not any(h.startswith((b"content-length:", b"cache-control:", b"expires:", b"date:")) for h in headers)
    assert body == b"<p>9 1</p>"
    assert _httpcache.response_decode(raw) == (203, b"text/html", [tuple(h.split(b": ", 1)) for h in headers], body)


def test_record_written_by_another_program_is_served(client, app, store):
    # What a C program would store with httpcache_response_encode().
    record = _httpcache.response_encode(
        200, b"application/xml", [(b"content-type", b"application/xml; charset=latin-1"), (b"x-from", b"c")], b"<a/>"
    )
    store.put("b.home", record)
    r = client.get("/b/home")
    assert r.status_code == 200 and r.content == b"<a/>"
    assert r.headers["content-type"] == "application/xml; charset=latin-1"
    assert r.headers["x-from"] == "c" and r.headers["cache-hit"] == "true"
    assert app.state.calls.get("home") is None


def test_unrecordable_response_is_not_stored(client, app, store, warnings_log):
    # A header value the record format refuses (a raw CR/LF smuggled past Starlette).
    @app.get("/bad-header")
    @cache(key="bad-header", ttl_in_seconds=60)
    async def bad_header():
        r = JSONResponse({"n": 1})
        r.raw_headers.append((b"x-bad", b"a\rb"))
        return r

    assert client.get("/bad-header").status_code == 200
    assert store.get("bad-header") is None
    assert any("cannot be recorded" in w.getMessage() for w in warnings_log())


def test_example_app_serves_cached_responses(backend, namespace, monkeypatch):
    import importlib
    import sys

    monkeypatch.setenv("HTTPCACHE_NAMESPACE", namespace)
    if backend.startswith("redis"):
        monkeypatch.setenv("REDIS_URL", backend)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    sys.modules.pop("examples.app", None)
    sys.modules.pop("app", None)
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[2]))
    example = importlib.import_module("examples.app")
    with TestClient(example.app) as c:
        for path in ["/b/home", "/b/welcome", "/b/logged-in", "/b/ttl_callable"]:
            first, second = c.get(path), c.get(path)
            assert first.status_code == 200 and first.content == second.content
            assert "cache-hit" not in first.headers and second.headers["cache-hit"] == "true"
            assert "max-age=" in second.headers["cache-control"] and "expires" in second.headers
            assert ("private" in second.headers["cache-control"]) == (path == "/b/logged-in")
        assert c.get("/b/home").json()["page"] == "home"
        assert c.get("/b/welcome").json()["page"] == "welcome"
        assert c.post("/b/logged-in").status_code == 200
        assert "cache-hit" not in c.get("/b/logged-in").headers
        assert c.get("/b/cache-me/21").json() == {"result": 42, "computed": 1}
        assert c.get("/b/cache-me/21").json() == {"result": 42, "computed": 1}
        # The example attaches with freeze_gc=True: frozen once started. (Undone below: this
        # test process goes on.)
        import gc

        assert gc.get_freeze_count() > 0
    gc.unfreeze()
    sys.modules.pop("examples.app", None)


def test_hits_of_a_fixed_key_are_independent_responses(store):
    """Hits on unchanged bytes copy a memoized response: each caller still gets its own object,
    and what one caller changes on it never reaches the next."""
    import asyncio

    n = {"calls": 0}

    @cache(key="memo", ttl_in_seconds=60)
    async def page():
        n["calls"] += 1
        return JSONResponse({"v": n["calls"]}, headers={"x-kept": "1"})

    async def run():
        await page()
        first = await page()
        first.headers["x-added-by-caller"] = "leak?"
        first.raw_headers.append((b"x-raw", b"leak?"))
        first.background = "set by FastAPI"
        first.status_code = 500
        second = await page()
        return first, second

    first, second = asyncio.run(run())
    assert second is not first and second.raw_headers is not first.raw_headers
    assert second.status_code == 200 and second.background is None
    names = [k for k, _ in second.raw_headers]
    assert b"x-added-by-caller" not in names and b"x-raw" not in names
    assert names.count(b"cache-hit") == names.count(b"cache-control") == names.count(b"expires") == 1
    assert second.headers["x-kept"] == "1" and second.body == b'{"v":1}'
    # New bytes under the key: the next hit serves them, not the memo.
    HTTPCache.handle(store.namespace).cache.invalidate([b"memo"])

    async def again():
        await page()
        return await page()

    assert asyncio.run(again()).body == b'{"v":2}'
