# SPDX-License-Identifier: MIT
"""The routing floor (floor_routing) with a cached hit's headers on its prebuilt response
(Cache-Hit, Cache-Control, Age, Expires, ETag): what the server spends sending the five headers
every hit of /b/home carries, beside the same route without them. For the analysis of the
decorator path's ratio to the routing floor: no target of its own."""

from fastapi import FastAPI, Request, Response

from ._common import gc_freeze_if_asked, home_body

_RESPONSE = home_body()
_RESPONSE.raw_headers += [
    (b"etag", b'"0123456789abcdef0123456789abcdef"'),
    (b"cache-hit", b"true"),
    (b"cache-control", b"max-age=180"),
    (b"age", b"3"),
    (b"expires", b"Sun, 06 Dec 2026 23:59:59 GMT"),
]

app = FastAPI()


@app.get("/b/home")
async def home(request: Request, response: Response):
    return _RESPONSE


gc_freeze_if_asked()
