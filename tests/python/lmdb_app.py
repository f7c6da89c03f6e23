# SPDX-License-Identifier: MIT
"""A FastAPI app that test_lmdb.py serves with ``uvicorn --workers 2``: the issue's setting, where
every worker must see the others' entries and invalidations.

It runs in other processes, so the test tells it everything through the environment:
HTTPCACHE_TEST_APP_URL (the cache URL: lmdb://DIR, or memory:// for the control),
HTTPCACHE_TEST_APP_NAMESPACE, HTTPCACHE_TEST_APP_ATTACH ("1": HTTPCache.attach(app), whose
early hits are a hit path of their own), and HTTPCACHE_TEST_APP_STATE, a directory both workers
share that stands for the application's database: `version` holds the item's current version, and each
computation of a cached route appends a line "ROUTE PID" to `computations` (O_APPEND: one write
per line, so the workers' lines never mix).

- GET /item (a def route) and GET /item-async (an async def route), cached under keys of their
  own: the item as the worker computed it: its version, the pid that computed it and the
  route's computation number across both workers. A stale answer is one whose version is older
  than the file's.
- POST /item (@invalidate_cache of both keys): bumps the version, as an update of the database
  would.
- GET /pid (not cached): the worker's pid, so the test can wait for both workers.
Every response carries the pid of the worker that served it in ``x-worker-pid`` (a middleware:
a hit does not run the route, so its body names the computing worker, not the serving one)."""

from __future__ import annotations

import os
import pathlib

from fastapi import FastAPI, Request

from httpcache import HTTPCache, cache, invalidate_cache

NAMESPACE = os.environ["HTTPCACHE_TEST_APP_NAMESPACE"]
STATE = pathlib.Path(os.environ["HTTPCACHE_TEST_APP_STATE"])
HTTPCache.init(redis_url=os.environ["HTTPCACHE_TEST_APP_URL"], namespace=NAMESPACE)

app = FastAPI()
if os.environ.get("HTTPCACHE_TEST_APP_ATTACH") == "1":
    HTTPCache.attach(app)


@app.middleware("http")
async def name_the_worker(request: Request, call_next):
    response = await call_next(request)
    response.headers["x-worker-pid"] = str(os.getpid())
    return response


def current_version() -> int:
    return int((STATE / "version").read_text())


def computed(route: str) -> dict:
    """The item, recording its computation: the route's computations so far across both workers
    (this one included) numbers it."""
    version = current_version()
    fd = os.open(STATE / "computations", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{route} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    lines = (STATE / "computations").read_text().splitlines()
    number = sum(1 for line in lines if line.split()[0] == route)
    return {"version": version, "computed_by": os.getpid(), "computation": number}


@app.get("/pid")
def pid():
    return {"pid": os.getpid()}


@app.get("/item")
@cache(key="lmdb_app.item", ttl_in_seconds=300)
def get_item():
    return computed("item")


@app.get("/item-async")
@cache(key="lmdb_app.item_async", ttl_in_seconds=300)
async def get_item_async():
    return computed("item-async")


@app.post("/item")
@invalidate_cache(keys=["lmdb_app.item", "lmdb_app.item_async"])
def update_item():
    version = current_version() + 1
    (STATE / "version.tmp").write_text(str(version))
    os.replace(STATE / "version.tmp", STATE / "version")  # a reader sees the old or the new, whole
    return {"version": version}
