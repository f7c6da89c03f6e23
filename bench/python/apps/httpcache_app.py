# SPDX-License-Identifier: MIT
"""/b/home cached by httpcache on Redis, exactly as examples/app.py does it (with HTTPCache.attach:
hits are answered before routing)."""

from fastapi import FastAPI, Request, Response

from httpcache import HTTPCache, cache

from ._common import REDIS_URL, TTL, gc_freeze_if_asked, home_body

HTTPCache.init(redis_url=REDIS_URL, namespace="bench_http_httpcache", tz="UTC")

app = FastAPI()
HTTPCache.attach(app)


@app.get("/b/home")
@cache(key="b.home", ttl_in_seconds=TTL)
async def home(request: Request, response: Response):
    return home_body()


gc_freeze_if_asked()
