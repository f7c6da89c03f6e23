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
order of repeated names kept). Headers, cookies and the body are not part of it, so it is used
only where they cannot matter: GET and HEAD requests without an ``Authorization`` header, to
routes none of whose dependencies (the handler included) reads a header, a cookie, the body, the
Request itself or a security scheme. Anything else must name what keys it in ``key``.

FastAPI is never imported here: a route exists only once the application imported it.
"""

from __future__ import annotations

import re
import sys
import weakref
from typing import Any
from urllib.parse import quote

from ._injected import REQUEST_PARAM

_PATH_PARAM = re.compile(r"\{([^{}:]+)(?::[^{}]*)?\}")


def route_of(request: Any, endpoint: Any) -> Any:
    """The FastAPI route (or, for a route of an included router, its effective settings) that
    this request was routed to, when `endpoint` is its handler; else None (a Starlette route, no
    route, or a cached dependency of the route rather than its handler)."""
    scope = getattr(request, "scope", None)
    route = None if scope is None else scope.get("route")
    if route is None or not hasattr(route, "response_field") or scope.get("endpoint") is not endpoint:
        return None
    routing = sys.modules.get("fastapi.routing")
    effective = getattr(routing, "_get_scope_effective_route_context", None)
    context = effective(scope) if effective is not None else None
    return context if context is not None and getattr(context, "original_route", None) is route else route


def response_for(route: Any, result: Any, injected: Any, own_headers: int = 0) -> Any:
    """The response FastAPI would send for a handler's `result` (not a Response), with the
    injected response's headers from index `own_headers` on (those the handler set; the ones
    before were set by dependencies for this request only), or None when FastAPI would refuse it
    (its own validation error is then raised by FastAPI) or the route streams its results."""
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
        response.headers.raw.extend(injected.raw_headers[own_headers:])
    return response


_refusals: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # route -> why no default key, or ""


def _reads_the_caller(route: Any) -> str:
    """What in a route's dependency tree (the handler's own parameters included) can make its
    response depend on who asks, beyond the path and query; "" for nothing."""
    stack = [getattr(route, "dependant", None)]
    while stack:
        d = stack.pop()
        if d is None:
            continue
        for attr, what in (("header_params", "a header"), ("cookie_params", "a cookie"), ("body_params", "the body")):
            if getattr(d, attr, None):
                return f"it reads {what}"
        for attr in ("request_param_name", "http_connection_param_name", "security_scopes_param_name"):
            name = getattr(d, attr, None)
            if name is not None and name != REQUEST_PARAM:
                return "a dependency or the handler reads the Request (a security scheme does too)"
        stack.extend(getattr(d, "dependencies", ()))
    return ""


def _refusal_of(route: Any) -> str:
    try:
        refusal = _refusals.get(route)
    except TypeError:  # a settings object that cannot be a weak key: read it each time
        return _reads_the_caller(route)
    if refusal is None:
        refusal = _refusals[route] = _reads_the_caller(route)
    return refusal


def default_key(request: Any, route: Any) -> tuple[bytes, list[bytes]] | str:
    """(the key template, its values) of a route request when @cache names no key, or why it has
    none (the response may depend on more than the path and query: see the module's docstring)."""
    scope = request.scope
    method = scope.get("method", "GET")
    if method not in ("GET", "HEAD"):
        return f"a {method} request has a body"
    for name, _ in scope.get("headers", ()):
        if name == b"authorization":
            return "the request has an Authorization header"
    refusal = _refusal_of(route)
    if refusal:
        return refusal
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
