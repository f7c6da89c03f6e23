"""HTTP validation and Age (issue 16): stored responses carry a strong ETag (SHA-256 of the body,
the same as the C API computes) or the handler's own; a hit says max-age=<lifetime> with
Age=<seconds since stored>; If-None-Match / If-Modified-Since get a bodiless 304 with the
headers a 200 would carry, through the decorator and through HTTPCache.attach()'s early path.
The rules are the core's (httpcache_http_not_modified), so a C program answers alike."""

from __future__ import annotations

import email.utils
import time

import pytest
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from httpcache import HTTPCache, _httpcache, cache
from httpcache._codec import MAGIC


@pytest.fixture(params=["memory", "redis"])
def url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


@pytest.fixture(params=["decorator", "attach"])
def served(request, url, namespace):
    HTTPCache.init(url, namespace=namespace)
    app = FastAPI()
    calls: list[str] = []

    @app.get("/page")
    @cache(key="va.page", ttl_in_seconds=60)
    async def page():
        calls.append("page")
        return {"page": "home"}

    @app.get("/tagged")
    @cache(key="va.tagged", ttl_in_seconds=60)
    async def tagged():
        calls.append("tagged")
        return JSONResponse({"t": 1}, headers={"etag": 'W/"v7"', "last-modified": "Sun, 06 Nov 1994 08:49:37 GMT"})

    if request.param == "attach":
        HTTPCache.attach(app)
    with TestClient(app) as client:
        yield client, calls


def test_miss_and_hit_carry_the_strong_etag_of_the_body(served):
    client, _ = served
    miss = client.get("/page")
    hit = client.get("/page")
    assert miss.headers["etag"] == hit.headers["etag"] == _httpcache.http_strong_etag(miss.content).decode()
    assert len(miss.headers["etag"]) == 34 and miss.headers["etag"].startswith('"')
    assert client.get("/tagged").headers["etag"] == client.get("/tagged").headers["etag"] == 'W/"v7"'


def test_hits_tell_age_and_the_original_lifetime(served):
    client, _ = served
    client.get("/page")
    time.sleep(1.1)
    hit = client.get("/page")
    age = int(hit.headers["age"])
    assert 1 <= age <= 3
    control = hit.headers["cache-control"]
    assert control.startswith("max-age=")
    lifetime = int(control.removeprefix("max-age="))
    assert lifetime == 60, control  # the lifetime; Age says how much of it is used
    expires = email.utils.parsedate_to_datetime(hit.headers["expires"]).timestamp()
    assert abs(expires - (time.time() + lifetime - age)) <= 2, "a proxy computes the expiry we do"


@pytest.mark.parametrize(
    "path,header,value,expect",
    [
        ("/page", "if-none-match", None, 304),  # None: the ETag the miss gave
        ("/page", "if-none-match", "*", 304),
        ("/page", "if-none-match", '"other"', 200),
        ("/tagged", "if-none-match", '"v7"', 304),  # weak comparison
        ("/tagged", "if-none-match", '"x", W/"v7"', 304),
        ("/tagged", "if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT", 304),
        ("/tagged", "if-modified-since", "Sun, 06 Nov 1994 08:49:36 GMT", 200),
        ("/page", "if-modified-since", None, 304),  # None: now (after it was stored)
        ("/page", "if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT", 200),
    ],
)
def test_preconditions_get_a_bodiless_304(served, path, header, value, expect):
    client, calls = served
    miss = client.get(path)
    if value is None:
        value = miss.headers["etag"] if header == "if-none-match" else email.utils.formatdate(time.time() + 1, usegmt=True)
    r = client.get(path, headers={header: value})
    assert r.status_code == expect
    assert len(calls) == 1, "answered from the entry"
    if expect == 304:
        assert r.content == b""
        for name in ("etag", "cache-control", "expires", "age"):
            assert name in r.headers, name
        assert "content-type" not in r.headers
    else:
        assert r.content == miss.content


