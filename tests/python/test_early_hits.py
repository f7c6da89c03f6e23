# SPDX-License-Identifier: MIT
"""HTTPCache.attach(): hits answered before routing, and only where that cannot change what a
client gets. Runs on memory://, one Redis server and the cluster, through FastAPI's TestClient.

Whether a request was routed is seen by counting APIRoute.handle() calls (patched on the class: a
route class of its own would make a route ineligible): an early hit never reaches it."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Host, Route, Router

from httpcache import HTTPCache, cache, invalidate_cache
from httpcache import _early_hits


class Counted:
    """Runs of each route's handler (routing reached it) and of each endpoint body."""

    def __init__(self) -> None:
        self.routed: dict[str, int] = {}
        self.ran: dict[str, int] = {}

    def run(self, name: str) -> int:
        self.ran[name] = self.ran.get(name, 0) + 1
        return self.ran[name]


def require_token(x_token: str | None = Header(default=None)) -> str:
    if x_token != "good":
        raise HTTPException(status_code=401, detail="no token")
    return x_token


class User:
    def __init__(self, id: str) -> None:
        self.id = id


def current_user(x_user: str = Header(default="anon")) -> User:
    return User(x_user)


@pytest.fixture
def counted(monkeypatch):
    counted = Counted()
    handle = APIRoute.handle

    async def counting_handle(self, scope, receive, send):
        counted.routed[self.path] = counted.routed.get(self.path, 0) + 1
        await handle(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", counting_handle)
    return counted


@pytest.fixture
def app(store, counted):
    app = FastAPI()
    HTTPCache.attach(app)

    @app.middleware("http")
    async def stamp(request: Request, call_next):
        response = await call_next(request)
        response.headers["x-middleware"] = "ran"
        return response

    @app.get("/home")
    @cache(key="home", ttl_in_seconds=60)
    async def home(request: Request, response: Response):
        return JSONResponse({"n": counted.run("home")}, headers={"x-own": "a"})

    @app.get("/short")
    @cache(key="short", ttl_in_seconds=1)
    async def short():
        return PlainTextResponse(f"short {counted.run('short')}")

    @app.get("/sync")
    @cache(key="sync", ttl_in_seconds=60)
    def sync_route():
        return PlainTextResponse(f"sync {counted.run('sync')}")

    @app.get("/number")
    @cache(key="number", ttl_in_seconds=60)
    async def number(q: int = 0):
        return JSONResponse({"q": q, "n": counted.run("number")})

    @app.post("/home")
    @invalidate_cache(key="home")
    async def post_home():
        return JSONResponse({"posted": True})

    @app.get("/secret", dependencies=[Depends(require_token)])
    @cache(key="secret", ttl_in_seconds=60)
    async def secret():
        return JSONResponse({"secret": counted.run("secret")})

    @app.get("/secret-param")
    @cache(key="secret-param", ttl_in_seconds=60)
    async def secret_param(token: str = Depends(require_token)):
        return JSONResponse({"secret": counted.run("secret_param")})

    @app.get("/header")
    @cache(key="header", ttl_in_seconds=60)
    async def header(x_lang: str = Header(default="en")):
        return JSONResponse({"lang": x_lang, "n": counted.run("header")})

    @app.get("/mine")
    @cache(key="mine.{}", obj="user", obj_attr="id", ttl_in_seconds=60)
    async def mine(user: User = Depends(current_user)):
        return JSONResponse({"user": user.id, "n": counted.run("mine")})

    @cache(key="helper", ttl_in_seconds=60)
    async def helper():
        return JSONResponse({"n": counted.run("helper")})

    @app.get("/calls-helper")
    async def calls_helper():
        counted.run("calls_helper")
        return await helper()

    @app.get("/dict")
    @cache(key="dict", ttl_in_seconds=60)
    async def plain_dict():
        return {"n": counted.run("dict")}

    guarded = APIRouter()

    @guarded.get("/guarded")
    @cache(key="guarded", ttl_in_seconds=60)
    async def guarded_route():
        return JSONResponse({"n": counted.run("guarded")})

    app.include_router(guarded, dependencies=[Depends(require_token)])

    open_router = APIRouter(prefix="/sub")

    @open_router.get("/page")
    @cache(key="sub.page", ttl_in_seconds=60)
    async def sub_page():
        return JSONResponse({"n": counted.run("sub_page")})

    app.include_router(open_router)
    return app


def _comparable(response) -> dict:
    """Headers that must be equal between two hits of one entry (expires may tick over)."""
    return {k: v for k, v in response.headers.items() if k not in ("expires", "cache-control")}


def test_hit_is_answered_before_routing_with_the_decorators_response(client, counted, store):
    first = client.get("/home")  # stored by the decorator, and learned
    assert counted.routed["/home"] == 1
    second = client.get("/home")
    third = client.get("/home")
    assert counted.routed["/home"] == 1, "hits must not be routed"
    assert counted.ran["home"] == 1
    for r in (second, third):
        assert r.status_code == 200
        assert r.content == first.content
        assert r.headers["cache-hit"] == "true"
        assert r.headers["x-own"] == "a"
        assert r.headers["x-middleware"] == "ran", "the app's middleware runs for early hits"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["content-length"] == str(len(first.content))
        assert r.headers["cache-control"].startswith("max-age=")
    # An app without attach() on the same entry gives the decorator's own hit: the reference.
    reference = FastAPI()

    @reference.get("/home")
    @cache(key="home", ttl_in_seconds=60)
    async def home():
        raise AssertionError("the entry exists: never called")

    @reference.middleware("http")
    async def stamp(request: Request, call_next):
        response = await call_next(request)
        response.headers["x-middleware"] = "ran"
        return response

    with TestClient(reference) as ref_client:
        routed_hit = ref_client.get("/home")
    assert routed_hit.content == third.content
    assert list(_comparable(routed_hit).items()) == list(_comparable(third).items())
    assert abs(int(routed_hit.headers["cache-control"].split("=")[1]) - int(third.headers["cache-control"].split("=")[1])) <= 1


def test_sync_endpoint_and_included_router_are_learned(client, counted):
    for path, name, route_path in (("/sync", "sync", "/sync"), ("/sub/page", "sub_page", "/sub/page")):
        first = client.get(path)
        again = client.get(path)
        assert again.content == first.content and again.headers["cache-hit"] == "true"
        assert counted.ran[name] == 1
        assert counted.routed[route_path] == 1, path


def test_invalidation_is_seen_at_once(client, counted, store):
    client.get("/home")
    client.get("/home")
    assert client.post("/home").status_code == 200
    after = client.get("/home")
    assert "cache-hit" not in after.headers
    assert after.json()["n"] == 2
    assert counted.ran["home"] == 2
    assert client.get("/home").headers["cache-hit"] == "true"


def test_a_def_route_is_stored_again_after_its_entry_is_gone(client, counted, store):
    """A learned def route whose entry was invalidated: the early GET's miss takes the key's lease
    in the loop's session, and the route computes in a worker thread with the blocking API. The
    early path gives that lease back first, or the route's store would be another holder's and
    refused on every request from then on."""
    client.get("/sync")
    assert client.get("/sync").headers["cache-hit"] == "true"
    stores = HTTPCache.stats()["stores"]
    for _ in range(2):
        assert HTTPCache.handle(store.namespace).cache.invalidate([b"sync"]) == 1
        recomputed = client.get("/sync")
        assert "cache-hit" not in recomputed.headers
        again = [client.get("/sync") for _ in range(3)]
        assert all(r.headers.get("cache-hit") == "true" and r.content == recomputed.content for r in again)
    assert counted.ran["sync"] == 3
    assert HTTPCache.stats()["stores"] == stores + 2


def test_expiry_is_seen(client, counted, store):
    import time

    from httpcache import CacheMiss

    client.get("/short")
    assert client.get("/short").headers["cache-hit"] == "true"
    # Waits for the event itself, the entry's expiry in the backend (its 1 s TTL), as the library
    # sees it, instead of sleeping a guessed time: then the early-hit path must see it too.
    cache = HTTPCache.handle(store.namespace).cache
    deadline = time.monotonic() + 10
    while True:
        try:
            cache.get(b"short")
        except CacheMiss:
            break
        assert time.monotonic() < deadline, "the 1 s entry never expired"
        time.sleep(0.02)
    expired = client.get("/short")
    assert "cache-hit" not in expired.headers
    assert counted.ran["short"] == 2


def test_a_miss_after_learning_costs_one_get(client, store):
    client.get("/home")
    client.get("/home")
    HTTPCache.handle(store.namespace).cache.invalidate([b"home"])
    before = HTTPCache.stats()
    client.get("/home")
    after = HTTPCache.stats()
    assert after["misses"] - before["misses"] == 1
    assert after["stores"] - before["stores"] == 1


def test_query_strings_are_learned_exactly(client, counted):
    assert client.get("/number?q=1").json()["q"] == 1
    assert client.get("/number?q=1").headers["cache-hit"] == "true"
    # The key is fixed, so the decorator serves the entry for ?q=2 as well, but only after
    # routing and validation: an invalid query must still fail validation.
    assert client.get("/number?q=abc").status_code == 422
    assert client.get("/number?q=2").headers["cache-hit"] == "true"
    assert counted.routed["/number"] == 3
    assert client.get("/number?q=2").headers["cache-hit"] == "true"
    assert counted.routed["/number"] == 3


@pytest.mark.parametrize("path", ["/secret", "/secret-param", "/guarded"])
def test_routes_with_dependencies_are_never_answered_early(client, counted, path):
    good = {"x-token": "good"}
    assert client.get(path, headers=good).status_code == 200
    assert client.get(path, headers=good).headers["cache-hit"] == "true"
    # The entry is cached and the path was served: a request without the token must still
    # be refused by the dependency.
    assert client.get(path).status_code == 401
    assert counted.routed[path] == 3


def test_per_user_keys_header_params_and_helpers_are_not_learned(client, counted):
    assert client.get("/mine", headers={"x-user": "alice"}).json()["user"] == "alice"
    assert client.get("/mine", headers={"x-user": "bob"}).json()["user"] == "bob"
    assert client.get("/mine", headers={"x-user": "alice"}).headers["cache-control"].startswith("private")
    assert counted.routed["/mine"] == 3
    client.get("/header", headers={"x-lang": "fr"})
    client.get("/header", headers={"x-lang": "fr"})
    assert counted.routed["/header"] == 2
    client.get("/calls-helper")
    client.get("/calls-helper")
    assert counted.ran["calls_helper"] == 2, "the endpoint is not the cached function: routed"
    client.get("/dict")
    client.get("/dict")
    assert counted.routed["/dict"] == 1, "stored as the response FastAPI sends: answered early too"


def test_backend_down_falls_through_uncached(counted, warnings_log):
    HTTPCache.init(redis_url="redis://127.0.0.1:1/0", namespace="early_down", connect_timeout_ms=100)
    try:
        app = FastAPI()
        HTTPCache.attach(app)

        @app.get("/home")
        @cache(key="home", ttl_in_seconds=60)
        async def home():
            return JSONResponse({"n": counted.run("home")})

        with TestClient(app) as c:
            assert [c.get("/home").json()["n"] for _ in range(3)] == [1, 2, 3]
    finally:
        HTTPCache.close()


def test_signature_table_is_bounded(client, monkeypatch, app, counted):
    monkeypatch.setattr(_early_hits, "MAX_SIGNATURES", 3)
    for q in range(6):
        client.get(f"/number?q={q}")
    early = app.router.middleware_stack
    assert isinstance(early, _early_hits.EarlyHits)
    assert len(early.signatures) == 3
    assert len(early.memos) <= 1, "one decoded copy per key, however many signatures"
    # The oldest were evicted: q=3..5 are answered early, q=0 is routed (and relearned).
    routed = counted.routed["/number"]
    client.get("/number?q=5")
    assert counted.routed["/number"] == routed
    client.get("/number?q=0")
    assert counted.routed["/number"] == routed + 1


def test_attach_twice_wraps_once_and_rejects_non_apps():
    app = FastAPI()
    assert HTTPCache.attach(app) is app
    first = app.router.middleware_stack
    HTTPCache.attach(app)
    assert app.router.middleware_stack is first
    with pytest.raises(TypeError, match="not a FastAPI/Starlette app"):
        HTTPCache.attach(object())


def test_starlette_app_and_host_routing(store, counted):
    async def endpoint_a(request):
        return PlainTextResponse(f"a {counted.run('a')}")

    async def endpoint_b(request):
        return PlainTextResponse(f"b {counted.run('b')}")

    cached_a = cache(key="host.a", ttl_in_seconds=60)(endpoint_a)
    cached_b = cache(key="host.b", ttl_in_seconds=60)(endpoint_b)
    app = Starlette(
        routes=[
            Host("a.example", app=Router([Route("/", cached_a)])),
            Host("b.example", app=Router([Route("/", cached_b)])),
            Route("/plain", cache(key="plain", ttl_in_seconds=60)(endpoint_a)),
        ]
    )
    HTTPCache.attach(app)
    with TestClient(app) as c:
        for _ in range(3):
            assert c.get("/", headers={"host": "a.example"}).text == "a 1"
            assert c.get("/", headers={"host": "b.example"}).text == "b 1"
        assert c.get("/plain").text == "a 2"
        assert c.get("/plain").headers["cache-hit"] == "true"
    early = app.router.middleware_stack
    # Host routes are answered by an inner router: only the top-level Route is learned.
    assert len(early.signatures) == 1


def _learn_then_count(c: TestClient, path: str, counted: Counted, name: str, **kw) -> int:
    """Requests `path` three times; returns how many times the endpoint body ran."""
    for _ in range(3):
        r = c.get(path, **kw)
        assert r.status_code == 200, (path, r.status_code, r.text)
    return counted.ran.get(name, 0)


def test_code_around_the_endpoint_keeps_routes_on_the_normal_path(store, counted):
    """A route class of its own, route middleware, a Host or Mount("") with middleware around
    an APIRouter with included routers, and app-level dependencies: all stay routed."""
    from starlette.middleware import Middleware

    seen: list[str] = []

    class Guard:
        def __init__(self, app, tag):
            self.app, self.tag = app, tag

        async def __call__(self, scope, receive, send):
            seen.append(self.tag)
            await self.app(scope, receive, send)

    class OwnRoute(APIRoute):
        pass

    app = FastAPI()
    HTTPCache.attach(app)
    custom = APIRouter(route_class=OwnRoute)

    @custom.get("/custom")
    @cache(key="custom", ttl_in_seconds=60)
    async def custom_route():
        return PlainTextResponse(f"c {counted.run('custom')}")

    app.include_router(custom)

    async def plain(request):
        return PlainTextResponse(f"p {counted.run('plain')}")

    app.router.routes.append(
        Route("/route-mw", cache(key="route-mw", ttl_in_seconds=60)(plain), middleware=[Middleware(Guard, tag="route")])
    )
    inner = APIRouter()
    leaf = APIRouter()

    @leaf.get("/leaf")
    @cache(key="leaf", ttl_in_seconds=60)
    async def leaf_route():
        return PlainTextResponse(f"l {counted.run('leaf')}")

    inner.include_router(leaf)
    from starlette.routing import Mount

    app.router.routes.append(Host("api.example", app=Guard(inner, "host")))
    app.router.routes.append(Mount("/m", routes=[], middleware=[]))  # a Mount must not confuse it
    app.router.routes.append(Mount("", app=Guard(inner, "mount")))
    with TestClient(app) as c:
        assert _learn_then_count(c, "/custom", counted, "custom") == 1
        assert counted.routed.get("/custom", 0) == 3, "a route class of its own: always routed"
        assert _learn_then_count(c, "/route-mw", counted, "plain") == 1
        assert seen.count("route") == 3, "route middleware runs for every request"
        seen.clear()
        assert _learn_then_count(c, "/leaf", counted, "leaf", headers={"host": "api.example"}) == 1
        assert seen.count("host") == 3
        seen.clear()
        assert _learn_then_count(c, "/leaf", counted, "leaf") == 1
        assert seen.count("mount") == 3
    assert app.router.middleware_stack.signatures == {}

    guarded_app = FastAPI(dependencies=[Depends(require_token)])
    HTTPCache.attach(guarded_app)

    @guarded_app.get("/app-dep")
    @cache(key="app-dep", ttl_in_seconds=60)
    async def app_dep():
        return PlainTextResponse(f"d {counted.run('app_dep')}")

    with TestClient(guarded_app) as c:
        assert _learn_then_count(c, "/app-dep", counted, "app_dep", headers={"x-token": "good"}) == 1
        assert c.get("/app-dep").status_code == 401


def test_attach_refuses_a_router_with_middleware_of_its_own():
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware

    with pytest.raises(TypeError, match="middleware of its own"):
        HTTPCache.attach(Router(routes=[], middleware=[Middleware(GZipMiddleware)]))
    HTTPCache.attach(FastAPI(max_body_size=1024))  # the request body limit is no obstacle


def test_head_redirect_and_405_after_learning_are_routed(client, counted):
    client.get("/home")
    client.get("/home")
    # FastAPI's GET routes do not answer HEAD: still routed, still refused.
    assert client.head("/home").status_code == 405
    assert client.get("/home/", follow_redirects=False).status_code in (307, 308)
    assert client.put("/home").status_code == 405
    assert counted.ran["home"] == 1


def test_routes_added_after_learning_are_seen(client, app, counted):
    client.get("/home")
    client.get("/home")
    early = app.router.middleware_stack
    assert early.signatures
    app.router.routes.insert(0, Route("/home", lambda request: PlainTextResponse("new route")))
    assert client.get("/home").text == "new route"
    assert client.get("/home").text == "new route"


def test_an_undecodable_value_is_recomputed_after_one_get(client, store, counted):
    client.get("/home")
    client.get("/home")
    HTTPCache.handle(store.namespace).cache.set(b"home", b"HTTPCACHE-RESPONSE 1\ngarbled", _httpcache_policy())
    before = HTTPCache.stats()
    fresh = client.get("/home")
    after = HTTPCache.stats()
    assert fresh.json()["n"] == 2 and "cache-hit" not in fresh.headers
    # The early GET found the garbled value (a hit for the core); the wrapper did not ask again.
    assert (after["hits"] - before["hits"], after["misses"] - before["misses"]) == (1, 0)
    assert after["stores"] - before["stores"] == 1
    assert client.get("/home").headers["cache-hit"] == "true"


def _httpcache_policy():
    from httpcache import _httpcache

    return _httpcache.Policy.seconds(60)


def test_each_request_gets_one_consistent_version(store, counted):
    """A request holds the response version it decoded across its awaits, even when another
    request decodes a newer (longer) one while it is sending."""
    import asyncio

    app = FastAPI()
    HTTPCache.attach(app)
    body = {"text": "short"}

    @app.get("/v")
    @cache(key="v", ttl_in_seconds=60)
    async def v():
        return PlainTextResponse(body["text"])

    with TestClient(app) as c:
        c.get("/v")
        c.get("/v")
    early = app.router.middleware_stack
    scope_template = {"type": "http", "method": "GET", "scheme": "http", "path": "/v", "raw_path": b"/v",
                      "query_string": b"", "root_path": "", "headers": [(b"host", b"testserver")],
                      "app": app, "http_version": "1.1", "server": ("testserver", 80), "client": ("c", 1)}
    handle = HTTPCache.handle(store.namespace)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run() -> list[dict]:
        first: list[dict] = []
        second: list[dict] = []

        async def send_second(message):
            second.append(message)

        async def send_first(message):
            first.append(message)
            if message["type"] == "http.response.start":
                # A newer, longer version arrives and is served to someone else meanwhile.
                from httpcache._codec import response_record

                handle.cache.set(b"v", response_record(PlainTextResponse("a much longer body"), False),
                                 _httpcache_policy())
                await early(dict(scope_template), receive, send_second)

        await early(dict(scope_template), receive, send_first)
        return [first, second]

    first, second = asyncio.run(run())
    for messages, text in ((first, b"short"), (second, b"a much longer body")):
        start, sent = messages
        assert sent["body"] == text
        assert dict(start["headers"])[b"content-length"] == str(len(text)).encode()


def test_verdict_is_taken_once_and_not_after_the_request():
    learn = _early_hits.Learning(("ns", b"k", 7, 3))
    token = _early_hits.learning.set(learn)
    try:
        assert _early_hits.early_verdict(b"k", "other") is None
        assert _early_hits.early_verdict(b"other", "ns") is None
        assert _early_hits.early_verdict(b"k", "ns") == (7, 3)
        assert _early_hits.early_verdict(b"k", "ns") is None
        learn.verdict = ("ns", b"k", 7, 3)
        learn.closed = True
        assert _early_hits.early_verdict(b"k", "ns") is None
        _early_hits.note_response(object(), b"k", "ns")
        assert learn.key is None
    finally:
        _early_hits.learning.reset(token)


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_gc_after_startup_only_when_asked(store, freeze):
    import gc

    from contextlib import asynccontextmanager

    started: list[int] = []

    @asynccontextmanager
    async def lifespan(app):
        started.append(gc.get_freeze_count())
        yield

    app = FastAPI(lifespan=lifespan)
    HTTPCache.attach(app, freeze_gc=freeze)
    gc.unfreeze()
    try:
        with TestClient(app):
            # Frozen after the start-up handlers ran (they saw nothing frozen yet).
            assert started == [0]
            assert (gc.get_freeze_count() > 0) is freeze
    finally:
        gc.unfreeze()
    with pytest.raises(TypeError, match="freeze_gc must be a bool"):
        HTTPCache.attach(FastAPI(), freeze_gc="yes")
