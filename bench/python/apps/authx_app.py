# SPDX-License-Identifier: MIT
"""/b/home cached by the seed library, authx_extra.cache (its README's usage). On a hit it
returns the JSON-decoded body, which FastAPI serializes again."""

import logging

from authx_extra.cache import HTTPCache, cache
from fastapi import FastAPI, Request, Response

from ._common import REDIS_URL, TTL, gc_freeze_if_asked, home_body

# authx sets its logger to DEBUG (logging.basicConfig() at import): every hit would write a line
# to stderr. Muted, as in production; this only favours authx.
logging.getLogger("authx").setLevel(logging.WARNING)
HTTPCache.init(redis_url=REDIS_URL, namespace="bench_http_authx")

app = FastAPI()


@app.get("/b/home")
@cache(key="b.home", ttl_in_seconds=TTL)
async def home(request: Request, response: Response):
    return home_body()


gc_freeze_if_asked()
