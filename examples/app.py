# SPDX-License-Identifier: MIT
"""The authx_extra HTTP-cache example app on httpcache: the import line differs, and one optional
line, HTTPCache.attach(app), lets hits of /b/home and /b/welcome be answered before routing.

    uvicorn examples.app:app                                   # embedded store (memory://)
    REDIS_URL=redis://localhost:6379/0 uvicorn examples.app:app   # Redis

Try: curl -i localhost:8000/b/home (twice: the second has Cache-Hit: true), /b/welcome,
/b/logged-in (per-user: Cache-Control: private), curl -i -X POST localhost:8000/b/logged-in
(invalidates it), /b/ttl_callable, /b/cache-me/21 (a cached plain function).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from httpcache import HTTPCache, cache, invalidate_cache

REDIS_URL = os.environ.get("REDIS_URL")  # None: the embedded in-process store
NAMESPACE = os.environ.get("HTTPCACHE_NAMESPACE", "test_namespace")

HTTPCache.init(redis_url=REDIS_URL, namespace=NAMESPACE, tz=ZoneInfo("Africa/Casablanca"))

app = FastAPI(title="httpcache example")
# Optional: hits of fixed-key routes skip FastAPI's routing and endpoint; freeze_gc=True leaves
# the start-up heap out of CPython's full collections (a much lower p99 under load; process-wide).
HTTPCache.attach(app, freeze_gc=True)


class User:
    id: str = "112358"


user = User()


def now() -> str:
    return str(datetime.now(timezone.utc))


@app.get("/b/home")
@cache(key="b.home", ttl_in_seconds=180)
async def home(request: Request, response: Response):
    return JSONResponse({"page": "home", "datetime": now()})


# The seed reuses "b.home" here, so /b/welcome would serve the cached home page: own key instead.
@app.get("/b/welcome")
@cache(key="b.welcome", end_of_week=True)
async def welcome(request: Request, response: Response):
    return JSONResponse({"page": "welcome", "datetime": now()})


@app.get("/b/logged-in")
@cache(key="b.logged_in.{}", obj="user", obj_attr="id")
async def logged_in(request: Request, response: Response, user=user):
    return JSONResponse({"page": "home", "user": user.id, "datetime": now()})


@app.post("/b/logged-in")
@invalidate_cache(keys=["b.logged_in.{}", "b.profile.{}"], obj="user", obj_attr="id", namespace=NAMESPACE)
async def post_logged_in(request: Request, response: Response, user=user):
    return JSONResponse({"page": "home", "user": user.id, "datetime": now()})


async def my_ttl_callable() -> int:
    return 3600


@app.get("/b/ttl_callable")
@cache(key="b.ttl_callable_expiry", ttl_func=my_ttl_callable)
async def path_with_ttl_callable(request: Request, response: Response):
    return JSONResponse({"page": "path_with_ttl_callable", "datetime": now()})


invocations = {"cache_me": 0}


@cache(key="cache.me.{}", obj="x", obj_attr="real", ttl_in_seconds=360)
async def cache_me(x: int):
    invocations["cache_me"] += 1
    return [x * 2, invocations["cache_me"]]


@app.get("/b/cache-me/{x}")
async def cached_function(x: int):
    result, invoke_count = await cache_me(x)
    return {"result": result, "computed": invoke_count}
