# SPDX-License-Identifier: MIT
"""httpcache_app with the near tier (issue 17): HTTPCache.init(..., near_cache=True) and
HTTPCache.attach(app): an early hit is answered from the in-process copy, with no Redis round
trip, every app middleware still running."""

from fastapi import FastAPI, Request, Response

from httpcache import HTTPCache, cache

from ._common import REDIS_URL, TTL, gc_freeze_if_asked, home_body

HTTPCache.init(redis_url=REDIS_URL, namespace="bench_http_httpcache_near", tz="UTC", near_cache=True)

app = FastAPI()
HTTPCache.attach(app)


@app.get("/b/home")
@cache(key="b.home", ttl_in_seconds=TTL)
async def home(request: Request, response: Response):
    return home_body()


gc_freeze_if_asked()
