"""Variants (issue 16, RFC 9111 section 4.1): ``@cache(vary=["Accept-Language"])`` gives each
variant of a response its own entry, keyed by the request's values of the varied headers as the
core encodes them (``httpcache_http_variant``), and lets a response whose ``Vary`` names only
those be stored; any other ``Vary`` is still not stored. Against a real FastAPI app (TestClient)
on memory:// and Redis, sync and async handlers, and a hypothesis property: two requests share a
variant only when their varied header values are equal."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from httpcache import HTTPCache, _httpcache, cache

GREETING = {"en": "hello", "fr": "bonjour"}


@pytest.fixture(params=["memory", "redis"])
def url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


def make_app(calls: list[str]) -> FastAPI:
    app = FastAPI()

    def greet(request: Request, response: Response, where: str) -> dict:
        lang = request.headers.get("accept-language", "en")
        calls.append(f"{where}:{lang}")
        response.headers["vary"] = "Accept-Language"
        return {"greeting": GREETING.get(lang, "hello"), "lang": lang}

    @app.get("/async")
    @cache(key="vy.async", ttl_in_seconds=60, vary=["Accept-Language"])
    async def greet_async(request: Request, response: Response):
        return greet(request, response, "async")

    @app.get("/sync")
    @cache(key="vy.sync", ttl_in_seconds=60, vary=["accept-language"])
    def greet_sync(request: Request, response: Response):
        return greet(request, response, "sync")

    @app.get("/undeclared")
    @cache(key="vy.undeclared", ttl_in_seconds=60)
    async def undeclared(request: Request, response: Response):
        return greet(request, response, "undeclared")

    return app


@pytest.mark.parametrize("path", ["/async", "/sync"])
def test_each_variant_has_its_own_entry(url, namespace, path):
    HTTPCache.init(url, namespace=namespace)
    calls: list[str] = []
    client = TestClient(make_app(calls))
    answers = [client.get(path, headers=h).json() for h in (
        {"accept-language": "en"}, {"accept-language": "fr"}, {"accept-language": "en"}, {}, {"accept-language": "fr"}, {},
    )]
    assert [a["greeting"] for a in answers] == ["hello", "bonjour", "hello", "hello", "bonjour", "hello"]
    assert [a["lang"] for a in answers] == ["en", "fr", "en", "en", "fr", "en"]
    assert len(calls) == 3  # en, fr and "no header": three variants, each computed once
    hit = client.get(path, headers={"accept-language": "fr"})
    assert hit.headers.get("cache-hit") == "true" and hit.headers["vary"] == "Accept-Language"


def test_an_undeclared_vary_is_not_stored(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    calls: list[str] = []
    client = TestClient(make_app(calls))
    for lang in ("en", "fr", "en"):
        assert client.get("/undeclared", headers={"accept-language": lang}).json()["lang"] == lang
    assert len(calls) == 3


@settings(max_examples=300, deadline=None)
@given(
    a=st.lists(st.tuples(st.sampled_from(["accept-language", "x-tenant", "other"]), st.text(max_size=8)), max_size=4),
    b=st.lists(st.tuples(st.sampled_from(["accept-language", "x-tenant", "other"]), st.text(max_size=8)), max_size=4),
)
def test_variants_are_shared_only_by_equal_values(a, b):
    varied = ["X-Tenant", "accept-language"]

    def enc(headers):
        return [(n.encode(), v.encode("utf-8")) for n, v in headers]

    def values(headers):  # what the variant depends on: each varied header's values, trimmed, in order
        return tuple(tuple(v.strip(" \t") for n, v in headers if n == name) for name in ("accept-language", "x-tenant"))

    same = _httpcache.http_variant(enc(a), varied) == _httpcache.http_variant(enc(b), varied)
    joined = lambda h: tuple(", ".join(vs) if vs else None for vs in values(h))  # noqa: E731
    assert same == (joined(a) == joined(b))


def test_bad_vary_is_refused():
    with pytest.raises(TypeError):
        cache(key="k", vary="Accept-Language")
    with pytest.raises(ValueError):
        cache(key="k", vary=["not a token"])
