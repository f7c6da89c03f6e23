# SPDX-License-Identifier: MIT
"""A small FastAPI app that test_uvicorn.py serves with a real uvicorn (uvicorn_support.py), the
way users deploy: `from httpcache import HTTPCache, cache`, one async and one def route.

It runs in its own process, so the test tells it where to cache through the environment:
HTTPCACHE_TEST_APP_URL (memory:// when unset, else the test's Redis URL) and
HTTPCACHE_TEST_APP_NAMESPACE. Each handler run counts itself into its body, so a second GET
with the same body was not computed again; /loop (not cached) names the server's event loop
class, so a test can check which loop uvicorn really ran it on."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from httpcache import HTTPCache, cache

HTTPCache.init(
    redis_url=os.environ.get("HTTPCACHE_TEST_APP_URL") or "memory://",
    namespace=os.environ.get("HTTPCACHE_TEST_APP_NAMESPACE", "uvicorn_app"),
)

app = FastAPI()
_runs = itertools.count(1)
# def routes run in the threadpool, where two requests can count at once.
_runs_lock = threading.Lock()


def run_number() -> int:
    with _runs_lock:
        return next(_runs)


@app.get("/loop")
async def loop_name():
    loop = type(asyncio.get_running_loop())
    return {"loop": f"{loop.__module__}.{loop.__qualname__}"}


@app.get("/async")
@cache(key="uv.async", ttl_in_seconds=60)
async def async_route():
    return JSONResponse({"route": "async", "run": run_number()})


@app.get("/def")
@cache(key="uv.def", ttl_in_seconds=60)
def def_route():
    return {"route": "def", "run": run_number()}
