# SPDX-License-Identifier: MIT
"""The stored bytes of a plain (non-response) result, and the result a hit gives back: an equal
value of the same type.

How, chosen per decorated function at its first call (annotations may name classes defined
after the decorator ran):

- ``coder=`` given: its ``dumps(value) -> bytes`` and ``loads(bytes) -> value``, for formats of
  the application's choosing (never pickle unless the application passes it itself: unpickling
  what a cache holds runs whatever code the bytes name, Flask-Caching's CVE-2021-33026).
- a return annotation pydantic can validate (a model, a dataclass, ``tuple[int, str]``,
  ``set[str]``, ``datetime``, ``UUID``, ``Decimal``, an Enum, ``list[Model]``, ...): pydantic's
  JSON of that type (``TypeAdapter.dump_json``), validated back into it on a hit. The code names
  the type, never the stored bytes, so a forged entry can at worst fail validation (a miss).
- otherwise (no annotation, ``Any``, ``object``, or a bare JSON type such as ``dict``): the JSON
  text itself, for results that survive a JSON round trip unchanged.

A result whose stored form does not give back an equal value (a tuple under ``-> list``, a NaN,
a model that excludes fields from its JSON) is returned uncached, with one warning per function
saying what to annotate. The JSON forms are plain JSON, which C programs read as well.
"""

from __future__ import annotations

import json
import logging
import typing
from typing import Any, Callable

from ._codec import MISS, RECORD, ValueMemo, decode_json

logger = logging.getLogger("httpcache")

_PLAIN = (None, Any, object, dict, list, str, int, float, bool, type(None))


def _same(a: Any, b: Any) -> bool:
    """a == b with the same types all the way down (a str Enum equals its value, but is not it)."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(x, b[k]) for k, x in a.items())
    return a == b


def json_encode(result: Any) -> bytes:
    """The compact JSON of a result that survives a JSON round trip; ValueError/TypeError else."""
    text = json.dumps(result, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if not _same(json.loads(text), result):
        raise ValueError("the value does not survive a JSON round trip")
    return text.encode("utf-8")


def check_coder(coder: Any, what: str) -> None:
    if coder is not None and not (callable(getattr(coder, "dumps", None)) and callable(getattr(coder, "loads", None))):
        raise TypeError(f"{what}: coder must have dumps(value) -> bytes and loads(bytes) -> value, got {coder!r}")


class ResultCoder:
    """One decorated function's way of storing plain results (see the module's docstring)."""

    __slots__ = ("func", "where", "coder", "adapter", "ready", "warned", "decode", "memo")

    def __init__(self, func: Callable[..., Any], where: str, coder: Any = None) -> None:
        self.func = func
        self.memo = ValueMemo(max_keys=1)  # plain JSON results, decoded once per stored version (per key)
        self.where = where
        self.coder = coder
        self.adapter: Any = None  # pydantic's TypeAdapter of the return annotation, when used
        self.ready = coder is not None
        self.warned = False
        # decode(bytes) -> result or MISS: set once the way is known (a hit calls it directly).
        self.decode: Callable[[bytes], Any] = self._decode if self.ready else self._first_decode

    def _prepare(self) -> None:
        # Idempotent: threads racing here compute the same adapter; `ready` is set last.
        self.adapter = self._adapter()
        self.decode = decode_json if self.adapter is None else self._decode
        self.ready = True

    def _adapter(self) -> Any:
        """pydantic's TypeAdapter of the return annotation, or None: plain JSON."""
        try:
            annotation = typing.get_type_hints(self.func).get("return")
        except Exception:  # noqa: BLE001 - an unresolvable annotation: as if there were none
            return None
        if any(annotation is p for p in _PLAIN):
            return None
        try:
            from pydantic import TypeAdapter

            return TypeAdapter(annotation)
        except Exception as e:  # noqa: BLE001 - no pydantic, or a type it cannot handle
            logger.info("httpcache: results of %s are stored as plain JSON (return annotation: %s)", self.where, e)
            return None

    def encode(self, result: Any) -> bytes | None:
        """The bytes to store for `result`, or None (returned uncached, with one warning)."""
        if not self.ready:
            self._prepare()
        try:
            if self.coder is not None:
                data = self.coder.dumps(result)
                if not isinstance(data, (bytes, bytearray)) or bytes(data).startswith(RECORD):
                    raise TypeError("coder.dumps must return bytes (not starting with a response record's magic)")
                return bytes(data)
            if self.adapter is None:
                return json_encode(result)
            data = self.adapter.dump_json(result)
            if self.adapter.validate_json(data) != result:
                raise ValueError("the value does not come back equal from its JSON")
            return data
        except Exception as e:  # noqa: BLE001 - whatever the coder, pydantic or json refuse
            self._warn(result, e)
            return None

    def decode_hit(self, key: bytes, data: bytes) -> Any:
        """decode(data) for a hit of `key`: a plain JSON result is decoded once per stored version
        and each caller gets an independent copy; the other ways decode each time (a model
        validated from its JSON is the caller's own)."""
        if not self.ready:
            self._prepare()
        return self.memo.decode(key, data) if self.decode is decode_json else self.decode(data)

    def _first_decode(self, data: bytes) -> Any:
        self._prepare()
        return self.decode(data)

    def _decode(self, data: bytes) -> Any:
        """A stored result back, or MISS when the bytes do not decode (or validate) as its type."""
        try:
            return self.coder.loads(data) if self.coder is not None else self.adapter.validate_json(data)
        except Exception:  # noqa: BLE001 - a foreign or outdated entry: recomputed
            return MISS

    def _warn(self, result: Any, e: Exception) -> None:
        if self.warned:
            return
        self.warned = True
        if self.coder is not None or self.adapter is not None:
            logger.warning("httpcache: result of %s is not cached (%s: %s)", self.where, type(result).__name__, e)
            return
        logger.warning(
            "httpcache: result of %s is not JSON (%s: %s); returned uncached. Annotate the function's return "
            "type (e.g. -> MyModel, -> tuple[int, str]) to cache it", self.where, type(result).__name__, e,
        )