def test_version_1_records_still_serve(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    app = FastAPI()

    @app.get("/old")
    @cache(key="va.old", ttl_in_seconds=60)
    async def old():
        return {"fresh": True}

    v1 = _httpcache.response_encode(200, b"application/json", [(b"x-old", b"1")], b'{"fresh":false}')
    assert v1.startswith(MAGIC)
    HTTPCache.handle().cache.set(b"va.old", v1, _httpcache.Policy.seconds(60))
    with TestClient(app) as client:
        r = client.get("/old")
    assert r.json() == {"fresh": False} and r.headers["x-old"] == "1" and "age" not in r.headers


def test_stored_records_are_version_2(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    app = FastAPI()

    @app.get("/v2")
    @cache(key="va.v2", ttl_in_seconds=60)
    async def v2(response: Response):
        return {"n": 1}

    with TestClient(app) as client:
        client.get("/v2")
    stored = HTTPCache.handle().cache.get(b"va.v2")[0]
    assert stored.startswith(b"HTTPCACHE-RESPONSE 2\n")
    status, media, headers, body, stored_at, vary = _httpcache.response_decode(stored, True)
    assert abs(stored_at / 1000 - time.time()) < 5 and (b"etag", _httpcache.http_strong_etag(body)) in headers


def test_request_no_store_keeps_the_response_out(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    app = FastAPI()
    calls = []

    @app.get("/ns")
    @cache(key="va.ns", ttl_in_seconds=60)
    async def ns():
        calls.append(1)
        return {"n": len(calls)}

    with TestClient(app) as client:
        assert client.get("/ns", headers={"cache-control": "no-store"}).json() == {"n": 1}
        assert client.get("/ns").json() == {"n": 2}  # nothing was stored by the no-store request
        hit = client.get("/ns", headers={"cache-control": "no-store"})
        assert hit.json() == {"n": 2} and hit.headers["cache-hit"] == "true"  # a stored one may answer it


@pytest.mark.parametrize("where", ["decorator", "init"])
@pytest.mark.parametrize("kind", ["async", "def"])
def test_request_no_cache_is_ignored_by_default_and_honoured_on_request(url, namespace, where, kind):
    HTTPCache.init(url, namespace=namespace, request_no_cache="honor" if where == "init" else "ignore")
    app = FastAPI()
    calls = []
    honour = {"request_no_cache": "honor"} if where == "decorator" else {}

    @app.get("/default")
    @cache(key=f"va.nc_default_{kind}", ttl_in_seconds=60, request_no_cache="ignore")
    async def default():
        calls.append("d")
        return {"n": len(calls)}

    if kind == "async":
        @app.get("/honour")
        @cache(key=f"va.nc_honour_{kind}", ttl_in_seconds=60, **honour)
        async def honoured():
            calls.append("h")
            return {"n": len(calls)}
    else:
        @app.get("/honour")
        @cache(key=f"va.nc_honour_{kind}", ttl_in_seconds=60, **honour)
        def honoured():
            calls.append("h")
            return {"n": len(calls)}

    with TestClient(app) as client:
        first = client.get("/default").json()
        for value in ("no-cache", "max-age=0"):
            assert client.get("/default", headers={"cache-control": value}).json() == first
        assert client.get("/default", headers={"pragma": "no-cache"}).json() == first
        h1 = client.get("/honour").json()
        assert client.get("/honour").json() == h1
        h2 = client.get("/honour", headers={"cache-control": "no-cache"}).json()
        assert h2 != h1 and client.get("/honour").json() == h2  # recomputed and stored
        h3 = client.get("/honour", headers={"cache-control": "max-age=0"}).json()
        assert h3 != h2 and client.get("/honour").json() == h3
    assert calls.count("d") == 1 and calls.count("h") == 3


def test_request_no_cache_value_is_checked():
    with pytest.raises(ValueError, match="request_no_cache must be"):
        cache(key="k", request_no_cache="sometimes")


def test_revalidate_makes_clients_ask_every_time_and_sees_invalidations(url, namespace):
    from httpcache import invalidate_cache

    HTTPCache.init(url, namespace=namespace)
    app = FastAPI()
    version = [1]

    @app.get("/doc")
    @cache(key="va.doc", ttl_in_seconds=600, revalidate=True)
    async def doc():
        return {"version": version[0]}

    @app.post("/doc")
    @invalidate_cache(key="va.doc")
    async def edit():
        version[0] += 1
        return {"edited": True}

    with TestClient(app) as client:
        first = client.get("/doc")
        assert "no-cache" in first.headers["cache-control"] and first.headers["etag"]
        again = client.get("/doc", headers={"if-none-match": first.headers["etag"]})
        assert again.status_code == 304 and "no-cache" in again.headers["cache-control"]
        client.post("/doc")
        after = client.get("/doc", headers={"if-none-match": first.headers["etag"]})
        assert after.status_code == 200 and after.json() == {"version": 2}
        assert after.headers["etag"] != first.headers["etag"]
        # Only the decorator's responses say no-cache; the storage rules still judged the handler's.
        assert client.get("/doc").headers["cache-hit"] == "true"
