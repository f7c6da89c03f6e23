# SPDX-License-Identifier: MIT
"""FastAPI's middleware floor (issue 17, for the analysis of HTTPCache.attach): a FastAPI app
whose router is replaced by the bare ASGI floor (floor_asgi), so a request runs the app's own
middleware stack (ServerErrorMiddleware, ExceptionMiddleware, AsyncExitStackMiddleware) and
nothing else. HTTPCache.attach answers hits inside that stack, in the router's place (every app
middleware still runs): this is the most an early hit can serve on a FastAPI app."""

from fastapi import FastAPI

from ._common import gc_freeze_if_asked
from .floor_asgi import app as bare

app = FastAPI()
app.router.middleware_stack = bare  # what HTTPCache.attach replaces too (with its EarlyHits)

gc_freeze_if_asked()
