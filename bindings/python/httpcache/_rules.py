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
    """Whether a response may be stored (`refused` says why not), the most seconds its handler
    allows (None: no limit of its own) and its own Cache-Control value (kept and replayed, with
    max-age/s-maxage adjusted)."""

    refused: str | None
    cap: int | None = None
    cache_control: str | None = None


def split_directives(value: str) -> list[str] | None:
    """The comma-separated parts of a Cache-Control value, stripped, with commas inside quoted
    strings kept where they are; None when a quoted string is not closed."""
    parts, current, quoted, escaped = [], [], False, False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if quoted:
        return None
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def directives(value: str) -> dict[str, str | None] | None:
    """Cache-Control directives, names lower-cased: {"max-age": "60", "public": None, ...}; the
    first of a repeated name wins; None when the value does not parse."""
    parts = split_directives(value)
    if parts is None:
        return None
    out: dict[str, str | None] = {}
    for part in parts:
        name, eq, arg = part.partition("=")
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


def verdict(status: int, headers: Iterable[tuple[bytes, bytes]], per_user: bool) -> Verdict:
    """The storage verdict for a response. Header names lower-case."""
    if status not in STORABLE_STATUS:
        return Verdict(f"status {status}")
    controls: list[str] = []
    expires: str | None = None
    for name, raw in headers:
        if name == b"set-cookie":
            return Verdict("it sets a cookie")
        if name == b"cache-control":
            controls.append(raw.decode("latin-1"))
        elif name == b"vary":
            fields = {f.strip().lower() for f in raw.decode("latin-1").split(",") if f.strip()}
            if not fields <= (_PER_USER_VARY if per_user else frozenset()):
                return Verdict(f"Vary: {raw.decode('latin-1')}" + ("" if per_user else " under a key shared by users"))
        elif name == b"expires":
            expires = raw.decode("latin-1")
    control = ", ".join(controls) or None
    d = directives(control) if control else {}
    if d is None:
        return Verdict("its Cache-Control does not parse")
    for name in ("no-store", "no-cache"):
        if name in d:
            return Verdict(f"Cache-Control: {name}")
    if "private" in d and not per_user:
        return Verdict("Cache-Control: private under a key shared by users")
    cap = _seconds(d["s-maxage"]) if "s-maxage" in d else _seconds(d.get("max-age"))
    if cap is None and expires is not None:
        cap = _expires_in(expires)
    if cap == 0:
        return Verdict("its handler allows 0 seconds of freshness")
    return Verdict(None, cap, control)
