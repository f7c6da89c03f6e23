# SPDX-License-Identifier: MIT
"""/b/home cached by cashews on Redis (its default @cache: pickled value, and concurrent calls of
one key share one task, "thunder protection")."""

from cashews import cache
from fastapi import FastAPI, Request, Response

from ._common import REDIS_URL, TTL, gc_freeze_if_asked, home_body

cache.setup(REDIS_URL)

app = FastAPI()


@app.get("/b/home")
@cache(ttl=TTL, key="bench_http_cashews:b.home")
async def home(request: Request, response: Response):
    return home_body()


gc_freeze_if_asked()
