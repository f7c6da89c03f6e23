# SPDX-License-Identifier: MIT
"""The HTTP headers httpcache adds to the responses it serves or stores.

A response served from the cache has ``Cache-Hit: true``, ``Cache-Control: max-age=<remaining
seconds>`` (plus ``private`` when the key is per-user) and ``Expires: <HTTP-date>``; a stored miss
gets the same Cache-Control and Expires. There is deliberately no ``Age`` header: Age is the time
the response has already spent in caches, and repeating the remaining TTL there makes every
downstream copy stale at once. The handler's own Cache-Control directives are kept, with
max-age and s-maxage never above what the entry has left (see ``_rules`` for the cap on the
stored TTL). None of these headers is sent as stored (see ``_codec``), so a hit appends them to
the decoded response without looking for old ones.
"""

from __future__ import annotations

import email.utils
import functools
import time
from typing import Any

from ._rules import split_directives


@functools.lru_cache(maxsize=256)
def _http_date(epoch_seconds: int) -> bytes:
    # Hits of one entry share their Expires instant: each second is formatted once.
    return email.utils.formatdate(epoch_seconds, usegmt=True).encode("latin-1")


@functools.lru_cache(maxsize=1024)
def _control(max_age: int, per_user: bool, handler: str | None) -> bytes:
    """Cache-Control for `max_age` seconds left. A handler's own directives are kept, in order,
    with max-age and s-maxage lowered to what the entry has left (never promise more than the
    handler allowed or the entry has); max-age is added when it had neither."""
    if handler is None:
        return (b"private, max-age=%d" if per_user else b"max-age=%d") % max_age
    parts, timed = [], False
    for part in split_directives(handler) or []:
        name, eq, arg = part.partition("=")
        low = name.strip().lower()
        if per_user and low == "public":
            continue  # a per-user response is private: never tell a shared cache otherwise
        if low in ("max-age", "s-maxage"):
            timed = True
            try:
                arg = str(min(max(int(arg.strip().strip('"')), 0), max_age))
            except ValueError:
                arg = "0"
            parts.append(f"{low}={arg}")
        else:
            parts.append(part)
    if not timed:
        parts.append(f"max-age={max_age}")
    if per_user and not any(p.lower() == "private" for p in parts):
        parts.insert(0, "private")
    return ", ".join(parts).encode("latin-1")


def cache_headers(seconds: float, per_user: bool, hit: bool, handler: str | None = None) -> list[tuple[bytes, bytes]]:
    """The raw headers a cached response gets, in order: Cache-Hit (hits only), Cache-Control
    (max-age is the remaining lifetime rounded down; `handler` is the handler's own
    Cache-Control, kept as _control says) and Expires (the expiry instant to the nearest
    second)."""
    seconds = max(seconds, 0)
    control = _control(int(seconds), per_user, handler)
    expires = (b"expires", _http_date(round(time.time() + seconds)))
    if hit:
        return [(b"cache-hit", b"true"), (b"cache-control", control), expires]
    return [(b"cache-control", control), expires]


def set_cache_headers(response: Any, seconds: float, per_user: bool, hit: bool) -> None:
    """Sets cache_headers() on a response the handler built, merging its own Cache-Control and
    replacing its Expires and Age."""
    headers = response.headers
    handler = ", ".join(headers.getlist("cache-control")) or None
    for name, value in cache_headers(seconds, per_user, hit, handler):
        headers[name.decode("latin-1")] = value.decode("latin-1")
    if "age" in headers:
        del headers["age"]
