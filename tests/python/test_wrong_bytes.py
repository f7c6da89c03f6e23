# SPDX-License-Identifier: MIT
"""Never serve the wrong bytes (issue 13): TTL limits (finding 10) and the HTTP storage rules
(findings 6, 8 and 9) that keep a response from being stored or advertised beyond what its
handler allows."""

from __future__ import annotations

import pytest

from httpcache import HTTPCache, _httpcache, cache


def test_ttl_in_seconds_over_the_maximum_is_a_value_error():
    for bad in (_httpcache.MAX_TTL_SECONDS + 1, 2**63, 2**64, -1):
        with pytest.raises(ValueError, match="ttl_in_seconds"):
            cache(key="t", ttl_in_seconds=bad)
    cache(key="t", ttl_in_seconds=_httpcache.MAX_TTL_SECONDS)(lambda: 1)


@pytest.mark.parametrize("returned", [2**63, 2**64, _httpcache.MAX_TTL_SECONDS + 1])
def test_a_ttl_func_over_the_maximum_runs_uncached_with_a_warning(store, warnings_log, returned):
    calls = []

    @cache(key=f"ttlf{returned}", ttl_func=lambda: returned)
    def f():
        calls.append(1)
        return len(calls)

    assert [f(), f()] == [1, 2]
    assert store.get(f"ttlf{returned}") is None
    texts = [r.getMessage() for r in warnings_log()]
    assert texts and all("ttl_func" in t for t in texts)
    st = HTTPCache.stats()
    assert st["errors"] == 0 and st["breaker_trips"] == 0 and not st["breaker_open"]


# -- HTTP storage rules (findings 6, 8, 9), on a real FastAPI app through TestClient.

from fastapi import Depends, FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402


class Who:
    def __init__(self, id: str) -> None:
        self.id = id


def app_with(headers: dict, status: int = 200, per_user: bool = False, sync: bool = False):
    """One route whose handler answers with `headers` and `status`; app.state.runs counts runs."""
    app = FastAPI()
    app.state.runs = 0
    key, obj = ("r.{}", {"obj": "who", "obj_attr": "id"}) if per_user else ("r", {})

    def body() -> Response:
        app.state.runs += 1
        return JSONResponse({"n": app.state.runs}, status_code=status, headers=headers)

    if sync:
        @app.get("/r")
        @cache(key=key, ttl_in_seconds=60, **obj)
        def route_sync(request: Request, who: Who = Depends(lambda: Who("alice"))):
            return body()
    else:
        @app.get("/r")
        @cache(key=key, ttl_in_seconds=60, **obj)
        async def route(request: Request, who: Who = Depends(lambda: Who("alice"))):
            return body()

    return app, TestClient(app)


def runs_after_two_requests(headers: dict, status: int = 200, per_user: bool = False, sync: bool = False) -> tuple:
    app, client = app_with(headers, status, per_user, sync)
    first, second = client.get("/r"), client.get("/r")
    return app.state.runs, first, second


@pytest.mark.parametrize("sync", [False, True])
@pytest.mark.parametrize(
    "vary",
    ["*", "Authorization", "Cookie", "accept-encoding", "Accept", "Accept, Authorization"],
)
def test_vary_is_never_stored_under_a_shared_key(store, vary, sync):
    runs, first, second = runs_after_two_requests({"vary": vary}, sync=sync)
    assert runs == 2 and second.headers.get("cache-hit") is None
    assert store.get("r") is None


@pytest.mark.parametrize("vary", ["Authorization", "Cookie", "authorization, cookie"])
def test_vary_on_credentials_is_stored_under_a_per_user_key(store, vary):
    runs, _, second = runs_after_two_requests({"vary": vary}, per_user=True)
    assert runs == 1 and second.headers["cache-hit"] == "true"
    assert "private" in second.headers["cache-control"]


def test_vary_on_other_headers_is_not_stored_even_per_user(store):
    runs, _, _ = runs_after_two_requests({"vary": "Accept"}, per_user=True)
    assert runs == 2 and store.get("r.alice") is None


@pytest.mark.parametrize("sync", [False, True])
def test_partial_content_is_never_stored(store, sync):
    runs, first, second = runs_after_two_requests({"content-range": "bytes 0-2/10"}, status=206, sync=sync)
    assert first.status_code == 206 and runs == 2 and store.get("r") is None


@pytest.mark.parametrize("sync", [False, True])
@pytest.mark.parametrize("control", ["no-cache", "no-store", "max-age=0", "public, s-maxage=0, max-age=60", "private"])
def test_responses_the_handler_forbids_to_store_are_not_stored(store, control, sync):
    runs, first, second = runs_after_two_requests({"cache-control": control}, sync=sync)
    assert runs == 2 and store.get("r") is None
    assert first.headers["cache-control"] == control  # the handler's own, not max-age=60
    assert second.headers.get("cache-hit") is None


@pytest.mark.parametrize("sync", [False, True])
def test_the_handlers_directives_are_kept_and_never_exceeded(store, sync):
    control = "public, max-age=5, s-maxage=2, must-revalidate"
    runs, first, second = runs_after_two_requests({"cache-control": control}, sync=sync)
    assert runs == 1 and second.headers["cache-hit"] == "true"
    assert 0 < store.ttl_ms("r") <= 2000  # stored for s-maxage, not the decorator's 60 s
    for r in (first, second):
        got = [p.strip() for p in r.headers["cache-control"].split(",")]
        assert got[0] == "public" and got[-1] == "must-revalidate", got
        ages = dict(p.split("=") for p in got if "=" in p)
        assert int(ages["max-age"]) <= 2 and int(ages["s-maxage"]) <= 2, got


def test_a_max_age_longer_than_the_policy_is_lowered_to_it(store):
    runs, first, second = runs_after_two_requests({"cache-control": "public, max-age=86400"})
    assert runs == 1 and 58_000 < store.ttl_ms("r") <= 60_000
    assert second.headers["cache-control"] in ("public, max-age=60", "public, max-age=59")


def test_an_expires_header_caps_the_stored_ttl(store):
    import email.utils
    import time

    expires = email.utils.formatdate(time.time() + 3, usegmt=True)
    runs, _, second = runs_after_two_requests({"expires": expires})
    assert runs == 1 and 0 < store.ttl_ms("r") <= 3000
    assert int(second.headers["cache-control"].split("=")[1]) <= 3
