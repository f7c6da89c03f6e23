# SPDX-License-Identifier: MIT
"""The HTTP storage rules, as the core decides them (``httpcache_http_judge``,
core/http_rules.cpp): whether a response may be stored under a key, and for how long its handler
allows (RFC 9111 sections 3, 4.1 and 5.2). The rules live in the core so that a C program
sharing the entries judges a response as Python does; include/httpcache.h lists them:

- status 2xx except 206; no ``Set-Cookie``;
- ``Cache-Control``: not ``no-store``, not ``no-cache``, not ``private`` unless the key is per-user;
  a ``max-age=0`` / ``s-maxage=0`` (or an ``Expires`` already past) is not stored;
- ``Vary``: none, except ``Authorization`` or ``Cookie`` under a per-user key, and the headers
  ``@cache(vary=[...])`` keys variants by.

The freshness the handler allows (``s-maxage``, else ``max-age``, else ``Expires``) caps the stored
TTL and what clients are told.
"""

from __future__ import annotations

import time
from typing import Iterable, NamedTuple

from . import _httpcache


class Verdict(NamedTuple):
    """Whether a response may be stored (`refused` says why not) and the most seconds its
    handler allows (None: no limit of its own)."""

    refused: str | None
    cap: int | None = None


def verdict(status: int, headers: Iterable[tuple[bytes, bytes]], per_user: bool, varied: list[str] = ()) -> Verdict:  # type: ignore[assignment]
    """The storage verdict for a response (raw header pairs, any case) under a key that tells
    apart the variants of the request headers `varied` (a Vary naming only those is accepted)."""
    refused, cap = _httpcache.http_judge(status, list(headers), per_user, int(time.time()), list(varied))
    return Verdict(refused, cap)
