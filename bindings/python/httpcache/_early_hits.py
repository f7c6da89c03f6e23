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
   the normal path; an ``async def`` wrapper then takes the early GET's verdict instead of
   asking the backend again. A ``def`` one asks again (its get_or_compute is one call, in a
   worker thread), so the lease the early GET's miss took is given back first: held by the
   loop's session, it would make that call's store another holder's and refuse it.

Only routes whose key is fixed (no ``obj``: never a per-user key) and that have no dependencies,
no security, no header, cookie or body parameters, no route class or middleware of their own,
and are not behind a Mount, a Host or a sub-application are learned (see ``_static_routes``):
for those, routing the same signature again would call the same endpoint with the same
arguments, and on a hit the decorator would return the entry without calling it. Anything else
keeps the normal path.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from typing import Any

from . import _httpcache
from ._codec import MISS, ResponseMemo, template_parts
from ._headers import cache_headers, hit_headers_good_for, is_conditional, kept_for_304, not_modified

_OK = _httpcache.OK
_ENOTFOUND = _httpcache.ENOTFOUND
_ESTALE = _httpcache.ESTALE

MAX_SIGNATURES = 4096
"""Bound of the table of learned request signatures: query strings are chosen by clients."""
MAX_SIGNATURE_BYTES = 2048
"""Longer host + path + query strings are never learned (so the table stays a few MB at most)."""


class Learning:
    """Between the early path and the @cache wrapper of the endpoint, for one request.

    The wrapper reports the fixed key it served or stored a response under (nothing learnable
    otherwise); the early path tells it what its own GET of a learned key just found (a miss, a
    backend failure, or a value that does not decode), so the wrapper does not ask again. Both
    are good for this request only: ``closed`` is set when the request ends, and the verdict is
    taken once (tasks the endpoint spawns inherit the context variable)."""

    __slots__ = ("endpoint", "key", "namespace", "verdict", "closed")

    def __init__(self, verdict: tuple | None = None) -> None:
        self.endpoint: Any = None
        self.key: bytes | None = None
        self.namespace: str | None = None
        self.verdict = verdict  # (namespace, key, status, lease number) of the early GET, or None
        self.closed = False


learning: contextvars.ContextVar[Learning | None] = contextvars.ContextVar("httpcache_learning", default=None)


def note_response(endpoint: Any, key: bytes, namespace: str | None) -> None:
    """Called by a @cache wrapper with a fixed key that served or stored a response."""
    learn = learning.get()
    if learn is not None and not learn.closed:
        learn.endpoint = endpoint
        learn.key = key
        learn.namespace = namespace


def early_verdict(key: bytes, namespace: str | None) -> tuple[int, int] | None:
    """What the early path's GET of `key` found for this request, taken once: (ENOTFOUND, the
    miss's lease number) for a miss, (ENOTFOUND, 0) for a value that does not decode (recompute
    and overwrite it), (a backend failure status, 0), or None (no early GET: ask the backend)."""
    learn = learning.get()
    if learn is None or learn.verdict is None or learn.closed:
        return None
    ns, k, status, lease = learn.verdict
    if k != key or ns != namespace:
        return None
    learn.verdict = None
    return status, lease


def _dependency_free(dependant: Any) -> bool:
    return (
        dependant is not None
        and not dependant.dependencies
        and not dependant.header_params
        and not dependant.cookie_params
        and not dependant.body_params
        and dependant.security_scopes_param_name is None
    )


def _is_plain_starlette_route(route: Any) -> bool:
    # A starlette Route of a function endpoint without middleware of its own: its app is then
    # the request_response() wrapper itself.
    from starlette.routing import Route

    app = getattr(route, "app", None)
    return type(route) is Route and getattr(app, "__qualname__", "") == "request_response.<locals>.app"


