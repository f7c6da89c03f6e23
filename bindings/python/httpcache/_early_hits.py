# SPDX-License-Identifier: MIT
"""Early hits: cached routes answered before the framework routes the request.

A cached FastAPI hit still pays for routing, request validation, dependency resolution and the
endpoint call before the decorator can look at the cache: most of a trivial route's cost, which
is why a cached route cannot otherwise be much faster than an uncached one.
``HTTPCache.attach(app)`` wraps the app's router (inside every middleware and exception handler
of the app, so those still run for each request) with ``EarlyHits``:

1. A request that is routed as usual runs with a ``Learning`` in a context variable. When the
   endpoint is a ``@cache`` wrapper that serves or stores a response, the wrapper notes its key.
2. After the response, if the route is one whose response depends on nothing but the cache
   entry (see ``_route_is_static``), the request's routing signature (method GET, scheme, host,
   root path, path, exact query string) is remembered with that key.
3. A later request with the same signature is answered from the entry directly: one GET (shared
   by concurrent requests, see ``_asyncio``), the stored response with the same headers the
   decorator would give it. A miss, an undecodable value or a backend failure falls through to
   the normal path, which then knows the GET was just made (no second round trip on a miss).

Only routes whose key is fixed (no ``obj``: never a per-user key) and that have no dependencies,
no security, no header, cookie or body parameters are learned: for those, routing the same
signature again would call the same endpoint with the same arguments, and on a hit the decorator
would return the entry without calling it. Anything else keeps the normal path.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from . import _httpcache
from ._responses import MISS, cache_headers, decode

_OK = _httpcache.OK
_ENOTFOUND = _httpcache.ENOTFOUND

MAX_SIGNATURES = 4096
"""Bound of the table of learned request signatures: query strings are chosen by clients."""


class Learning:
    """What the @cache wrapper of the routed endpoint reports: the key it served or stored a
    response under (None: nothing learnable), and the key the early path just found missing."""

    __slots__ = ("endpoint", "key", "namespace", "missed")

    def __init__(self, missed: bytes | None = None) -> None:
        self.endpoint: Any = None
        self.key: bytes | None = None
        self.namespace: str | None = None
        self.missed = missed


learning: contextvars.ContextVar[Learning | None] = contextvars.ContextVar("httpcache_learning", default=None)


def note_response(endpoint: Any, key: bytes, namespace: str | None) -> None:
    """Called by a @cache wrapper with a fixed key that served or stored a response."""
    learn = learning.get()
    if learn is not None:
        learn.endpoint = endpoint
        learn.key = key
        learn.namespace = namespace


def missed_just_now(key: bytes) -> bool:
    """Whether the early path has just found `key` missing for this very request."""
    learn = learning.get()
    return learn is not None and learn.missed == key


def _dependency_free(dependant: Any) -> bool:
    return (
        dependant is not None
        and not dependant.dependencies
        and not dependant.header_params
        and not dependant.cookie_params
        and not dependant.body_params
        and dependant.security_scopes_param_name is None
    )


def _route_is_static(scope: dict, endpoint: Any, router: Any, app: Any, root_path: str) -> bool:
    """Whether routing this scope again ends in `endpoint` called with arguments that depend on
    nothing but the path and query, with nothing else on the way: the route is one of `router`'s
    own (or, in FastAPI, a route of an included APIRouter, which has no middleware of its own),
    no sub-application or Mount was crossed (those may have middleware), and it is a FastAPI
    route without dependencies (its own, its router's or the app's: FastAPI folds them into the
    dependant it runs), header, cookie, body or security parameters, or a plain Starlette route
    (the endpoint gets the request only)."""
    if scope.get("endpoint") is not endpoint:
        return False  # e.g. the cached function is a helper the endpoint calls
    if scope.get("app") is not app or scope.get("root_path", "") != root_path:
        return False  # a mounted application or Mount was crossed
    route = scope.get("route")
    if route is None:
        return False
    effective = scope.get("fastapi", {}).get("effective_route_context")
    included = effective is not None and getattr(effective, "original_route", None) is route
    if not included and not any(r is route for r in router.routes):
        return False  # e.g. a route of a Host's inner router, which may have middleware
    if hasattr(route, "dependant"):  # FastAPI's APIRoute
        if not _dependency_free(route.dependant):
            return False
        # Routes of an included router run the dependant of their effective context.
        return not included or _dependency_free(getattr(effective, "dependant", None))
    from starlette.routing import Route

    return type(route) is Route


class _Route:
    """A learned signature: its key, and the last value served with what was derived from it."""

    __slots__ = ("key", "namespace", "value", "status", "headers", "body")

    def __init__(self, key: bytes, namespace: str | None) -> None:
        self.key = key
        self.namespace = namespace
        self.value: bytes | None = None
        self.status = 0
        self.headers: list = []
        self.body = b""


def _signature(scope: dict) -> tuple:
    host = b""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    return (scope["scheme"], host, scope.get("root_path", ""), scope["path"], scope["query_string"])


class EarlyHits:
    """The ASGI app put in front of a router by HTTPCache.attach()."""

    def __init__(self, inner: Any, router: Any) -> None:
        self.inner = inner
        self.router = router
        self.routes: dict[tuple, _Route] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.inner(scope, receive, send)
            return
        sig = _signature(scope)
        route = self.routes.get(sig)
        missed = None
        if route is not None:
            served = await self._serve(route, send)
            if served:
                return
            if served is None:
                missed = route.key
        learn = Learning(missed)
        token = learning.set(learn)
        app, root_path = scope.get("app"), scope.get("root_path", "")
        try:
            await self.inner(scope, receive, send)
        finally:
            learning.reset(token)
        if (
            learn.key is not None
            and route is None
            and _route_is_static(scope, learn.endpoint, self.router, app, root_path)
        ):
            if len(self.routes) >= MAX_SIGNATURES:
                del self.routes[next(iter(self.routes))]
            self.routes[sig] = _Route(learn.key, learn.namespace)

    async def _serve(self, route: _Route, send: Any) -> bool | None:
        """True: answered. None: the key is missing. False: not answered (backend failure or a
        value that does not decode to a response)."""
        from ._core import HTTPCache

        handle = HTTPCache.handle(route.namespace)
        loop = asyncio.get_running_loop()
        ticket = handle.ticket()
        status, value, ttl_ms = await handle.adapter(loop).get(loop, route.key)
        if status != _OK:
            if status == _ENOTFOUND:
                handle.backend_ok(ticket)
                return None
            handle.backend_failed(ticket, "get", status)
            return False
        handle.backend_ok(ticket)
        if value != route.value:
            response = decode(value)
            if response is MISS or not hasattr(response, "raw_headers"):
                route.value = None
                return False
            route.status = response.status_code
            route.headers = list(response.raw_headers)
            route.body = response.body
            route.value = value
        await send({"type": "http.response.start", "status": route.status,
                    "headers": route.headers + cache_headers(ttl_ms / 1000, False, True)})
        await send({"type": "http.response.body", "body": route.body})
        return True


def attach(app: Any) -> None:
    """Puts EarlyHits in front of app's router (a FastAPI or Starlette app, or a Router)."""
    router = getattr(app, "router", app)
    stack = getattr(router, "middleware_stack", None)
    if stack is None:
        raise TypeError(f"HTTPCache.attach: {app!r} is not a FastAPI/Starlette app or router")
    if not isinstance(stack, EarlyHits):
        router.middleware_stack = EarlyHits(stack, router)
