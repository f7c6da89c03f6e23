# SPDX-License-Identifier: MIT
"""What every app variant shares: the Redis URL and the route body."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from fastapi import Request
from fastapi.responses import JSONResponse

REDIS_URL = os.environ["BENCH_REDIS_URL"]
TTL = 180  # the seed route's ttl_in_seconds


def now() -> str:
    return str(datetime.now(timezone.utc))


def home_body() -> JSONResponse:
    return JSONResponse({"page": "home", "datetime": now()})


class User:
    """The user a per-user route's dependency gives (issue 17's per-user variants)."""

    __slots__ = ("id",)

    def __init__(self, id: str) -> None:
        self.id = id


async def current_user(request: Request) -> User:
    """A per-user route's `Depends(current_user)`: the user a gateway named in a header (wrk sends
    none, so every request is user 1's), as an authenticating dependency would, minus its check."""
    return User(request.headers.get("x-user", "1"))


def _log_full_collections(path: str) -> None:
    """Appends "<unix time> <pause ms>" for every full (generation 2) collection to path, so
    bench_http.py can report how often the variant pauses for the collector, and for how long."""
    import gc
    import time

    out = open(path, "a", buffering=1)
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            out.write(f"{time.time():.3f} {(time.perf_counter() - started[0]) * 1000:.2f}\n")

    gc.callbacks.append(callback)


if os.environ.get("BENCH_GC_LOG"):
    _log_full_collections(os.environ["BENCH_GC_LOG"])


def gc_freeze_if_asked() -> None:
    """With BENCH_GC_FREEZE=1 (bench_http.py --gc-freeze), moves every object that exists after
    the app's import into CPython's permanent generation (gc.freeze(), the usual server tuning):
    full collections then no longer traverse the framework's own objects. Called at the end of
    each app module, so it applies to every variant alike."""
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        import gc

        gc.collect()
        gc.freeze()
