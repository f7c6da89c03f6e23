# SPDX-License-Identifier: MIT
"""What FastAPI injects into a route handler for the cache: the Response it sends (a parameter
annotated ``Response``) and the Request (annotated ``Request``).

FastAPI copies the status and headers a handler sets on that response into the one it sends,
so for the cache they are part of the handler's result:

- a miss judges them by the storage rules of a returned Response and stores them with the
  result; a hit sets them on its own injected response;
- a result gets its cache headers (Cache-Control, Expires, Cache-Hit) there.

The request names the route (``_routes``): how FastAPI would serialise the result, and the
default key when ``@cache`` names none.

A handler without such a parameter gets one added to the wrapper's signature, keyword-only and
never passed to the handler, so that FastAPI injects it; a direct call passes nothing.
"""

from __future__ import annotations

import inspect
import sys
import typing
from typing import Any, Callable, NamedTuple

PARAM = "httpcache_response"
REQUEST_PARAM = "httpcache_request"


def _class(module: str, name: str) -> Any:
    # Never imported here: a route's module imported FastAPI (so Starlette) before decorating.
    mod = sys.modules.get(module)
    return None if mod is None else getattr(mod, name, None)


class Injected(NamedTuple):
    """The names of a handler's Response and Request parameters (None: neither its own nor
    added), and those the wrapper adds."""

    response: str | None = None
    request: str | None = None
    added: tuple[str, ...] = ()


def injected_params(func: Callable[..., Any]) -> Injected:
    """Where FastAPI's Response and Request reach func's wrapper. Nothing without Starlette or
    when func's signature cannot be read; nothing added when that would shadow a parameter or
    func takes *args (not a FastAPI route)."""
    classes = {"response": _class("starlette.responses", "Response"), "request": _class("starlette.requests", "Request")}
    if classes["response"] is None:
        return Injected()
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return Injected()
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # noqa: BLE001 - unresolvable annotations: read them as written
        hints = {}
    found: dict[str, str | None] = {"response": None, "request": None}
    for name, p in params.items():
        annotation = hints.get(name, p.annotation)
        for what, cls in classes.items():
            if found[what] is None and cls is not None and isinstance(annotation, type) and issubclass(annotation, cls):
                found[what] = name
    if any(p.kind is p.VAR_POSITIONAL for p in params.values()):
        return Injected(found["response"], found["request"])
    added = []
    for what, name in (("response", PARAM), ("request", REQUEST_PARAM)):
        if found[what] is None and classes[what] is not None and name not in params:
            found[what] = name
            added.append(name)
    return Injected(found["response"], found["request"], tuple(added))


def add_params(wrapper: Callable[..., Any], func: Callable[..., Any], added: tuple[str, ...]) -> None:
    """Gives wrapper func's signature plus the keyword-only parameters `added` (before any
    ``**kwargs``), annotated with the class FastAPI injects."""
    if not added:
        return
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    at = len(params) - 1 if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD else len(params)
    for name in added:
        cls = _class("starlette.responses", "Response") if name == PARAM else _class("starlette.requests", "Request")
        params.insert(at, inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=cls))
        at += 1
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]


def without_params(kwargs: dict, added: tuple[str, ...]) -> dict:
    """kwargs as the handler takes them (the added parameters removed)."""
    return {k: v for k, v in kwargs.items() if k not in added}
