# SPDX-License-Identifier: MIT
"""The seed's FastAPI /b/home route, one module per cache variant, for bench_http.py.

Each module builds `app` with the same route body (a JSONResponse of {"page": "home",
"datetime": now()}) and reads the Redis URL from BENCH_REDIS_URL. Only the cache decorator and
its init differ, written the way each library documents it. The floor_* modules (issue 17) are
the references of the near-tier variants: a bare ASGI app, FastAPI's middleware stack alone, and
the route (with and without a Depends user) returning a prebuilt response."""
