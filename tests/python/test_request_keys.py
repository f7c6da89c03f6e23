"""Keys the way FastAPI apps key (issue 15): named fields bound to parameters (path, query,
Depends objects, mapping claims), the default key of a route request (method, path template,
path and sorted query parameters), key_builder=, private=, the seed's obj as a mapping, and the
warning for an @invalidate_cache that names a namespace no @cache of the process writes to.

The property behind each: no two requests that differ in what keys them share an entry."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import pytest
from fastapi import Depends, FastAPI, Header, Request
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpcache import HTTPCache, cache, invalidate_cache


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
    async def search(request: Request, q: str = "", page: int = 1):
        calls.append(("search", str(request.query_params)))
        return {"q": q, "page": page, "all": sorted(request.query_params.multi_items())}

    @app.get("/users/{uid}/posts/{pid}")
    @cache(ttl_in_seconds=60)
    async def post(uid: str, pid: str, tag: list[str] | None = None):
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


@pytest.fixture
def setup(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    calls: list = []
    with TestClient(_app(calls)) as client:
        yield client, calls


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
    assert not client.get("/claims", headers={"x-user": "alice"}).headers["cache-control"].startswith("private")


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
    r = client.get("/search", params=query)
    assert r.json()["all"] == sorted([list(kv) for kv in query]), "served another query's entry"


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
    assert HTTPCache.handle().cache.get(b"rk.report:eu:1")[0]

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
    assert calls[-2:] == ["o", "o"] and "not JSON values" in warnings_log()[0].getMessage()


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
