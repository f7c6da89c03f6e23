# SPDX-License-Identifier: MIT
"""The HTTP headers httpcache adds to the responses it serves or stores.

A response served from the cache has ``Cache-Hit: true``, ``Cache-Control: max-age=<its
lifetime>`` with ``Age: <seconds since it was stored>`` (plus ``private`` when the key is
per-user) and ``Expires: <HTTP-date>``; a stored miss gets the Cache-Control and Expires of its
full lifetime and an ETag (the handler's, or the core's strong ETag of the body). A request whose
If-None-Match / If-Modified-Since the stored response satisfies gets a bodiless 304 with those
headers. The handler's own Cache-Control directives are kept, with
max-age and s-maxage never above what the entry has left (see ``_rules`` for the cap on the
stored TTL). None of these headers is sent as stored (see ``_codec``), so a hit appends them to
the decoded response without looking for old ones.
"""

from __future__ import annotations

import email.utils
import functools
import time
from typing import Any

from . import _httpcache


@functools.lru_cache(maxsize=256)
def _http_date(epoch_seconds: int) -> bytes:
    # Hits of one entry share their Expires instant: each second is formatted once.
    return email.utils.formatdate(epoch_seconds, usegmt=True).encode("latin-1")


@functools.lru_cache(maxsize=1024)
def _control(max_age: int, per_user: bool, handler: str | None) -> bytes:
    """Cache-Control for `max_age` seconds left (``httpcache_http_cache_control``): a handler's own
    directives kept in order, max-age and s-maxage lowered to what the entry has left (never
    promise more than the handler allowed or the entry has), max-age added when it had neither;
    per-user: public dropped, private added. Cached: hits of one entry ask the same question."""
    return _httpcache.http_cache_control(max_age, per_user, handler)


def cache_headers(
    seconds: float, per_user: bool, hit: bool, handler: str | None = None, stored_at: float = 0,
) -> list[tuple[bytes, bytes]]:
    """The raw headers a cached response gets, in order: Cache-Hit (hits only), Cache-Control,
    Age (hits of records that know when they were stored) and Expires. `seconds` is what the
    entry has left. A hit says ``max-age=<its lifetime>`` with ``Age: <time since stored>``
    (RFC 9111 section 5.1), so a proxy in front computes the expiry we do; without a stored-at
    time, max-age is what is left. `handler` is the handler's own Cache-Control, kept as
    _control says."""
    left = max(seconds, 0)  # a stale entry (stale-while-revalidate, -if-error) has none left
    now = time.time()
    age = max(now - stored_at, 0) if hit and stored_at else None
    # max-age is the lifetime (what is left plus the age, exact to the millisecond: a stale
    # entry's `seconds` is minus its staleness, so Age > max-age says so), Age whole seconds.
    control = _control(int(left) if age is None else max(round(seconds + age), 0), per_user, handler)
    expires = (b"expires", _http_date(round(now + left)))
    if not hit:
        return [(b"cache-control", control), expires]
    if age is None:
        return [(b"cache-hit", b"true"), (b"cache-control", control), expires]
    return [(b"cache-hit", b"true"), (b"cache-control", control), (b"age", b"%d" % int(age)), expires]


def hit_headers_good_for(now: float, stored_at: float, seconds: float) -> float:
    """How long (s) the headers cache_headers() gave a hit at `now` stay as they are: Age (or,
    without a stored-at time, max-age) is whole seconds, and the rest stays for the entry's life."""
    if stored_at and now > stored_at:
        return 1 - (now - stored_at) % 1
    return seconds % 1 or 1


_CONDITIONS = (b"if-none-match", b"if-modified-since")
# What a 304 carries (RFC 9110 section 15.4.5: the headers a 200 would, that describe the entry).
NOT_MODIFIED_KEEPS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary", b"age", b"cache-hit", b"last-modified"}
)


_REQUEST_CONTROLS = (b"cache-control", b"pragma")


def request_flags(scope: dict) -> int:
    """The core's reading of a request's own Cache-Control (HTTP_REQUEST_NO_STORE, _NO_CACHE);
    0 without one (checked first: most requests send none)."""
    headers = scope.get("headers", ())
    if not any(n in _REQUEST_CONTROLS for n, _ in headers):
        return 0
    return _httpcache.http_request_flags(list(headers))


def is_conditional(scope: dict) -> bool:
    """Whether a GET/HEAD request carries a precondition a stored response may answer with 304."""
    return scope.get("method") in ("GET", "HEAD") and any(n in _CONDITIONS for n, _ in scope.get("headers", ()))


def not_modified(response: Any, scope: dict) -> bool:
    """The core's answer (httpcache_http_not_modified_by) for a decoded stored response (its
    validators: see _codec.decode_record) and a request's preconditions. The answer depends on
    nothing else, so the response (a memo's shared template, read by every hit of the entry)
    keeps the last few: a browser revalidating with the ETag it got asks the same question."""
    asked: list[tuple[bytes, bytes]] = [(n, v) for n, v in scope.get("headers", ()) if n in _CONDITIONS]
    key = tuple(asked)
    answers = response.__dict__.get("_not_modified")
    if answers is None:
        answers = response._not_modified = {}
    answer = answers.get(key)
    if answer is None:
        answer = _httpcache.http_not_modified_by(*response.validators, asked)
        if len(answers) < 32:  # bounded: clients cannot grow it
            answers[key] = answer
    return answer


def not_modified_response(full: Any, added: list[tuple[bytes, bytes]]) -> Any:
    """The 304 of a stored response (only read) with the cache headers `added` (cache_headers():
    all of them describe the entry): the headers that describe the entry, no body. Built without
    Response.__init__ (no body to render); the stored headers it keeps are picked once per
    template, which every 304 of the entry shares."""
    response = object.__new__(_response_class())
    response.status_code = 304
    response.body = b""
    response.background = None
    response.raw_headers = kept_for_304(full) + added
    return response


def kept_for_304(full: Any) -> list[tuple[bytes, bytes]]:
    """The stored headers a 304 of `full` (a shared template, only read) repeats: picked once."""
    kept = full.__dict__.get("_kept_for_304")
    if kept is None:
        kept = full._kept_for_304 = [(n, v) for n, v in full.raw_headers if n in NOT_MODIFIED_KEEPS]
    return kept


_RESPONSE: list[Any] = []


def _response_class() -> Any:
    """starlette's Response, imported at the first 304 (the package does not need starlette)."""
    if not _RESPONSE:
        from starlette.responses import Response

        _RESPONSE.append(Response)
    return _RESPONSE[0]


def ensure_etag(response: Any) -> None:
    """Gives a response being stored the ETag its record got (the core's strong ETag of the
    body) when its handler set none, so a miss and its hits carry the same validator."""
    if not any(n == b"etag" for n, _ in response.raw_headers):
        response.raw_headers.append((b"etag", _httpcache.http_strong_etag(bytes(response.body))))


def set_cache_headers(response: Any, seconds: float, per_user: bool, hit: bool) -> None:
    """Sets cache_headers() on a response the handler built, merging its own Cache-Control and
    replacing its Expires and Age."""
    headers = response.headers
    handler = ", ".join(headers.getlist("cache-control")) or None
    for name, value in cache_headers(seconds, per_user, hit, handler):
        headers[name.decode("latin-1")] = value.decode("latin-1")
    if "age" in headers:
        del headers["age"]
