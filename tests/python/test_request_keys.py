"""Keys the way FastAPI apps key (issue 15): named fields bound to parameters (path, query,
Depends objects, mapping claims), the default key of a route request (method, path template,
path and sorted query parameters), key_builder=, private=, the seed's obj as a mapping, and the
warning for an @invalidate_cache that names a namespace no @cache of the process writes to.

The property behind each: no two requests that differ in what keys them share an entry."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import pytest
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpcache import HTTPCache, _httpcache, cache, invalidate_cache


@pytest.fixture(params=["memory", "redis"])
def url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


class User:
    def __init__(self, uid: str) -> None:
        self.id = uid


def current_user(x_user: Annotated[str, Header()]) -> User:
    return User(x_user)


def claims(x_user: Annotated[str, Header()]) -> dict:
    return {"sub": x_user, "scope": "read"}  # a decoded JWT payload


def _app(calls: list) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    @cache(key="rk.item.{item_id}", ttl_in_seconds=60)
    async def item(item_id: int):
        calls.append(("item", item_id))
        return {"id": item_id}

    @app.get("/mine")
    @cache(key="rk.mine.{user.id}", ttl_in_seconds=60, private=True)
    async def mine(user: Annotated[User, Depends(current_user)]):
        calls.append(("mine", user.id))
        return {"user": user.id}

    @app.get("/claims")
    @cache(key="rk.t.{claims.sub}", ttl_in_seconds=60)
    def by_claims(claims: Annotated[dict, Depends(claims)]):
        calls.append(("claims", claims["sub"]))
        return {"sub": claims["sub"]}

    @app.get("/seed-claims")
    @cache(key="rk.s.{}", obj="claims", obj_attr="sub", ttl_in_seconds=60)
    async def seed_claims(claims: Annotated[dict, Depends(claims)]):
        calls.append(("seed", claims["sub"]))
        return {"sub": claims["sub"]}

    @app.get("/search")
    @cache(ttl_in_seconds=60)
    async def search(q: str = "", page: int = 1, tag: Annotated[list[str], Query()] = []):  # noqa: B006
        calls.append(("search", q, page, tuple(tag)))
        return {"q": q, "page": page, "tag": tag}

    @app.get("/users/{uid}/posts/{pid}")
    @cache(ttl_in_seconds=60)
    async def post(uid: str, pid: str, tag: Annotated[list[str] | None, Query()] = None):
        calls.append(("post", uid, pid))
        return {"uid": uid, "pid": pid}

    @app.api_route("/both", methods=["GET", "HEAD"])
    @cache(ttl_in_seconds=60)
    async def both(q: str = ""):
        calls.append(("both", q))
        return {"q": q}

    @app.post("/items/{item_id}")
    @invalidate_cache(key="rk.item.{item_id}")
    async def update(item_id: int):
        return {"updated": item_id}

    return app


def _serve(url: str, namespace: str, make_app):
    """HTTPCache on `url`, and a TestClient of the app make_app(calls) builds: (client, calls)."""
    HTTPCache.init(url, namespace=namespace)
    calls: list = []
    with TestClient(make_app(calls)) as client:
        yield client, calls


@pytest.fixture
def setup(url, namespace):
    yield from _serve(url, namespace, _app)


def test_path_parameter_keys(setup):
    client, calls = setup
    for _ in range(2):
        assert client.get("/items/1").json() == {"id": 1}
        assert client.get("/items/2").json() == {"id": 2}
    assert calls == [("item", 1), ("item", 2)]
    r = client.get("/items/1")
    assert r.headers["cache-hit"] == "true" and not r.headers["cache-control"].startswith("private")
    assert HTTPCache.handle().cache.get(b"rk.item.1")[0]
    client.post("/items/1")  # @invalidate_cache(key="rk.item.{item_id}")
    assert client.get("/items/1").json() == {"id": 1}
    assert calls == [("item", 1), ("item", 2), ("item", 1)]


def test_depends_user_and_mapping_claims(setup):
    client, calls = setup
    for _ in range(2):
        for who in ("alice", "bob"):
            assert client.get("/mine", headers={"x-user": who}).json() == {"user": who}
            assert client.get("/claims", headers={"x-user": who}).json() == {"sub": who}
            assert client.get("/seed-claims", headers={"x-user": who}).json() == {"sub": who}
    assert sorted(calls) == sorted(
        [(k, w) for k in ("mine", "claims", "seed") for w in ("alice", "bob")]
    ), "one computation per user and route, then hits"
    r = client.get("/mine", headers={"x-user": "alice"})
    assert r.headers["cache-control"].startswith("private")  # private=True
    seed = client.get("/seed-claims", headers={"x-user": "alice"})
    assert seed.headers["cache-control"].startswith("private")  # obj: private by default
    # A field that reads into an argument (a JWT's claims) tells callers apart: private by default.
    assert client.get("/claims", headers={"x-user": "alice"}).headers["cache-control"].startswith("private")


def test_default_key_holds_path_and_sorted_query(setup, namespace):
    client, calls = setup
    assert client.get("/search?q=a&page=2").json()["page"] == 2
    assert client.get("/search?q=a&page=3").json()["page"] == 3
    assert client.get("/search?page=2&q=a").headers["cache-hit"] == "true"  # sorted: the same entry
    assert len(calls) == 2
    # Repeated names keep their order: a handler reading the list may depend on it.
    client.get("/users/u1/posts/p1?tag=x&tag=y")
    client.get("/users/u1/posts/p1?tag=y&tag=x")
    client.get("/users/u1/posts/p2?tag=x&tag=y")
    assert [c for c in calls if c[0] == "post"] == [("post", "u1", "p1")] * 2 + [("post", "u1", "p2")]
    assert HTTPCache.handle().cache.get(b"GET /search?page%3D2%26q%3Da")[0]
    assert HTTPCache.handle().cache.get(b"GET /users/u1/posts/p1?tag%3Dx%26tag%3Dy")[0]


def test_default_key_never_serves_a_request_with_credentials(setup, warnings_log):
    client, calls = setup
    for _ in range(3):
        client.get("/search?q=a", headers={"authorization": "Bearer alice"})
    assert len(calls) == 3
    assert len(warnings_log()) == 1 and "Authorization" in warnings_log()[0].getMessage()


def test_head_shares_the_get_entry(setup):
    client, calls = setup
    client.get("/both?q=h")
    r = client.head("/both?q=h")
    assert r.status_code == 200 and r.headers["cache-hit"] == "true"
    assert len(calls) == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    uid=st.text(min_size=1, max_size=8).filter(lambda s: "/" not in s and s not in (".", "..")),
    query=st.lists(st.tuples(st.text(min_size=1, max_size=4), st.text(max_size=4)), max_size=3),
)
def test_no_two_requests_share_a_default_entry(setup, uid, query):
    """Whatever the path parameter and the query, a response always echoes its own request."""
    client, _ = setup
    r = client.get(f"/users/{quote(uid, safe='')}/posts/p", params=query)
    assert r.status_code == 200 and r.json() == {"uid": uid, "pid": "p"}
    params = [("q", q) for q, _ in query[:1]] + [("tag", t) for _, t in query]
    r = client.get("/search", params=params)
    expected = {"q": query[0][0] if query else "", "page": 1, "tag": [t for _, t in query]}
    assert r.json() == expected, "served another query's entry"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.text(min_size=1, max_size=6), b=st.text(min_size=1, max_size=6))
def test_named_fields_are_injective(setup, a, b):
    @cache(key="rk.pair.{a}.{b}", ttl_in_seconds=60)
    def pair(a: str, b: str) -> tuple[str, str]:
        return a, b

    assert pair(a, b) == (a, b) and pair(a, b) == (a, b)


def test_named_fields_read_attributes_mappings_keywords_and_defaults(setup):
    calls = []

    class Org:
        def __init__(self, slug):
            self.slug = slug

    @cache(key="rk.org.{org.slug}.{opts.lang}.{n}", ttl_in_seconds=60)
    def f(org, opts, n=5):
        calls.append((org.slug, opts["lang"], n))
        return [org.slug, opts["lang"], n]

    assert f(Org("acme"), {"lang": "fr"}) == ["acme", "fr", 5]
    assert f(org=Org("acme"), opts={"lang": "fr"}, n=5) == ["acme", "fr", 5]
    assert f(Org("acme"), {"lang": "en"}) == ["acme", "en", 5]
    assert HTTPCache.handle().cache.get(b"rk.org.acme.fr.5")[0]
    # A missing field (no "lang") runs uncached rather than share an entry.
    calls.clear()

    @cache(key="rk.org2.{opts.lang}", ttl_in_seconds=60)
    def g(opts):
        calls.append(1)
        return 1

    g({}), g({}), g({"lang": None}), g({"lang": None})
    assert calls == [1, 1, 1, 1]


def test_named_field_errors_at_decoration():
    with pytest.raises(ValueError, match="not a parameter"):
        cache(key="x.{nope}")(lambda a: a)
    with pytest.raises(ValueError, match="cannot mix"):
        cache(key="x.{a}.{}")(lambda a: a)
    with pytest.raises(ValueError, match="named fields"):
        cache(key="x.{a}", obj="a", obj_attr="id")(lambda a: a)
    with pytest.raises(ValueError, match="key_builder"):
        cache(key="x", key_builder=lambda: "k")(lambda: 1)
    with pytest.raises(TypeError, match="private must be a bool"):
        cache(key="x", private="yes")(lambda: 1)


def test_key_builder(setup, warnings_log):
    calls = []

    @cache(key_builder=lambda region, day: None if region == "skip" else f"rk.report:{region}:{day}", ttl_in_seconds=60)
    def report(region, day):
        calls.append(region)
        return {"region": region, "day": day}

    report("eu", 1), report("eu", 1), report("us", 1), report("skip", 1), report("skip", 1)
    assert calls == ["eu", "us", "skip", "skip"]
    # The builder's key is a value of the function's own template: it can reach no other @cache.
    own = f"{report.__module__}.{report.__qualname__}[{{}}]".encode()
    assert HTTPCache.handle().cache.get(_httpcache.key_format(own, [b"rk.report:eu:1"]))[0]

    @cache(key_builder=lambda: 42, ttl_in_seconds=60)
    def bad():
        calls.append("bad")
        return 1

    bad(), bad()
    assert calls[-2:] == ["bad", "bad"]
    assert len(warnings_log()) == 1 and "key_builder returned 42" in warnings_log()[0].getMessage()


def test_default_key_of_a_direct_call(setup, warnings_log):
    calls = []

    @cache(ttl_in_seconds=60)
    def area(w: int, h: int = 2) -> int:
        calls.append((w, h))
        return w * h

    assert area(3) == 6 and area(3, 2) == 6 and area(w=3) == 6 and area(4) == 8
    assert calls == [(3, 2), (4, 2)]

    @cache(ttl_in_seconds=60)
    def opaque(o):
        calls.append("o")
        return 1

    opaque(object()), opaque(object())
    assert calls[-2:] == ["o", "o"] and "not all JSON values" in warnings_log()[0].getMessage()


def test_invalidate_in_a_namespace_no_cache_uses_warns_once(url, namespace, warnings_log):
    HTTPCache.init(url, namespace=namespace)

    @cache(key="rk.ns.{uid}", ttl_in_seconds=60)
    def read(uid):
        return uid

    @invalidate_cache(key="rk.ns.{uid}", namespace="elsewhere_ns")
    def wrong(uid):
        return uid

    @invalidate_cache(key="rk.ns.{uid}")
    def right(uid):
        return uid

    right(1), right(2)
    assert not warnings_log()
    wrong(1), wrong(2)
    texts = [r.getMessage() for r in warnings_log()]
    assert len(texts) == 1 and "'elsewhere_ns'" in texts[0] and repr(namespace) in texts[0]


# -- what a default key must never cover (a fresh-eyes review's reproductions)


def _review_app(calls: list) -> FastAPI:
    app = FastAPI()

    @cache(ttl_in_seconds=60)
    async def get_settings():
        calls.append("settings")
        return {"flag": True}

    @cache(ttl_in_seconds=60)
    async def get_counts():
        calls.append("counts")
        return {"n": 3}

    @app.get("/deps")
    async def deps(s: dict = Depends(get_settings), c: dict = Depends(get_counts)):  # local: no Annotated
        return {"s": s, "c": c}

    @app.post("/search")
    @cache(ttl_in_seconds=60)
    async def search_post(body: dict):
        calls.append("post")
        return {"results_for": body.get("q")}

    @app.get("/lang")
    @cache(ttl_in_seconds=60)
    async def lang(accept_language: Annotated[str, Header()] = "en"):
        calls.append("lang")
        return {"hello": "bonjour" if accept_language == "fr" else "hello"}

    def session_user(request: Request) -> str:
        return request.cookies.get("sid", "anon")

    @app.get("/account")
    @cache(ttl_in_seconds=60)
    async def account(user: str = Depends(session_user)):
        calls.append("account")
        return {"user": user}

    def rate_limit(response: Response) -> None:
        calls.append("limit")
        response.headers["x-ratelimit-remaining"] = str(100 - calls.count("limit"))
        response.set_cookie("csrftoken", "tok")

    @app.get("/limited", dependencies=[Depends(rate_limit)])
    @cache(key="rk.limited", ttl_in_seconds=60)
    async def limited(response: Response):
        calls.append("limited")
        response.headers["x-handler"] = "yes"
        return {"ok": True}

    @app.api_route("/headable", methods=["GET", "HEAD"])
    @cache(key="rk.headable", ttl_in_seconds=60)
    async def headable(request: Request):
        calls.append(request.method)
        return Response(b"" if request.method == "HEAD" else b"full body", media_type="text/plain")

    return app


@pytest.fixture
def review(url, namespace):
    yield from _serve(url, namespace, _review_app)


def test_cached_dependencies_are_plain_functions_not_the_route(review):
    client, calls = review
    for _ in range(3):
        assert client.get("/deps").json() == {"s": {"flag": True}, "c": {"n": 3}}
    assert calls == ["settings", "counts"], "each dependency cached under its own key, as itself"


def test_no_default_key_where_the_response_can_depend_on_the_caller(review, warnings_log):
    client, calls = review
    assert client.post("/search", json={"q": "cats"}).json() == {"results_for": "cats"}
    assert client.post("/search", json={"q": "dogs"}).json() == {"results_for": "dogs"}
    assert client.get("/lang", headers={"accept-language": "en"}).json() == {"hello": "hello"}
    assert client.get("/lang", headers={"accept-language": "fr"}).json() == {"hello": "bonjour"}
    client.cookies.set("sid", "alice")
    assert client.get("/account").json() == {"user": "alice"}
    client.cookies.set("sid", "bob")
    assert client.get("/account").json() == {"user": "bob"}
    assert calls == ["post", "post", "lang", "lang", "account", "account"]
    texts = " | ".join(r.getMessage() for r in warnings_log())
    for why in ("POST request", "reads a header", "reads the Request"):
        assert why in texts, texts


def test_private_without_a_user_field_is_refused():
    with pytest.raises(ValueError, match="private=True needs a key naming the user"):
        cache(private=True)(lambda: 1)


def test_dependency_headers_are_this_requests_never_stored(review):
    client, calls = review
    first = client.get("/limited")
    second = client.get("/limited")
    assert second.headers["cache-hit"] == "true" and calls.count("limited") == 1
    assert first.headers["x-ratelimit-remaining"] == "99" and second.headers["x-ratelimit-remaining"] == "98"
    assert first.headers["x-handler"] == second.headers["x-handler"] == "yes"
    assert "csrftoken=tok" in first.headers["set-cookie"] and "csrftoken=tok" in second.headers["set-cookie"]
    stored = HTTPCache.handle().cache.get(b"rk.limited")[0]
    assert b"x-handler" in stored and b"ratelimit" not in stored and b"csrftoken" not in stored


def test_a_response_computed_for_head_is_not_stored(review):
    client, calls = review
    assert client.head("/headable").status_code == 200
    r = client.get("/headable")
    assert r.content == b"full body" and "cache-hit" not in r.headers
    assert client.get("/headable").headers["cache-hit"] == "true"
    assert client.head("/headable").headers["cache-hit"] == "true"  # HEAD is served from the GET entry
    assert calls == ["HEAD", "GET"]


def test_direct_call_default_keys_keep_argument_types(setup, warnings_log):
    calls = []

    @cache(ttl_in_seconds=60)
    def kind(x):
        calls.append(x)
        return type(x).__name__

    assert kind([1, 2]) == "list" and kind([1, 2]) == "list"
    assert kind((1, 2)) == "tuple" and kind((1, 2)) == "tuple"  # not the list's entry: uncached
    assert kind({"1": "a"}) == "dict" and kind({1: "a"}) == "dict"
    assert calls == [[1, 2], (1, 2), (1, 2), {"1": "a"}, {1: "a"}]


def test_key_builder_cannot_reach_another_decorators_key(setup):
    @cache(key="rk.search-{uid}", ttl_in_seconds=60)
    def user(uid: str):
        return {"user": uid}

    @cache(key_builder=lambda q: f"rk.search-{q}", ttl_in_seconds=60)
    def search(q: str):
        return {"results_for": q}

    assert search("42") == {"results_for": "42"}
    assert user("42") == {"user": "42"}
    assert search("42") == {"results_for": "42"}


def test_a_condition_that_raises_returns_the_result_uncached(setup, warnings_log):
    calls = []

    @cache(key="rk.cond", ttl_in_seconds=60, condition=lambda r: r["ok"])
    def f():
        calls.append(1)
        return {"missing": True}

    assert f() == {"missing": True} and f() == {"missing": True}
    assert len(calls) == 2 and len(warnings_log()) == 1 and "KeyError" in warnings_log()[0].getMessage()
