# SPDX-License-Identifier: MIT
"""/b/home with no cache: the framework's own ceiling."""

from fastapi import FastAPI, Request, Response

from ._common import gc_freeze_if_asked, home_body

app = FastAPI()


@app.get("/b/home")
async def home(request: Request, response: Response):
    return home_body()


gc_freeze_if_asked()
