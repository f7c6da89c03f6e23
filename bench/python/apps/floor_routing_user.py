# SPDX-License-Identifier: MIT
"""FastAPI's routing floor of a per-user route (issue 17): /b/home with a `Depends(current_user)`
user, returning one JSONResponse made at import: routing plus the dependency, the least a per-user
route cached by a decorator (httpcache_user_near_app) can cost."""

from fastapi import Depends, FastAPI, Request, Response

from ._common import User, current_user, gc_freeze_if_asked, home_body

_RESPONSE = home_body()

app = FastAPI()


@app.get("/b/home")
async def home(request: Request, response: Response, user: User = Depends(current_user)):
    return _RESPONSE


gc_freeze_if_asked()
