# SPDX-License-Identifier: MIT
"""The per-call parts of keys: named fields bound to a function's parameters, and the text a
value gives a key.

A named field names a parameter, then optionally attributes or mapping keys after dots:
``item.{item_id}``, ``user.{user.id}``, ``t.{claims.sub}`` (``claims`` a dict: a mapping is read
by key, anything else by attribute). The core's templates only know positional ``{}`` fields, so
a named template is handed to it with each field as ``{}`` and the values in order; the core
then percent-encodes each value (``httpcache_key_format``), which keeps the key injective.

Which values may fill a key is decided once here, for every kind of field: a missing, None or
empty value gives no key (the call runs uncached: a per-request key must never collapse into
one shared by every caller), and so does a value whose text does not identify anything (a
method, or a default repr with a memory address, which is reused once the object is freed).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any, Callable

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\Z")
_EMPTY = inspect.Parameter.empty
_UNSET: Any = object()


class Unkeyable(Exception):
    """A value that cannot fill a key; its message says why (logged once per function)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def named_template(template: str) -> tuple[str, list[tuple[str, ...]]] | None:
    """(the template as the core takes it, each named field as ``{}``; the fields' dotted paths
    in order), or None when it has no named field (a fixed key, or the seed's ``{}`` form).
    ValueError for a template that mixes named and positional fields."""
    paths: list[tuple[str, ...]] = []
    positional = False
    out: list[str] = []
    last = 0
    for m in _TOKEN.finditer(template):
        name = m.group(1)
        if name is None or not _NAME.match(name):
            positional = positional or (name is not None)
            continue  # {{, }}, {} and {N} are the core's to check
        out.append(template[last : m.start()])
        out.append("{}")
        last = m.end()
        paths.append(tuple(name.split(".")))
    if not paths:
        return None
    if positional:
        raise ValueError("named fields ({item_id}) and positional ones ({}) cannot mix")
    out.append(template[last:])
    return "".join(out), paths


class Argument:
    """Where one named parameter's value comes from in a call: its position, keyword or default."""

    __slots__ = ("name", "index", "default")

    def __init__(self, func: Callable[..., Any], name: str, what: str) -> None:
        self.name = name
        self.index: int | None = None
        self.default: Any = _EMPTY
        try:
            params = inspect.signature(func).parameters
        except (TypeError, ValueError):
            return  # read from kwargs only
        p = params.get(name)
        if p is None:
            if not any(q.kind == q.VAR_KEYWORD for q in params.values()):
                raise ValueError(f"{what}: {name!r} is not a parameter of {getattr(func, '__qualname__', func)!r}")
            return
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValueError(f"{what}: {name!r} must be a named parameter, not *args or **kwargs")
        if p.kind != p.KEYWORD_ONLY:
            self.index = list(params).index(name)
        self.default = p.default

    def of(self, args: tuple, kwargs: dict) -> Any:
        """The argument's value in this call, or None when it was not given and has no default."""
        v = kwargs.get(self.name, _UNSET)
        if v is not _UNSET:
            return v
        if self.index is not None and self.index < len(args):
            return args[self.index]
        return None if self.default is _EMPTY else self.default


_MAPPING_TYPES: dict[type, bool] = {dict: True}


def _is_mapping(t: type) -> bool:
    """issubclass(t, Mapping), remembered per type (an ABC check costs more than the lookup; a
    type registered with Mapping after its first use here is not seen as one)."""
    known = _MAPPING_TYPES.get(t)
    if known is None:
        known = issubclass(t, Mapping)
        if len(_MAPPING_TYPES) < 1024:  # bounded: types made at run time are not all kept
            _MAPPING_TYPES[t] = known
    return known


def lookup(value: Any, path: tuple[str, ...]) -> Any:
    """value.a.b for the path (a, b): a mapping by key, anything else by attribute; None when a
    step is missing. An exception of the application's (a property that raises) is Unkeyable."""
    try:
        for step in path:
            if value is None:
                return None
            cls = type(value)
            mapping = _is_mapping(cls) if value.__class__ is cls else isinstance(value, Mapping)  # a proxy: asked
            value = value.get(step) if mapping else getattr(value, step, None)
    except Exception as e:  # noqa: BLE001 - the application's own code
        raise Unkeyable("error", f"cannot read it ({type(e).__name__}: {e})") from None
    return value


def key_bytes(v: Any) -> bytes | None:
    """The bytes a value gives a key; None for a missing, None or empty value (no key); Unkeyable
    for a value whose text does not identify anything or cannot be had."""
    if type(v) is str:  # the common case first: an id, a name
        try:
            return v.encode("utf-8") or None
        except UnicodeError as e:
            raise Unkeyable("encode", f"it is not valid text ({e.reason})") from None
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray)):
        return bytes(v) or None
    if callable(v):
        raise Unkeyable("identity", "it is callable, which does not identify anything")
    try:
        text = str(v)
    except Exception as e:  # noqa: BLE001 - a __str__ of the application's that raises
        raise Unkeyable("error", f"cannot read it ({type(e).__name__}: {e})") from None
    if type(v) not in (str, int) and _ADDRESS.search(text):
        # A default repr (or one like it) names a memory address, reused once freed.
        raise Unkeyable("identity", f"it is a {type(v).__name__} whose text names a memory address, which does not identify anything")
    try:
        return text.encode("utf-8") or None
    except UnicodeError as e:  # a lone surrogate: no UTF-8 text, so no key
        raise Unkeyable("encode", f"it is not valid text ({e.reason})") from None
