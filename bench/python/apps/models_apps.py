# SPDX-License-Identifier: MIT
"""The FastAPI apps of bench_models.py: one GET /page route returning a pydantic model
(``response_model=Page``), uncached and cached by each library, plus the same data as a
JSONResponse route cached by httpcache (the reference a model hit is compared with).

Each builder returns (app, Counter): the counter counts runs of the route's own body, so the
benchmark can tell a hit (the body did not run) from a miss. Every app has the one route at the
same path, so routing costs every variant the same. The Redis URL and the per-run prefix of the
keys are arguments (not environment variables as for bench_http.py's apps): all variants live in
one process, the benchmark's.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

TTL = 600


class Author(BaseModel):
    id: int
    name: str
    email: str


class Line(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    added_at: datetime


class Page(BaseModel):
    """About 1 KB of JSON: the field types FastAPI users return that plain JSON lacks (UUID,
    datetime, Decimal, nested models and lists of them)."""

    id: UUID
    title: str
    slug: str
    published_at: datetime
    price: Decimal
    in_stock: bool
    tags: list[str]
    author: Author
    lines: list[Line]
    next_cursor: str | None


_T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)


def make_page() -> Page:
    """The route body: builds the model from plain values, as a handler building it from a
    database row would (so the uncached route pays for the model, like a real one)."""
    return Page(
        id=UUID("6f1c2a4e-8b3d-4c5e-9f70-112358132134"),
        title="Benchmark page with a pydantic response model",
        slug="benchmark-page-with-a-pydantic-response-model",
        published_at=_T0,
        price=Decimal("1234.50"),
        in_stock=True,
        tags=["alpha", "beta", "gamma", "delta", "epsilon"],
        author=Author(id=112358, name="Ada Example", email="ada@example.com"),
        lines=[
            Line(sku=f"SKU-{i:05d}", name=f"line item number {i}", quantity=i + 1,
                 unit_price=Decimal(f"{i + 1}9.99"), added_at=_T0.replace(minute=i))
            for i in range(6)
        ],
        next_cursor="eyJwYWdlIjogMiwgInNpemUiOiAyMH0",
    )


class Counter:
    """Runs of a route's body."""

    def __init__(self) -> None:
        self.n = 0


# -- httpcache ------------------------------------------------------------------------------------


def httpcache_init(redis_url: str, namespace: str) -> None:
    from httpcache import HTTPCache

    # Keywords only: the positional order of init() is changing (issue 15, the seed's order).
    HTTPCache.init(redis_url=redis_url, namespace=namespace, tz="UTC")


def httpcache_model(attach: bool, key: str) -> tuple[FastAPI, Counter]:
    """The idiom of issue 15: a model returned with response_model, decorated with @cache."""
    from httpcache import HTTPCache, cache

    app, runs = FastAPI(), Counter()
    if attach:
        HTTPCache.attach(app)  # as examples/app.py: hits answered before routing

    @app.get("/page", response_model=Page)
    @cache(key=key, ttl_in_seconds=TTL)
    async def page() -> Page:
        runs.n += 1
        return make_page()

    return app, runs


def httpcache_json(attach: bool, key: str) -> tuple[FastAPI, Counter]:
    """The same data as a JSONResponse: what httpcache caches today, the reference."""
    from httpcache import HTTPCache, cache

    app, runs = FastAPI(), Counter()
    if attach:
        HTTPCache.attach(app)

    @app.get("/page")
    @cache(key=key, ttl_in_seconds=TTL)
    async def page():
        runs.n += 1
        return JSONResponse(make_page().model_dump(mode="json"))

    return app, runs


# -- no cache -------------------------------------------------------------------------------------


def uncached_model() -> tuple[FastAPI, Counter]:
    app, runs = FastAPI(), Counter()

    @app.get("/page", response_model=Page)
    async def page() -> Page:
        runs.n += 1
        return make_page()

    return app, runs


# -- peers ----------------------------------------------------------------------------------------


def fastapi_cache_model(redis_url: str, prefix: str) -> tuple[FastAPI, Counter, Any]:
    """fastapi-cache2's README usage: RedisBackend over redis.asyncio (hiredis parser when
    installed, as here), its default JsonCoder. Returns the redis client too, to close it."""
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.redis import RedisBackend
    from fastapi_cache.decorator import cache
    from redis import asyncio as aioredis

    client = aioredis.from_url(redis_url)
    # Initialised here rather than in a lifespan (the benchmark runs no lifespan): the same call.
    FastAPICache.init(RedisBackend(client), prefix=prefix)
    app, runs = FastAPI(), Counter()

    @app.get("/page", response_model=Page)
    @cache(expire=TTL)
    async def page() -> Page:
        runs.n += 1
        return make_page()

    return app, runs, client


def cashews_model(redis_url: str, prefix: str) -> tuple[FastAPI, Counter, Any]:
    """cashews' documented @cache(ttl=...) on a redis backend (its default serializer: the
    pickled model). Returns the Cache, to close it."""
    from cashews import Cache

    c = Cache()
    c.setup(redis_url)
    app, runs = FastAPI(), Counter()

    @app.get("/page", response_model=Page)
    @c.cache(ttl=TTL, key=f"{prefix}:page")
    async def page() -> Page:
        runs.n += 1
        return make_page()

    return app, runs, c
