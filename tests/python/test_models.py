"""What FastAPI apps really return (issue 15): route handlers returning models, lists of models,
dataclasses and dicts of datetimes/UUIDs/Decimals/enums are cached as the response FastAPI
sends (response_model, status_code, response_class honoured; a hit sends the same bytes and
headers), and plain functions get back an equal value of the same type (by their return
annotation, or a coder=). Nothing is ever unpickled unless a coder says so."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import pickle
import uuid
from decimal import Decimal

import pytest
from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from httpcache import HTTPCache, _httpcache, cache
from httpcache._codec import MAGIC


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Item(BaseModel):
    id: int
    name: str


class Page(BaseModel):
    id: uuid.UUID
    at: dt.datetime
    price: Decimal
    color: Color
    items: list[Item]
    note: str | None = None


class User(BaseModel):
    name: str
    password: str


class PublicUser(BaseModel):
    name: str


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float
    label: str


PAGE = Page(
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    at=dt.datetime(2026, 12, 6, 7, 30, tzinfo=dt.timezone.utc),
    price=Decimal("19.90"),
    color=Color.BLUE,
    items=[Item(id=1, name="a"), Item(id=2, name="b")],
)
VOLATILE = {"cache-hit", "expires", "cache-control", "date", "age", "etag"}  # etag: checked on its own


@pytest.fixture(params=["memory", "redis"])
def url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


def _stable(headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.multi_items() if k not in VOLATILE]


def _app(calls: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/page", response_model=Page)
    @cache(key="tm.page", ttl_in_seconds=60)
    async def page():
        calls.append("page")
        return PAGE

    @app.get("/page-sync", response_model=Page)
    @cache(key="tm.page_sync", ttl_in_seconds=60)
    def page_sync():
        calls.append("page_sync")
        return PAGE

    @app.get("/annotated")
    @cache(key="tm.annotated", ttl_in_seconds=60)
    async def annotated() -> list[Item]:
        calls.append("annotated")
        return PAGE.items

    @app.get("/me", response_model=PublicUser)
    @cache(key="tm.me", ttl_in_seconds=60)
    async def me():
        calls.append("me")
        return User(name="ann", password="s3cret")

    @app.post("/made", status_code=201, response_model=Item)
    @cache(key="tm.made", ttl_in_seconds=60)
    async def made():
        calls.append("made")
        return Item(id=7, name="new")

    @app.get("/html", response_class=HTMLResponse)
    @cache(key="tm.html", ttl_in_seconds=60)
    async def html():
        calls.append("html")
        return "<p>hi</p>"

    @app.get("/text", response_class=PlainTextResponse)
    @cache(key="tm.text", ttl_in_seconds=60)
    def text():
        calls.append("text")
        return "plain"

    @app.get("/point")
    @cache(key="tm.point", ttl_in_seconds=60)
    async def point():
        calls.append("point")
        return Point(1, 2.5, "p")

    @app.get("/mixed")
    @cache(key="tm.mixed", ttl_in_seconds=60)
    async def mixed():
        calls.append("mixed")
        return {"at": PAGE.at, "id": PAGE.id, "price": PAGE.price, "color": Color.RED, "tags": {"x"}}

    @app.get("/accepted", response_model=Item)
    @cache(key="tm.accepted", ttl_in_seconds=60)
    async def accepted(response: Response):
        calls.append("accepted")
        response.status_code = 202
        response.headers["x-origin"] = "handler"
        return Item(id=3, name="queued")

    @app.get("/invalid", response_model=Item)
    @cache(key="tm.invalid", ttl_in_seconds=60)
    async def invalid():
        calls.append("invalid")
        return {"id": "not a number", "name": 1}

    @app.get("/none", response_model=Page, response_model_exclude_none=True)
    @cache(key="tm.none", ttl_in_seconds=60)
    async def none():
        calls.append("none")
        return PAGE

    return app


ROUTES = [
    ("get", "/page", "page", 200),
    ("get", "/page-sync", "page_sync", 200),
    ("get", "/annotated", "annotated", 200),
    ("get", "/me", "me", 200),
    ("post", "/made", "made", 201),
    ("get", "/html", "html", 200),
    ("get", "/text", "text", 200),
    ("get", "/point", "point", 200),
    ("get", "/mixed", "mixed", 200),
    ("get", "/accepted", "accepted", 202),
    ("get", "/none", "none", 200),
]


@pytest.mark.parametrize("method,path,key,status", ROUTES, ids=[r[1] for r in ROUTES])
def test_route_results_are_cached_as_the_response_fastapi_sends(url, namespace, method, path, key, status, warnings_log):
    HTTPCache.init(url, namespace=namespace)
    calls: list[str] = []
    app = _app(calls)
    with TestClient(app) as client:
        # What FastAPI sends for this handler without the cache: the reference bytes.
        HTTPCache.enabled = False
        try:
            reference = getattr(client, method)(path)
        finally:
            HTTPCache.enabled = True
        miss = getattr(client, method)(path)
        hit = getattr(client, method)(path)
    assert reference.status_code == miss.status_code == hit.status_code == status
    assert reference.content == miss.content == hit.content
    assert _stable(reference.headers) == _stable(miss.headers) == _stable(hit.headers)
    assert "cache-hit" not in miss.headers and hit.headers["cache-hit"] == "true"
    assert miss.headers["etag"] == hit.headers["etag"] == _httpcache.http_strong_etag(reference.content).decode()
    assert hit.headers["cache-control"] == miss.headers["cache-control"] == "max-age=60" or hit.headers[
        "cache-control"
    ].startswith("max-age=")
    assert calls == [key, key], "the reference and the miss ran the handler, the hit did not"
    stored = HTTPCache.handle().cache.get(f"tm.{key}".encode())[0]
    assert stored.startswith(b"HTTPCACHE-RESPONSE 2\n")
    assert _httpcache.response_decode(stored)[3] == reference.content
    assert not warnings_log()


def test_response_model_filters_what_is_stored(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    with TestClient(_app([])) as client:
        assert client.get("/me").json() == {"name": "ann"}
        assert client.get("/me").json() == {"name": "ann"}
    assert b"s3cret" not in HTTPCache.handle().cache.get(b"tm.me")[0]


def test_a_result_fastapi_refuses_is_not_stored(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    calls: list[str] = []
    with TestClient(_app(calls), raise_server_exceptions=False) as client:
        assert client.get("/invalid").status_code == 500
        assert client.get("/invalid").status_code == 500
    assert calls == ["invalid", "invalid"]
    with pytest.raises(_httpcache.CacheMiss):
        HTTPCache.handle().cache.get(b"tm.invalid")


# -- plain functions: an equal value of the same type


@dataclasses.dataclass
class Box:
    points: list[Point]
    when: dt.date


VALUES = [
    ("model", Page, PAGE),
    ("models", list[Item], PAGE.items),
    ("dataclass", Box, Box([Point(1, 2.0, "a")], dt.date(2026, 1, 2))),
    ("tuple", tuple[int, str, float], (1, "a", 2.5)),
    ("set", set[str], {"a", "b", "c"}),
    ("frozenset", frozenset[int], frozenset({1, 2})),
    ("datetime", dt.datetime, dt.datetime(2026, 12, 6, 8, 0, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    ("naive", dt.datetime, dt.datetime(2026, 12, 6, 8, 0)),
    ("uuid", uuid.UUID, uuid.uuid4()),
    ("decimal", Decimal, Decimal("1.10")),
    ("enum", Color, Color.RED),
    ("dict", dict[str, dt.date], {"a": dt.date(2020, 2, 29)}),
    ("nested tuple", tuple[tuple[int, int], ...], ((1, 2), (3, 4))),
]


def _typed(kind, annotation, calls, is_async):
    if is_async:
        async def f(x: int):
            calls.append(x)
            return VALUES_BY_KIND[kind]
    else:
        def f(x: int):
            calls.append(x)
            return VALUES_BY_KIND[kind]
    f.__annotations__["return"] = annotation
    f.__qualname__ = f"typed_{kind.replace(' ', '_')}"
    return cache(key=f"typed.{kind.replace(' ', '_')}.{{x}}", ttl_in_seconds=60)(f)


VALUES_BY_KIND = {kind: value for kind, _, value in VALUES}


@pytest.mark.parametrize("kind,annotation,value", VALUES, ids=[v[0] for v in VALUES])
async def test_plain_results_come_back_equal_and_of_the_same_type(url, namespace, kind, annotation, value, warnings_log):
    HTTPCache.init(url, namespace=namespace)
    calls: list[int] = []
    f = _typed(kind, annotation, calls, is_async=False)
    g = _typed(kind + " async", annotation, calls, is_async=True)
    VALUES_BY_KIND[kind + " async"] = value
    for _ in range(3):
        got = f(1)
        assert got == value and type(got) is type(value)
        got = await g(2)
        assert got == value and type(got) is type(value)
    assert calls == [1, 2]
    stored = HTTPCache.handle().cache.get(f"typed.{kind.replace(' ', '_')}.1".encode())[0]
    json.loads(stored)  # plain JSON: readable by any program
    assert not warnings_log()


async def test_forged_entry_is_a_miss_not_an_object_of_its_choosing(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    calls: list[int] = []

    @cache(key="tm.forged.{x}", ttl_in_seconds=60)
    def f(x: int) -> Item:
        calls.append(x)
        return Item(id=x, name="real")

    HTTPCache.handle().cache.set(b"tm.forged.1", b'{"id":"x"}', _httpcache.Policy.seconds(60))
    assert f(1) == Item(id=1, name="real")
    assert f(1) == Item(id=1, name="real")
    assert calls == [1]  # recomputed once over the forged entry, then a hit


class _Armed:
    fired = False

    def __reduce__(self):
        return (_fire, ())


def _fire():
    _Armed.fired = True
    return "pwned"


async def test_a_pickle_in_the_store_is_never_unpickled(url, namespace):
    HTTPCache.init(url, namespace=namespace)

    @cache(key="tm.nopickle", ttl_in_seconds=60)
    async def f():
        return "safe"

    @cache(key="tm.nopickle_typed", ttl_in_seconds=60)
    async def g() -> Item:
        return Item(id=1, name="safe")

    payload = pickle.dumps(_Armed())
    for key in (b"tm.nopickle", b"tm.nopickle_typed"):
        HTTPCache.handle().cache.set(key, payload, _httpcache.Policy.seconds(60))
    assert await f() == "safe" and await g() == Item(id=1, name="safe")
    assert not _Armed.fired


class _Coder:
    """A coder of the application's: JSON with a marker, to show its bytes are what is stored."""

    def dumps(self, value):
        return b"C" + json.dumps(sorted(value)).encode()

    def loads(self, data):
        return frozenset(json.loads(data[1:]))


