# SPDX-License-Identifier: MIT
"""/b/home cached by fastapi-cache2 with its RedisBackend (its README's usage, init in the
lifespan)."""

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi_cache import FastAPICache
from fastapi_cache.backends.redis import RedisBackend
from fastapi_cache.decorator import cache
from redis import asyncio as aioredis

from ._common import REDIS_URL, TTL, gc_freeze_if_asked, home_body


@asynccontextmanager
async def lifespan(_: FastAPI):
    FastAPICache.init(RedisBackend(aioredis.from_url(REDIS_URL)), prefix="bench_http_fastapi_cache")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/b/home")
@cache(expire=TTL)
async def home(request: Request, response: Response):
    return home_body()


gc_freeze_if_asked()
