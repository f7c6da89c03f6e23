# SPDX-License-Identifier: MIT
"""httpcache_routed_app with the near tier (issue 17): the decorator only (every hit routed by
FastAPI), HTTPCache.init(..., near_cache=True): the hit needs no Redis round trip."""

from fastapi import FastAPI, Request, Response

from httpcache import HTTPCache, cache

from ._common import REDIS_URL, TTL, gc_freeze_if_asked, home_body

HTTPCache.init(redis_url=REDIS_URL, namespace="bench_http_httpcache_routed_near", tz="UTC", near_cache=True)

app = FastAPI()


@app.get("/b/home")
@cache(key="b.home", ttl_in_seconds=TTL)
async def home(request: Request, response: Response):
    return home_body()


gc_freeze_if_asked()
