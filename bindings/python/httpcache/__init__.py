# SPDX-License-Identifier: MIT
"""httpcache: response and function-result caching for FastAPI/Starlette and plain functions,
on the httpcache C library (Redis or an embedded in-process store).

A drop-in for ``authx_extra.cache``: only the import line changes::

    from httpcache import HTTPCache, cache, invalidate_cache

    HTTPCache.init(redis_url="redis://localhost:6379/0", namespace="app", tz="Europe/London")

    @app.get("/home")
    @cache(key="home", ttl_in_seconds=180)
    async def home(request: Request, response: Response): ...
"""

from ._backend import HTTPCacheBackend
from ._config import HTTPCache
from ._decorators import cache, invalidate_cache
from ._ttl import seconds_until_end_of_day, seconds_until_end_of_week, tzdata_version
from ._httpcache import CacheMiss, Error

__version__ = "1.7.0"

__all__ = [
    "HTTPCache",
    "HTTPCacheBackend",
    "cache",
    "invalidate_cache",
    "seconds_until_end_of_day",
    "seconds_until_end_of_week",
    "tzdata_version",
    "CacheMiss",
    "Error",
]
