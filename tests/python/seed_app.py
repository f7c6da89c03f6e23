# SPDX-License-Identifier: MIT
"""The seed document's examples (../shared/seed/authx-extra-http-cache.txt: "HTTP Cache Using
Redis"), copied as written with only their import lines changed from ``authx_extra.cache`` to
``httpcache``, for tests/python/test_seed_migration.py: what a user migrating from the seed runs.

The document shows two programs; they are here one after the other, the plain-function one
("Caching methods that aren't controllers") first: each calls HTTPCache.init(), and the app's
call (the Africa/Casablanca zone its end-of-week TTLs depend on) must be the one in force, as it
is when each program runs alone. This order also gives the controllers ``invalidate_cache``,
which they use but whose import line the document leaves out. The document never creates the
FastAPI ``app`` its routes use: ``app = FastAPI()`` is the one line added. REDIS_URL comes from
the environment, as the document reads it.
"""

# ---- "Caching methods that aren't controllers" ----

import os
import redis
from httpcache import HTTPCache, cache, invalidate_cache
REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/3")
redis_client = redis.Redis.from_url(REDIS_URL)
class User:
    id: str = "112358"
user = User()
HTTPCache.init(redis_url=REDIS_URL, namespace='test_namespace')
@cache(key='cache.me', ttl_in_seconds=360)
async def cache_me(x:int, invoke_count:int):
    invoke_count = invoke_count + 1
    result = x * 2
    return [result, invoke_count]

# ---- "Initialize the cache" ----

import os
import redis
from httpcache import HTTPCache
from pytz import timezone
REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/3")
redis_client = redis.Redis.from_url(REDIS_URL)
africa_Casablanca = timezone('Africa/Casablanca')
HTTPCache.init(redis_url=REDIS_URL, namespace='test_namespace', tz=africa_Casablanca)

# ---- "Define your controllers" ----

from datetime import datetime
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from httpcache import HTTPCache, cache

app = FastAPI()  # added: the document uses `app` without creating it

@app.get("/b/home")
@cache(key="b.home", ttl_in_seconds=180)
async def home(request: Request, response: Response):
    return JSONResponse({"page": "home", "datetime": str(datetime.utcnow())})
@app.get("/b/welcome")
@cache(key="b.home", end_of_week=True)
async def home(request: Request, response: Response):
    return JSONResponse({"page": "welcome", "datetime": str(datetime.utcnow())})

# ---- "Building keys from parameter objects" ----

class User:
    id: str = "112358"
user = User()
@app.get("/b/logged-in")
@cache(key="b.logged_in.{}", obj="user", obj_attr="id")
async def logged_in(request: Request, response: Response, user=user):
    return JSONResponse(
        {"page": "home", "user": user.id, "datetime": str(datetime.utcnow())}
    )

# ---- "Explicitly invalidating the cache" ----

class User:
    id: str = "112358"
user = User()
@app.post("/b/logged-in")
@invalidate_cache(
    key="b.logged_in.{}", obj="user", obj_attr="id", namespace="test_namespace"
)
async def post_logged_in(request: Request, response: Response, user=user):
    return JSONResponse(
        {"page": "home", "user": user.id, "datetime": str(datetime.utcnow())}
    )

# ---- "Invalidating more than one key at a time" ----
# The document's second POST /b/logged-in: FastAPI sends that path's POSTs to the route above,
# registered first, so this one is reached only by calling its endpoint (the test does).

class User:
    id: str = "112358"
user = User()
@app.post("/b/logged-in")
@invalidate_cache(
    keys=["b.logged_in.{}", "b.profile.{}"], obj="user", obj_attr="id", namespace="test_namespace"
)
async def post_logged_in(request: Request, response: Response, user=user):
    return JSONResponse(
        {"page": "home", "user": user.id, "datetime": str(datetime.utcnow())}
    )

# ---- "Computing ttl dynamically for cache keys using a Callable" ----

async def my_ttl_callable() -> int:
    return 3600
@app.get('/b/ttl_callable')
@cache(key='b.ttl_callable_expiry', ttl_func=my_ttl_callable)
async def path_with_ttl_callable(request: Request, response: Response):
    return JSONResponse(
        {"page": "path_with_ttl_callable", "datetime": str(datetime.utcnow())}
    )