def _static_routes(router: Any) -> dict[int, tuple[Any, Any]]:
    """id -> (route, effective context or None) of every route reachable from `router` with no
    code of the app's own between the router and the endpoint's request handler: the router's
    own FastAPI routes (exactly APIRoute: a custom route class may run anything around the
    endpoint) and plain Starlette routes, and the FastAPI routes of included APIRouters (which
    have no middleware of their own). Not Mounts, Hosts or sub-applications."""
    found: dict[int, tuple[Any, Any]] = {}
    try:
        from fastapi.routing import APIRoute
    except ImportError:
        APIRoute = None
    for route in router.routes:
        if APIRoute is not None and type(route) is APIRoute or _is_plain_starlette_route(route):
            found[id(route)] = (route, None)
        elif type(route).__name__ == "_IncludedRouter" and hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                original = getattr(context, "original_route", None)
                if APIRoute is not None and type(original) is APIRoute:
                    found[id(original)] = (original, context)
    return found


def _route_is_static(scope: dict, endpoint: Any, router: Any, app: Any, root_path: str) -> bool:
    """Whether routing this scope again ends in `endpoint` called with arguments that depend on
    nothing but the path and query, with nothing else on the way: the route is one of
    _static_routes(router), no sub-application or Mount was crossed, and it is a FastAPI route
    without dependencies (its own, its router's or the app's: FastAPI folds them into the
    dependant it runs), header, cookie, body or security parameters, or a plain Starlette route
    (the endpoint gets the request only)."""
    if scope.get("endpoint") is not endpoint:
        return False  # e.g. the cached function is a helper the endpoint calls
    if scope.get("app") is not app or scope.get("root_path", "") != root_path:
        return False  # a mounted application or Mount was crossed
    route = scope.get("route")
    known = _static_routes(router).get(id(route))
    if route is None or known is None or known[0] is not route:
        return False
    context = known[1]
    if context is not None:
        # An included route runs the dependant of its effective context; it must be this one.
        effective = scope.get("fastapi", {}).get("effective_route_context")
        if effective is None or getattr(effective, "original_route", None) is not route:
            return False
        return _dependency_free(route.dependant) and _dependency_free(getattr(effective, "dependant", None))
    if hasattr(route, "dependant"):
        return _dependency_free(route.dependant)
    return True


class _Learned:
    """A learned signature: its key, the key's response memo (shared by every signature that
    learned the key), and what routing put in the scope (for the app's middleware and
    telemetry, which may read the route after the call)."""

    __slots__ = ("namespace", "key", "memo", "route", "endpoint", "path_params", "takes_verdict", "fast")

    def __init__(self, namespace: str | None, key: bytes, memo: ResponseMemo, scope: dict) -> None:
        self.namespace = namespace
        self.key = key
        self.memo = memo
        # The response held for this key, ready to send while the process holds its version (see
        # _httpcache.HitPath: armed by the hit that found it, with the hit's headers until their
        # next change).
        self.fast = _httpcache.HitPath(MISS)
        self.route = scope.get("route")
        self.endpoint = scope.get("endpoint")
        self.path_params = dict(scope.get("path_params") or {})
        self.takes_verdict = inspect.iscoroutinefunction(self.endpoint)  # early_verdict: async wrappers only


def _signature(scope: dict) -> tuple:
    host = b""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    return (scope["scheme"], host, scope.get("root_path", ""), scope["path"], scope["query_string"])


def _arm(
    epoch: int, learned: _Learned, handle: Any, version: int, response: Any, added: list, now: float, ttl_s: float,
) -> None:
    """Arms learned.fast with the memo's template of `version` and the hit's headers (computed at
    `now`), good until Age or max-age would change; not if the settings changed since `epoch`."""
    fields, headers = template_parts(response)
    good_for = hit_headers_good_for(now, response.stored_at, ttl_s)
    learned.fast.arm_response(
        epoch, handle.cache, learned.key, version, type(response), fields, headers + added, good_for, None, None,
        False, None, None,
    )


