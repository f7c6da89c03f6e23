# SPDX-License-Identifier: MIT
"""The app behind nginx in tests/python/test_proxy.py: a shareable route (30 s), a short one
(2 s), a per-user one (Cache-Control: private) and a counter of the requests that reached it, so
the test sees what the proxy answered itself."""

from __future__ import annotations

import collections
import os
from typing import Annotated

from fastapi import Depends, FastAPI, Header

from httpcache import HTTPCache, cache

HTTPCache.init(os.environ.get("HTTPCACHE_TEST_APP_URL", "memory://"), "UTC",
               os.environ.get("HTTPCACHE_TEST_APP_NAMESPACE", "proxy"))
app = FastAPI()
seen: collections.Counter = collections.Counter()  # requests that reached the app, per path
runs: collections.Counter = collections.Counter()  # handler runs, per route


@app.middleware("http")
async def count(request, call_next):
    seen[request.url.path] += 1
    return await call_next(request)


@app.get("/shared")
@cache(key="px.shared", ttl_in_seconds=30)
async def shared():
    runs["shared"] += 1
    return {"page": "shared", "run": runs["shared"]}


@app.get("/brief")
@cache(key="px.brief", ttl_in_seconds=2)
async def brief():
    runs["brief"] += 1
    return {"page": "brief", "run": runs["brief"]}


class User:
    def __init__(self, uid: str) -> None:
        self.id = uid


def current_user(x_user: Annotated[str, Header()]) -> User:
    return User(x_user)


@app.get("/mine")
@cache(key="px.mine.{user.id}", ttl_in_seconds=30)
async def mine(user: Annotated[User, Depends(current_user)]):
    runs["mine"] += 1
    return {"user": user.id}


@app.get("/seen")
def seen_counts():
    return dict(seen)
