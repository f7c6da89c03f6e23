# SPDX-License-Identifier: MIT
"""/b/home cached by cashews with its client-side cache on (`cache.setup(url, client_side=True)`:
a local copy in front of Redis, invalidated over CLIENT TRACKING BCAST): the peer's near tier."""

from cashews import cache
from fastapi import FastAPI, Request, Response

from ._common import REDIS_URL, TTL, gc_freeze_if_asked, home_body

cache.setup(REDIS_URL, client_side=True)

app = FastAPI()


@app.get("/b/home")
@cache(ttl=TTL, key="bench_http_cashews_near:b.home")
async def home(request: Request, response: Response):
    return home_body()


gc_freeze_if_asked()
