# SPDX-License-Identifier: MIT
"""A per-user /b/home (issue 17): a `Depends(current_user)` user, the key filled from it
(`obj="user", obj_attr="id"`: Cache-Control private), the decorator path (HTTPCache.attach answers
no route with dependencies), near tier on."""

from fastapi import Depends, FastAPI, Request, Response

from httpcache import HTTPCache, cache

from ._common import REDIS_URL, TTL, User, current_user, gc_freeze_if_asked, home_body

HTTPCache.init(redis_url=REDIS_URL, namespace="bench_http_httpcache_user_near", tz="UTC", near_cache=True)

app = FastAPI()


@app.get("/b/home")
@cache(key="b.home.{}", obj="user", obj_attr="id", ttl_in_seconds=TTL)
async def home(request: Request, response: Response, user: User = Depends(current_user)):
    return home_body()


gc_freeze_if_asked()
