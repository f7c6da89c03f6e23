# SPDX-License-Identifier: MIT
"""The HTTP headers httpcache adds to the responses it serves or stores.

A response served from the cache has ``Cache-Hit: true``, ``Cache-Control: max-age=<remaining
seconds>`` (plus ``private`` when the key is per-user) and ``Expires: <HTTP-date>``; a stored miss
gets the same Cache-Control and Expires. There is deliberately no ``Age`` header: Age is the time
the response has already spent in caches, and repeating the remaining TTL there makes every
downstream copy stale at once. None of these headers is ever stored (see ``_codec``), so a hit
appends them to the decoded response without looking for old ones.
"""

from __future__ import annotations

import email.utils
import functools
import time
from typing import Any


@functools.lru_cache(maxsize=256)
def _http_date(epoch_seconds: int) -> bytes:
    # Hits of one entry share their Expires instant: each second is formatted once.
    return email.utils.formatdate(epoch_seconds, usegmt=True).encode("latin-1")


def cache_headers(seconds: float, per_user: bool, hit: bool) -> list[tuple[bytes, bytes]]:
    """The raw headers a cached response gets, in order: Cache-Hit (hits only), Cache-Control
    (max-age is the remaining lifetime rounded down: never promise more than the entry has) and
    Expires (the expiry instant to the nearest second)."""
    seconds = max(seconds, 0)
    max_age = int(seconds)
    control = (b"private, max-age=%d" if per_user else b"max-age=%d") % max_age
    expires = (b"expires", _http_date(round(time.time() + seconds)))
    if hit:
        return [(b"cache-hit", b"true"), (b"cache-control", control), expires]
    return [(b"cache-control", control), expires]


def set_cache_headers(response: Any, seconds: float, per_user: bool, hit: bool) -> None:
    """Sets cache_headers() on a response the handler built, replacing any Cache-Control,
    Expires or Age of its own."""
    headers = response.headers
    for name, value in cache_headers(seconds, per_user, hit):
        headers[name.decode("latin-1")] = value.decode("latin-1")
    if "age" in headers:
        del headers["age"]
