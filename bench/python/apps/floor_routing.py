# SPDX-License-Identifier: MIT
"""FastAPI's routing floor (issue 17): the seed's /b/home route, same signature, returning one
JSONResponse made at import instead of computing one: what routing a request to this route and
sending a prebuilt response costs, the least any cache behind the router (a decorator) can cost."""

from fastapi import FastAPI, Request, Response

from ._common import gc_freeze_if_asked, home_body

_RESPONSE = home_body()

app = FastAPI()


@app.get("/b/home")
async def home(request: Request, response: Response):
    return _RESPONSE


gc_freeze_if_asked()
