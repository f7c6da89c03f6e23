# SPDX-License-Identifier: MIT
"""What every app variant shares: the Redis URL and the route body."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from fastapi.responses import JSONResponse

REDIS_URL = os.environ["BENCH_REDIS_URL"]
TTL = 180  # the seed route's ttl_in_seconds


def now() -> str:
    return str(datetime.now(timezone.utc))


def home_body() -> JSONResponse:
    return JSONResponse({"page": "home", "datetime": now()})
