# SPDX-License-Identifier: MIT
"""A FastAPI route's side of a cached handler: the response FastAPI would send for what the
handler returned, and the key of a request when ``@cache`` names none.

A handler called by FastAPI gets the request (its own ``Request`` parameter, or one the wrapper
adds: ``_injected``), whose scope names the route. Its result, when not already a Response, is
turned into the response FastAPI itself would build (the route's response_model with its
include/exclude/alias settings, status_code, response_class, and the status and headers the
handler set on its injected Response), and that response is what is stored and returned: a hit
then sends the same bytes and headers without validating or serialising anything again.

The default key of a route request holds its method (HEAD as GET: the same response), the route's
path template under its mount, the path parameters and the query parameters sorted by name (the
order of repeated names kept); headers, cookies and the body are not part of it, so a route whose
response depends on them (who is asking) must name that in ``key``. Requests with an
``Authorization`` header are not cached under a default key.

FastAPI is never imported here: a route exists only once the application imported it.
"""

from __future__ import annotations

import re
import sys
from typing import Any
from urllib.parse import quote

_PATH_PARAM = re.compile(r"\{([^{}:]+)(?::[^{}]*)?\}")


def route_of(request: Any) -> Any:
    """The FastAPI route (or, for a route of an included router, its effective settings) that
    this request was routed to, or None (a Starlette route, or no route)."""
    scope = getattr(request, "scope", None)
    route = None if scope is None else scope.get("route")
    if route is None or not hasattr(route, "response_field"):
        return None
    routing = sys.modules.get("fastapi.routing")
    effective = getattr(routing, "_get_scope_effective_route_context", None)
    context = effective(scope) if effective is not None else None
    return context if context is not None and getattr(context, "original_route", None) is route else route


def response_for(route: Any, result: Any, injected: Any) -> Any:
    """The response FastAPI would send for a handler's `result` (not a Response), or None when
    FastAPI would refuse it (its own validation error is then raised by FastAPI) or the route
    streams its results."""
    if getattr(route, "is_sse_stream", False) or getattr(route, "is_json_stream", False):
        return None
    from fastapi.datastructures import DefaultPlaceholder
    from fastapi.encoders import jsonable_encoder
    from fastapi.utils import is_body_allowed_for_status_code
    from starlette.responses import Response

    field = route.response_field
    default_class = isinstance(route.response_class, DefaultPlaceholder)
    if field is not None:
        value, errors = field.validate(result, {}, loc=("response",))
        if errors:
            return None
        options = dict(
            include=route.response_model_include, exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias, exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults, exclude_none=route.response_model_exclude_none,
        )
        content = field.serialize_json(value, **options) if default_class else field.serialize(value, **options)
    else:
        content = jsonable_encoder(result)
    status = route.status_code
    if injected is not None and injected.status_code:
        status = injected.status_code
    args = {} if status is None else {"status_code": status}
    if field is not None and default_class:
        response = Response(content=content, media_type="application/json", **args)
    else:
        cls = route.response_class.value if default_class else route.response_class
        response = cls(content, **args)
    if not is_body_allowed_for_status_code(response.status_code):
        response.body = b""
    if injected is not None:
        response.headers.raw.extend(injected.headers.raw)
    return response


def default_key(request: Any, route: Any) -> tuple[bytes, list[bytes]] | None:
    """(the key template, its values) of a route request when @cache names no key; None for a
    request that must not share a default key (it carries credentials)."""
    scope = request.scope
    for name, _ in scope.get("headers", ()):
        if name == b"authorization":
            return None
    method = scope.get("method", "GET")
    if method == "HEAD":
        method = "GET"
    path_format = getattr(route, "path_format", None) or scope.get("path", "")
    root = scope.get("root_path", "").rstrip("/").replace("{", "{{").replace("}", "}}")
    names = _PATH_PARAM.findall(path_format)
    literal = _PATH_PARAM.split(path_format)[::2]  # the text between parameters
    template = f"{method} {root}" + "{}".join(part.replace("{", "{{").replace("}", "}}") for part in literal)
    params = scope.get("path_params", {})
    values = [str(params.get(n, "")).encode("utf-8") for n in names]
    if scope.get("query_string"):
        pairs = sorted(request.query_params.multi_items(), key=lambda kv: kv[0])
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
        if query:
            template += "?{}"
            values.append(query.encode("ascii"))
    return template.encode("utf-8"), values
