# SPDX-License-Identifier: MIT
"""The value codec: what is stored for a result, and the result a stored value gives back.

Plain function results
    The stored bytes are the result's JSON (or its ``coder=``'s bytes), chosen by ``_typed``.

Starlette/FastAPI responses
    Stored in the core's one record format (``httpcache_response_encode``/``_decode``, described
    in include/httpcache.h under "HTTP response records"), so a response cached here can be
    served by a C program and the other way round::

        HTTPCACHE-RESPONSE 1\n          magic and version
        <status> <header count>\n       decimal
        <media type>\n                  may be empty (Starlette's media_type None)
        <name>: <value>\n               one line per header, in order
        <body>                          every remaining byte, verbatim

    The headers are the response's own, lower-case as Starlette keeps them, without those that
    are recomputed or never stored: content-length, expires, age, cache-hit, date (a response
    with set-cookie is never stored). The handler's cache-control is stored and replayed, with
    its max-age adjusted to the entry's remaining lifetime. A JSON text can never start with ``H``, so records and plain values cannot
    be confused. A value that is not a well-formed record is a cache miss, never an error.

Which responses may be stored at all is decided by ``_rules`` when the record is made: the
record is the only way a response reaches the store.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from . import _httpcache
from ._rules import verdict

copy_json = _httpcache.copy_json

logger = logging.getLogger("httpcache")

MAGIC = b"HTTPCACHE-RESPONSE 1\n"  # a version-1 record; version 2 starts "HTTPCACHE-RESPONSE 2\n"
RECORD = b"HTTPCACHE-RESPONSE "  # what every record starts with, whatever its version
_SKIPPED_HEADERS = frozenset(
    {"content-length", "cache-control", "expires", "age", "cache-hit", "date", "set-cookie"}
)


class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS: Any = _Miss()
"""What decoding gives for a stored value that cannot be served (a cache miss)."""


def is_response(result: Any) -> bool:
    """Whether result is a Starlette (so also FastAPI) Response. Starlette is never imported
    here: if no one has imported it, no response can exist."""
    mod = sys.modules.get("starlette.responses")
    return mod is not None and isinstance(result, mod.Response)


def response_record(response: Any, per_user: bool) -> bytes | None:
    """The record of a response, or None when it must not be stored (see ``encode_response``)."""
    return encode_response(response, per_user)[0]


_told: set[tuple[str, str]] = set()  # (function, reason) already logged


def _refused(where: str | None, reason: str) -> None:
    """Logs once per function and reason (not per call) why a response is not stored."""
    if where is not None and (where, reason) not in _told:
        _told.add((where, reason))
        logger.info("httpcache: a response of %s is not stored: %s", where, reason)


def encode_response(
    response: Any, per_user: bool, where: str | None = None, revalidate: bool = False, varied: list[str] = (),  # type: ignore[assignment]
) -> tuple[bytes | None, int | None]:
    """(the record of a response or None when it must not be stored, the most seconds its handler
    allows or None). Not stored: a body not fully in memory (streaming, files), what the HTTP
    rules refuse (see ``_rules``), or a header the record format refuses. `revalidate`: the
    record also says ``Cache-Control: no-cache`` (added after the rules judged the response, which
    refuse a handler's own no-cache), so every hit tells clients to revalidate."""
    body = getattr(response, "body", None)
    if not isinstance(body, (bytes, bytearray, memoryview)):
        return None, None
    raw = [(name.lower(), value) for name, value in response.raw_headers]
    allowed = verdict(response.status_code, raw, per_user, varied)
    if allowed.refused is not None:
        _refused(where, allowed.refused)
        return None, None
    # The handler's Cache-Control is kept: hits replay its directives (see _headers).
    headers = [(n, v) for n, v in raw if n == b"cache-control" or n.decode("latin-1") not in _SKIPPED_HEADERS]
    if revalidate:
        headers.append((b"cache-control", b"no-cache"))
    media_type = response.media_type
    try:
        record = _httpcache.response_encode(
            response.status_code, None if media_type is None else media_type.encode("latin-1"), headers, bytes(body),
            int(time.time() * 1000),
        )
    except (ValueError, UnicodeError) as e:
        logger.warning("httpcache: response not cached, it cannot be recorded: %s", e)
        return None, None
    return record, allowed.cap


def decode_record(value: bytes) -> Any:
    """The Response a record describes, or MISS (also for a value record: see decode_value)."""
    try:
        from starlette.responses import Response
    except ImportError:
        return MISS
    try:
        status, media_type, headers, body, stored_at, _ = _httpcache.response_decode(value, True)
    except ValueError:
        return MISS
    if media_type.startswith(VALUE_MEDIA):
        return MISS
    response = Response(content=body, status_code=status, media_type=media_type.decode("latin-1") or None)
    response.stored_at = stored_at / 1000  # Unix seconds; 0 for a version-1 record: no Age
    # What a precondition is checked against (see _headers.not_modified), kept with the response.
    found = {n: v for n, v in reversed(headers) if n in (b"etag", b"last-modified")}
    response.validators = (found.get(b"etag"), found.get(b"last-modified"), stored_at)
    # Raw headers keep repeated names and exact values; content-length was set from the body.
    # The handler's Cache-Control is not sent as stored: the hit's headers adjust its max-age.
    headers = [(n.lower(), v) for n, v in headers]
    controls = [v.decode("latin-1") for n, v in headers if n == b"cache-control"]
    response.handler_cache_control = ", ".join(controls) or None
    stored = [(n, v) for n, v in headers if n.decode("latin-1") not in _SKIPPED_HEADERS]
    if any(n == b"content-type" for n, _ in stored):
        # The stored content-type (exact charset) replaces the one derived from media_type.
        response.raw_headers = [h for h in response.raw_headers if h[0] != b"content-type"]
    response.raw_headers.extend(stored)
    return response


# A value record: a response record whose body is a plain result's JSON and whose status and
# headers are those the handler set on its injected Response. The media type marks it (with
# "; status" when the handler set a status; else a hit leaves the route's own).
VALUE_MEDIA = b"application/x-httpcache-value+json"
_WITH_STATUS = b"; status"


def encode_value(
    data: bytes, injected: Any, per_user: bool, where: str, varied: list[str] = (),  # type: ignore[assignment]
) -> tuple[bytes | None, bool, int | None]:
    """The stored form of a plain result's bytes `data` whose handler may have set a status or headers on
    its injected response: judged like a returned Response (``_rules``), stored as a value
    record, or as the plain JSON when the handler set nothing."""
    raw = [(name.lower(), value) for name, value in injected.raw_headers]
    status = injected.status_code
    if not raw and status is None:
        return data, False, None
    allowed = verdict(status or 200, raw, per_user, varied)
    if allowed.refused is not None:
        _refused(where, allowed.refused)
        return None, False, None
    headers = [(n, v) for n, v in raw if n == b"cache-control" or n.decode("latin-1") not in _SKIPPED_HEADERS]
    media = VALUE_MEDIA + (_WITH_STATUS if status else b"")
    try:
        record = _httpcache.response_encode(status or 200, media, headers, data)
    except (ValueError, UnicodeError) as e:
        logger.warning("httpcache: result of %s not cached, its headers cannot be recorded: %s", where, e)
        return None, False, None
    return record, False, allowed.cap


def is_value_record(value: bytes) -> bool:
    """Whether stored bytes are a value record (checked without decoding: the media type is the
    record's third line)."""
    if not value.startswith(RECORD):
        return False
    line = value.find(b"\n", value.find(b"\n") + 1)  # the end of the status line
    return line > 0 and value.startswith(VALUE_MEDIA, line + 1)


def decode_value(value: bytes) -> tuple[bytes, int | None, list[tuple[bytes, bytes]]] | Any:
    """A value record's (stored result bytes, the status its handler set or None, its headers),
    or MISS."""
    try:
        status, media_type, headers, body = _httpcache.response_decode(value)
    except ValueError:
        return MISS
    return body, status if media_type.endswith(_WITH_STATUS) else None, [(n.lower(), v) for n, v in headers]


_scan_json = json.JSONDecoder().scan_once


def decode_json(value: bytes) -> Any:
    """A stored plain result (JSON text) back, or MISS."""
    try:
        text = value.decode("utf-8")
        # The scanner alone, when it consumes the whole text (what we store: compact JSON), is
        # json.loads without its checks and dispatch (docs/design.md has the measured gain).
        # Anything else (whitespace around it, a bad text) gets json.loads' own verdict.
        try:
            result, end = _scan_json(text, 0)
            if end == len(text):
                return result
        except StopIteration:
            pass
        return json.loads(text)
    except (ValueError, UnicodeError, RecursionError):
        return MISS


def _copy_response(template: Any) -> Any:
    """A new response object with the template's state and its own header list (what FastAPI and
    our headers change)."""
    copy = object.__new__(type(template))
    fields, headers = template_parts(template)
    fields["raw_headers"] = headers
    copy.__dict__.update(fields)
    return copy


def template_parts(template: Any) -> tuple[dict, list]:
    """A memoized response's attributes but its headers, and its raw header list (copied): what a
    copy of it is made of (_copy_response), and what a HitPath is armed with."""
    fields = dict(template.__dict__)
    fields.pop("_headers", None)  # a MutableHeaders view of the template's own list
    return fields, list(fields.pop("raw_headers"))


def _remember(states: dict, key: bytes, state: tuple, max_keys: int) -> None:
    """states[key] = state, forgetting the oldest key first when max_keys are held. Threads may
    race here (the GIL orders each step, not the whole): a lost race forgets another key."""
    if key not in states and len(states) >= max_keys:
        try:
            del states[next(iter(states))]
        except (RuntimeError, StopIteration, KeyError):
            pass
    states[key] = state


class ResponseMemo:
    """The response records last decoded under some keys, each reused while its key's stored bytes
    are unchanged: copying a Response is an order of magnitude cheaper than decoding a record and
    building one (docs/design.md). One per decorated function (a fixed key: one key; keys that
    vary: the last `max_keys`), and one per key HTTPCache.attach() serves."""

    __slots__ = ("states", "max_bytes", "max_keys")

    def __init__(self, max_bytes: int | None = 64 << 10, max_keys: int = 1) -> None:
        self.states: dict[bytes, tuple[bytes, Any]] = {}  # key -> (stored bytes, template); replaced whole
        self.max_bytes = max_bytes  # larger records are decoded each time; None: no limit
        self.max_keys = max_keys

    def _lookup(self, value: bytes, key: bytes) -> tuple[Any, bool]:
        # (the Response of record `value` or MISS, whether it is the memo's shared template)
        state = self.states.get(key)
        if state is not None and state[0] == value:
            return state[1], True
        result = decode_record(value)
        if (
            result is MISS
            or (self.max_bytes is not None and len(value) > self.max_bytes)
            or not hasattr(result, "__dict__")  # a response class we could not copy
        ):
            return result, False
        _remember(self.states, key, (value, result), self.max_keys)
        return result, True

    def template(self, value: bytes, key: bytes = b"") -> Any:
        """The Response of record `value`, or MISS; possibly shared with every later call on the
        same bytes: read it, never change it (the memo replaces it whole when the bytes change,
        so a reader holds one consistent version across its awaits)."""
        return self._lookup(value, key)[0]

    def decode_record(self, value: bytes, key: bytes = b"") -> Any:
        """decode_record(value): a Response of the caller's own (a copy of the template), or MISS."""
        response, shared = self._lookup(value, key)
        return _copy_response(response) if shared else response


class ValueMemo:
    """Plain JSON results last decoded under some keys, each reused while its key's stored bytes
    are unchanged and handed to every caller as an independent copy (copy_json: new dicts and
    lists, shared immutable leaves), which costs a fraction of decoding the text again
    (docs/design.md "Near tier")."""

    __slots__ = ("states", "max_keys")

    max_bytes = 64 << 10  # larger texts are decoded each time

    def __init__(self, max_keys: int) -> None:
        self.states: dict[bytes, tuple[bytes, Any]] = {}
        self.max_keys = max_keys

    def decode(self, key: bytes, value: bytes) -> Any:
        """decode_json(value), as an object of the caller's own, or MISS."""
        state = self.states.get(key)
        if state is not None and state[0] == value:
            return copy_json(state[1])
        result = decode_json(value)
        if result is MISS or len(value) > self.max_bytes:
            return result
        try:
            mine = copy_json(result)  # the memo keeps the decoded one, never handed out
        except RecursionError:  # deeper than copy_json goes (json.loads goes deeper): not kept
            return result
        _remember(self.states, key, (value, result), self.max_keys)
        return mine
