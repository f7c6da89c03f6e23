# SPDX-License-Identifier: MIT
"""A FastAPI app using issue 16's tags, stale windows and variants, served by a real uvicorn in
tests/python/test_groups_uvicorn.py. Every route reports how many times its handler ran (`run`),
so a test sees hits over HTTP; /fail makes the stale-if-error route raise.
HTTPCACHE_TEST_APP_URL and HTTPCACHE_TEST_APP_NAMESPACE say where it caches."""

from __future__ import annotations

import collections
import os

from fastapi import FastAPI, Request, Response

from httpcache import HTTPCache, cache, invalidate_cache

HTTPCache.init(
    os.environ.get("HTTPCACHE_TEST_APP_URL", "memory://"), "UTC",
    os.environ.get("HTTPCACHE_TEST_APP_NAMESPACE", "groups"),
)
app = FastAPI()
runs: collections.Counter = collections.Counter()
failing = {"on": False}


@app.get("/items/{item_id}")
@cache(key="g.item.{item_id}", ttl_in_seconds=60, tags=["catalog", "item:{item_id}"])
async def item(item_id: int):
    runs[f"item{item_id}"] += 1
    return {"item": item_id, "run": runs[f"item{item_id}"]}


@app.put("/items/{item_id}")
@invalidate_cache(tags=["item:{item_id}"])
async def update(item_id: int):
    return {"updated": item_id}


@app.get("/stale")
@cache(key="g.stale", ttl_in_seconds=1, stale_while_revalidate=30, stale_if_error=30)
def stale():
    runs["stale"] += 1
    if failing["on"]:
        raise RuntimeError("the database is down")
    return {"run": runs["stale"]}


@app.post("/fail/{on}")
async def fail(on: int):
    failing["on"] = bool(on)
    return {"failing": failing["on"]}


@app.get("/greeting")
@cache(key="g.greeting", ttl_in_seconds=60, vary=["Accept-Language"])
async def greeting(request: Request, response: Response):
    lang = request.headers.get("accept-language", "en")
    runs[f"greeting-{lang}"] += 1
    response.headers["vary"] = "Accept-Language"
    return {"lang": lang, "run": runs[f"greeting-{lang}"]}