async def test_coder_stores_its_own_bytes(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    calls = []

    @cache(key="tm.coded", ttl_in_seconds=60, coder=_Coder())
    async def f():
        calls.append(1)
        return frozenset({3, 1, 2})

    assert await f() == frozenset({1, 2, 3}) and await f() == frozenset({1, 2, 3})
    assert calls == [1]
    assert HTTPCache.handle().cache.get(b"tm.coded")[0] == b"C[1, 2, 3]"


def test_coder_is_checked_at_decoration():
    with pytest.raises(TypeError, match="coder must have dumps"):
        cache(key="k", coder=json.dumps)


async def test_a_coder_returning_no_bytes_is_not_stored_one_warning(url, namespace, warnings_log):
    HTTPCache.init(url, namespace=namespace)

    class Bad:
        def dumps(self, value):
            return str(value)

        def loads(self, data):
            return data

    @cache(key="tm.badcoder", ttl_in_seconds=60, coder=Bad())
    async def f():
        return 1

    assert await f() == 1 and await f() == 1
    assert len(warnings_log()) == 1 and "coder.dumps must return bytes" in warnings_log()[0].getMessage()


async def test_unannotated_tuple_says_to_annotate(url, namespace, warnings_log):
    HTTPCache.init(url, namespace=namespace)

    @cache(key="tm.tup", ttl_in_seconds=60)
    async def f():
        return (1, 2)

    assert await f() == (1, 2)
    assert "Annotate the function's return type" in warnings_log()[0].getMessage()


class Word(str, enum.Enum):
    HI = "hi"


async def test_an_unannotated_str_enum_is_not_served_back_as_a_plain_str(url, namespace, warnings_log):
    HTTPCache.init(url, namespace=namespace)

    @cache(key="tm.word", ttl_in_seconds=60)
    def f():
        return Word.HI

    @cache(key="tm.word_typed", ttl_in_seconds=60)
    def g() -> Word:
        return Word.HI

    assert all(type(x()) is Word for x in (f, f, g, g))
    assert "not JSON" in warnings_log()[0].getMessage()
    assert HTTPCache.handle().cache.get(b"tm.word_typed")[0] == b'"hi"'
