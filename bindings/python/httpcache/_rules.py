# SPDX-License-Identifier: MIT
"""The HTTP storage rules: whether a response may be stored under a key, and for how long its
handler allows (RFC 9111 sections 3, 4.1 and 5.2.2).

A response is stored only when every rule below lets it; otherwise it is served uncached:

- status: 2xx except 206 (a partial body must never answer a request without Range);
- no ``Set-Cookie`` (a cookie is one client's);
- ``Cache-Control``: not ``no-store``; not ``no-cache`` (it may not be served without
  revalidation, and computing again is our revalidation, so storing it would only waste room);
  not ``private`` unless the key is per-user; a ``max-age=0`` / ``s-maxage=0`` is not stored;
- ``Vary``: none, except ``Authorization`` or ``Cookie`` under a per-user key. A ``Vary: *`` or a
  response that varies on credentials is never stored under a shared key, and variants of other
  request headers (Accept, Accept-Encoding, ...) are not stored at all: the key does not hold
  the request's headers, so one variant would answer every request (section 4.1 lets a cache
  decline to store instead of keying variants).

The freshness the handler allows caps the stored TTL and what clients are told: ``s-maxage``
(we are a shared cache) or else ``max-age``, or else ``Expires``.
"""

from __future__ import annotations

import email.utils
import time
from typing import Iterable, NamedTuple

STORABLE_STATUS = frozenset(range(200, 300)) - {206}
_PER_USER_VARY = frozenset({"authorization", "cookie"})


class Verdict(NamedTuple):
    """A storable response: the most seconds its handler allows (None: no limit of its own) and
    its own Cache-Control value (kept and replayed, with max-age/s-maxage adjusted)."""

    cap: int | None
    cache_control: str | None


def directives(value: str) -> dict[str, str | None]:
    """Cache-Control directives, names lower-cased: {"max-age": "60", "public": None, ...}."""
    out: dict[str, str | None] = {}
    for part in value.split(","):
        name, eq, arg = part.strip().partition("=")
        if name:
            out.setdefault(name.strip().lower(), arg.strip().strip('"') if eq else None)
    return out


def _seconds(arg: str | None) -> int | None:
    try:
        return max(int(arg), 0) if arg is not None else None
    except ValueError:
        return 0  # a malformed delta-seconds is stale (section 1.2.2)


def _expires_in(value: str) -> int:
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0  # an invalid date means "already expired" (section 5.3)
    return max(int(when - time.time()), 0)


def verdict(status: int, headers: Iterable[tuple[bytes, bytes]], per_user: bool) -> Verdict | None:
    """The storage verdict for a response (None: not storable). Header names lower-case."""
    if status not in STORABLE_STATUS:
        return None
    controls: list[str] = []
    expires: str | None = None
    for name, raw in headers:
        if name == b"set-cookie":
            return None
        if name == b"cache-control":
            controls.append(raw.decode("latin-1"))
        elif name == b"vary":
            fields = {f.strip().lower() for f in raw.decode("latin-1").split(",") if f.strip()}
            if not fields <= (_PER_USER_VARY if per_user else frozenset()):
                return None
        elif name == b"expires":
            expires = raw.decode("latin-1")
    control = ", ".join(controls) or None
    d = directives(control) if control else {}
    if "no-store" in d or "no-cache" in d or ("private" in d and not per_user):
        return None
    cap = _seconds(d["s-maxage"]) if "s-maxage" in d else _seconds(d.get("max-age"))
    if cap is None and expires is not None:
        cap = _expires_in(expires)
    if cap == 0:
        return None
    return Verdict(cap, control)