def _verdict(handle: Any, ticket: int, learned: _Learned, status: int, value: Any, ttl_ms: int) -> tuple:
    """The early GET's finding that did not answer the request, for the endpoint's @cache wrapper
    (see early_verdict): (namespace, key, status, the miss's lease number or 0)."""
    if status == _OK:
        status, ttl_ms = _ENOTFOUND, 0  # a value that does not decode: recomputed by the normal path
    elif status == _ENOTFOUND:
        handle.backend_ok(ticket)  # ttl_ms: the miss's lease number (see _asyncio.Flight)
    else:
        handle.backend_failed(ticket, "get", status, value)
        ttl_ms = 0
    return learned.namespace, learned.key, status, ttl_ms


class EarlyHits:
    """The ASGI app put in front of a router by HTTPCache.attach()."""

    def __init__(self, inner: Any, router: Any, handle_of: Any) -> None:
        self.inner = inner
        self.router = router
        self.handle_of = handle_of  # namespace -> its Handle (HTTPCache.handle), None while caching is off
        self.freeze_pending = False  # attach(freeze_gc=True): gc.freeze() once started
        self.signatures: dict[tuple, _Learned] = {}
        self.memos: dict[tuple, ResponseMemo] = {}  # (namespace, key) -> last decoded response
        self.routes_seen = len(router.routes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self.freeze_pending:
            if scope["type"] == "lifespan":
                send = self._freezing_after_startup(send)
            else:
                self._freeze_gc()  # a server that runs no lifespan: at the first request
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.inner(scope, receive, send)
            return
        self._forget_if_routes_changed()
        sig = _signature(scope)
        learned = self.signatures.get(sig)
        if learned is not None:
            parts = learned.fast.parts(scope)
            if parts is not MISS:
                status_code, body, headers = parts
                scope["route"] = learned.route
                scope["endpoint"] = learned.endpoint
                scope["path_params"] = learned.path_params
                await send({"type": "http.response.start", "status": status_code, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        verdict = None
        epoch = _httpcache.HitPath.epoch()  # before the settings are read (see _arm)
        handle = None if learned is None else self.handle_of(learned.namespace)  # None: caching is off
        if handle is not None:
            # Inline rather than in a helper coroutine: many requests wait here at once, and each
            # frame less is fewer objects for CPython's collector to promote (p99, see README).
            loop = asyncio.get_running_loop()
            ticket = handle.ticket()
            held = handle.cache.peek_version(learned.key)  # near tier, memory://, lmdb://: no network I/O, no future
            version = 0
            if held is not None:
                status, (value, ttl_ms, version) = _OK, held
            else:
                status, value, ttl_ms = await handle.adapter(loop).start_get(loop, learned.key)
            if status == _OK:
                handle.backend_ok(ticket)
                # The shared template is only read, and held across the awaits: one version.
                response = learned.memo.template(value)
                if response is not MISS:
                    scope["route"] = learned.route
                    scope["endpoint"] = learned.endpoint
                    scope["path_params"] = learned.path_params
                    now = time.time()  # before cache_headers reads it (see _arm)
                    added = cache_headers(ttl_ms / 1000, False, True, response.handler_cache_control, response.stored_at)
                    if version:
                        _arm(epoch, learned, handle, version, response, added, now, ttl_ms / 1000)
                    if is_conditional(scope) and not_modified(response, scope):
                        status_code, body, headers = 304, b"", kept_for_304(response) + added
                    else:
                        status_code, body, headers = response.status_code, response.body, response.raw_headers + added
                    await send({"type": "http.response.start", "status": status_code, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
            # The refresh of a stale entry, or any miss of a def route: its @cache wrapper reads
            # again and takes the lease itself.
            if status == _ESTALE or (status == _ENOTFOUND and not learned.takes_verdict):
                await handle.adapter(loop).release(loop, learned.key)
                handle.backend_ok(ticket)
            else:
                verdict = _verdict(handle, ticket, learned, status, value, ttl_ms)
        learn = Learning(verdict)
        token = learning.set(learn)
        app, root_path = scope.get("app"), scope.get("root_path", "")
        try:
            await self.inner(scope, receive, send)
        finally:
            learn.closed = True
            learning.reset(token)
        if learn.key is not None and learned is None:
            self._learn(sig, learn, scope, app, root_path)

    def _learn(self, sig: tuple, learn: Learning, scope: dict, app: Any, root_path: str) -> None:
        """Remembers `sig` as answered by learn.key, if its route is one answered early."""
        if len(sig[1]) + len(sig[3]) + len(sig[4]) > MAX_SIGNATURE_BYTES:
            return
        if not _route_is_static(scope, learn.endpoint, self.router, app, root_path):
            return
        if len(self.signatures) >= MAX_SIGNATURES:
            del self.signatures[next(iter(self.signatures))]  # the oldest
        memo = self._memo(learn.namespace, learn.key)
        self.signatures[sig] = _Learned(learn.namespace, learn.key, memo, scope)

    def _forget_if_routes_changed(self) -> None:
        if len(self.router.routes) != self.routes_seen:  # routes added or removed: relearn
            self.signatures.clear()
            self.routes_seen = len(self.router.routes)

    def _freezing_after_startup(self, send: Any) -> Any:
        async def send_then_freeze(message: dict) -> None:
            await send(message)
            if message.get("type") == "lifespan.startup.complete" and self.freeze_pending:
                self._freeze_gc()

        return send_then_freeze

    def _freeze_gc(self) -> None:
        # Everything alive once the app has started (modules, routes, models, pools) moves to
        # CPython's permanent generation: full collections no longer walk it. Collected first,
        # so no garbage is frozen with it.
        self.freeze_pending = False
        import gc

        gc.collect()
        gc.freeze()

    def _memo(self, namespace: str | None, key: bytes) -> ResponseMemo:
        # One per key, shared by every signature that learned it (bounded by the code's fixed
        # keys, not by clients); no size limit, as the number of keys is bounded.
        memo = self.memos.get((namespace, key))
        if memo is None:
            memo = self.memos[(namespace, key)] = ResponseMemo(max_bytes=None)
        return memo


def _router_stack_is_bare(router: Any, stack: Any) -> bool:
    """Whether nothing but FastAPI/Starlette's request body limit (irrelevant to the GETs
    answered early, whose body is never read) sits between the router and its routing."""
    while stack != router.app:
        if type(stack).__name__ not in ("RequestBodyLimitMiddleware", "_BodyLimitExceptionMiddleware"):
            return False
        stack = getattr(stack, "app", None)
        if stack is None:
            return False
    return True


def attach(app: Any, freeze_gc: bool, handle_of: Any) -> None:
    """Puts EarlyHits in front of app's router (a FastAPI or Starlette app, or a Router);
    `handle_of(namespace)` gives the handle a learned key is read through."""
    if not isinstance(freeze_gc, bool):
        raise TypeError(f"HTTPCache.attach: freeze_gc must be a bool, not {freeze_gc!r}")
    router = getattr(app, "router", app)
    stack = getattr(router, "middleware_stack", None)
    if stack is None or not hasattr(router, "routes") or not hasattr(router, "app"):
        raise TypeError(f"HTTPCache.attach: {app!r} is not a FastAPI/Starlette app or router")
    if isinstance(stack, EarlyHits):
        stack.freeze_pending = stack.freeze_pending or freeze_gc
        return
    if not _router_stack_is_bare(router, stack):
        raise TypeError(
            "HTTPCache.attach: the router has middleware of its own (Router(middleware=...)), "
            "which hits answered early would skip; attach to the application instead"
        )
    early = EarlyHits(stack, router, handle_of)
    early.freeze_pending = freeze_gc
    router.middleware_stack = early
