# SPDX-License-Identifier: MIT
"""The Response FastAPI injects into a route handler (a parameter annotated ``Response``).

FastAPI copies the status and headers a handler sets on that response into the one it sends,
so for the cache they are part of the handler's result:

- a miss judges them by the storage rules of a returned Response and stores them with the value
  (a value record, ``_codec``); a hit sets them on its own injected response;
- a dict or model result gets its cache headers (Cache-Control, Expires, Cache-Hit) there.

A handler without such a parameter gets one added to the wrapper's signature, keyword-only and
never passed to the handler, so that FastAPI injects one; a direct call passes nothing.
"""

from __future__ import annotations

import inspect
import sys
import typing
from typing import Any, Callable

PARAM = "httpcache_response"


def _response_class() -> Any:
    # Never imported here: a route's module imported FastAPI (so Starlette) before decorating.
    mod = sys.modules.get("starlette.responses")
    return None if mod is None else mod.Response


def response_param(func: Callable[..., Any]) -> tuple[str | None, bool]:
    """(the name of func's Response parameter, or PARAM when the wrapper must add one; whether it
    adds it). (None, False) without Starlette or when func's signature cannot be read."""
    response = _response_class()
    if response is None:
        return None, False
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return None, False
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # noqa: BLE001 - unresolvable annotations: read them as written
        hints = {}
    for name, p in params.items():
        annotation = hints.get(name, p.annotation)
        if isinstance(annotation, type) and issubclass(annotation, response):
            return name, False
    if PARAM in params or any(p.kind is p.VAR_POSITIONAL for p in params.values()):
        return None, False  # never shadow a parameter; *args routes are not FastAPI's
    return PARAM, True


def add_param(wrapper: Callable[..., Any], func: Callable[..., Any]) -> None:
    """Gives wrapper func's signature plus a keyword-only PARAM annotated Response (before any
    ``**kwargs``): what FastAPI reads to inject the response."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    added = inspect.Parameter(PARAM, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_response_class())
    at = len(params) - 1 if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD else len(params)
    params.insert(at, added)
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]


def without_param(kwargs: dict) -> dict:
    """kwargs as the handler takes them (PARAM removed)."""
    return {k: v for k, v in kwargs.items() if k != PARAM}
