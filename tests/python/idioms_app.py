# SPDX-License-Identifier: MIT
"""A FastAPI app using each idiom of issue 15, served by a real uvicorn in
tests/python/test_idioms_uvicorn.py: a model route with response_model, a Depends user, path and
query keys, mapping claims, condition=, and (with HTTPCACHE_DISABLED=1) caching off.

Every route reports how many times its handler ran (`run`), so a test sees hits over HTTP.
HTTPCACHE_TEST_APP_URL and HTTPCACHE_TEST_APP_NAMESPACE say where it caches."""

from __future__ import annotations

import collections
import datetime as dt
import os
import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, FastAPI, Header
from pydantic import BaseModel

from httpcache import HTTPCache, cache

HTTPCache.init(
    os.environ.get("HTTPCACHE_TEST_APP_URL", "memory://"), "UTC",
    os.environ.get("HTTPCACHE_TEST_APP_NAMESPACE", "idioms"),
)
app = FastAPI()
runs: collections.Counter = collections.Counter()


class Line(BaseModel):
    sku: str
    price: Decimal


class Order(BaseModel):
    id: uuid.UUID
    at: dt.datetime
    lines: list[Line]
    run: int


class User:
    def __init__(self, uid: str) -> None:
        self.id = uid


def current_user(x_user: Annotated[str, Header()]) -> User:
    return User(x_user)


def claims(x_user: Annotated[str, Header()]) -> dict:
    return {"sub": x_user}


def _run(name: str) -> int:
    runs[name] += 1
    return runs[name]


@app.get("/orders/{oid}", response_model=Order)
@cache(key="idioms.order.{oid}", ttl_in_seconds=60)
async def order(oid: uuid.UUID):
    return Order(id=oid, at=dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc),
                 lines=[Line(sku="a", price=Decimal("1.50"))], run=_run(f"order {oid}"))


@app.get("/me")
@cache(key="idioms.me.{user.id}", ttl_in_seconds=60, private=True)
def me(user: Annotated[User, Depends(current_user)]):
    return {"user": user.id, "run": _run(f"me {user.id}")}


@app.get("/claims")
@cache(key="idioms.claims.{claims.sub}", ttl_in_seconds=60)
async def by_claims(claims: Annotated[dict, Depends(claims)]):
    return {"sub": claims["sub"], "run": _run(f"claims {claims['sub']}")}


@app.get("/items")
@cache(ttl_in_seconds=60)
async def items(page: int = 1, size: int = 10):
    return {"page": page, "size": size, "run": _run(f"items {page} {size}")}


@app.get("/maybe/{n}")
@cache(key="idioms.maybe.{n}", ttl_in_seconds=60, condition=lambda r: r["n"] % 2 == 0)
async def maybe(n: int):
    return {"n": n, "run": _run(f"maybe {n}")}
