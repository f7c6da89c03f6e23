# SPDX-License-Identifier: MIT
"""Keys of decorated functions: the templates checked at decoration, filled per call.

A template is filled by the core (``httpcache_key_format``), so Python and C programs build the
same key for the same template and values; the backend key is then ``namespace:key``.
"""

from __future__ import annotations

import gc
import inspect
import logging
import re
import threading
import weakref
from typing import Any, Callable

from . import _httpcache

logger = logging.getLogger("httpcache")

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")
_EMPTY = inspect.Parameter.empty
_UNSET: Any = object()


class KeyBuilder:
    """Builds the keys of one decorated function from its call arguments.

    Without ``obj`` the key is fixed (checked once, at decoration). With ``obj`` each ``{}`` is
    filled with ``getattr(<the argument named obj>, obj_attr)``, whether the argument came by
    keyword, by position or from its default. When the object or the attribute is missing,
    None or empty, ``build`` returns None and the call runs uncached: a per-user key must never
    collapse into a key shared by every user. The core percent-encodes the value (outside
    ``[A-Za-z0-9_-]``), so no value can reach another template's key.
    """

    def __init__(self, func: Callable[..., Any], templates: list[Any], obj: Any, obj_attr: Any, what: str) -> None:
        if obj is not None and (not isinstance(obj, str) or not obj):
            raise ValueError(f"{what}: obj={obj!r} must be the name of a parameter")
        if obj is not None and (not isinstance(obj_attr, str) or not obj_attr):
            raise ValueError(f"{what}: obj={obj!r} needs obj_attr, the attribute to read (got {obj_attr!r})")
        if obj is None and obj_attr is not None:
            raise ValueError(f"{what}: obj_attr={obj_attr!r} needs obj, the parameter to read it from")
        self.obj = obj
        self.obj_attr = obj_attr
        self.warned: set[str] = set()
        self.templates: list[bytes] = []
        for t in templates:
            if not isinstance(t, str) or not t:
                raise ValueError(f"{what}: invalid key {t!r}: must be a non-empty str")
            tb = t.encode("utf-8")
            try:
                _httpcache.key_format(tb, [b"x"] if obj is not None else [])
            except ValueError as e:
                hint = " (a {} field needs obj and obj_attr)" if obj is None else ""
                raise ValueError(f"{what}: invalid key template {t!r}: {e}{hint}") from None
            self.templates.append(tb)
        self.fixed: list[bytes] | None = None
        if obj is None:
            self.fixed = [_httpcache.key_format(tb, []) for tb in self.templates]
            return
        # Where the object comes from: its position, keyword, or default.
        self.index: int | None = None
        self.default: Any = _EMPTY
        try:
            params = inspect.signature(func).parameters
        except (TypeError, ValueError):
            params = None
        if params is not None:
            p = params.get(obj)
            if p is not None and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                self.index = list(params).index(obj)
                self.default = p.default
            elif p is not None and p.kind == p.KEYWORD_ONLY:
                self.default = p.default
            elif p is None and not any(q.kind == q.VAR_KEYWORD for q in params.values()):
                raise ValueError(f"{what}: obj={obj!r} is not a parameter of {getattr(func, '__qualname__', func)!r}")
            elif p is not None:
                raise ValueError(f"{what}: obj={obj!r} must be a named parameter, not *args or **kwargs")

    def build(self, args: tuple, kwargs: dict) -> list[bytes] | None:
        if self.fixed is not None:
            return self.fixed
        o = kwargs.get(self.obj, _UNSET)
        if o is _UNSET:
            if self.index is not None and self.index < len(args):
                o = args[self.index]
            elif self.default is not _EMPTY:
                o = self.default
            else:
                return None
        if o is None:
            return None
        arg = self._value(o)
        if arg is None:
            return None
        try:
            return [_httpcache.key_format(t, [arg]) for t in self.templates]
        except ValueError as e:  # e.g. over HTTPCACHE_MAX_KEY_BYTES: run uncached, never fail the call
            self._warn_once("key", "cannot build a key from %s.%s: %s; running uncached", e)
            return None

    def _value(self, o: Any) -> bytes | None:
        """The bytes of ``o.<obj_attr>`` for the key, or None (the call runs uncached): missing,
        None or empty; or, with one warning per decorated function, a value that does not tell
        one user from another (a method, or an object whose text is the default repr with its
        address, which is reused once the object is freed) or whose text cannot be had."""
        try:
            v = getattr(o, self.obj_attr, None)
            if v is None:
                return None
            if isinstance(v, (bytes, bytearray)):
                return bytes(v) or None
            if callable(v):
                self._warn_once("identity", "%s.%s is %s, which does not identify a user; running uncached", "callable")
                return None
            text = str(v)
            if type(v) not in (str, int) and _ADDRESS.search(text):
                # A default repr (or one like it) names a memory address, reused once freed.
                self._warn_once(
                    "identity", "%s.%s is %s, which does not identify a user; running uncached", type(v).__name__
                )
                return None
        except Exception as e:  # noqa: BLE001 - a property or __str__ of the app's that raises
            self._warn_once("error", "cannot read %s.%s for the key (%s); running uncached", f"{type(e).__name__}: {e}")
            return None
        try:
            return text.encode("utf-8") or None
        except UnicodeError as e:  # a lone surrogate: no UTF-8 text, so no key
            self._warn_once("encode", "%s.%s is not valid text for a key (%s); running uncached", e.reason)
            return None

    def _warn_once(self, reason: str, message: str, detail: Any) -> None:
        if reason not in self.warned:
            self.warned.add(reason)
            logger.warning("httpcache: " + message, self.obj, self.obj_attr, detail)

    @property
    def per_user(self) -> bool:
        """Whether each call's key comes from its arguments (an ``obj``), not fixed."""
        return self.fixed is None


# -- Templates that could give one key two meanings.
#
# The core's encoding keeps a value from containing a template's separators, but two templates
# of one namespace can still match one key: a fixed "a.b" and a per-user "a.{}" with the id "b",
# or "{}" and anything. @cache refuses such a pair at decoration: a template is a sequence of
# literal bytes and fields, a field matches one or more bytes the encoding can produce, and two
# templates collide when some key matches both (an intersection of two small automata).

_FIELD = -1
_FIELD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-%")


def _pattern(template: bytes) -> tuple[int, ...]:
    """The template (already checked by the core) as literal bytes and _FIELD markers."""
    tokens: list[int] = []
    i = 0
    while i < len(template):
        c = template[i]
        if c == 0x7B and template[i + 1 : i + 2] != b"{":  # a field
            i = template.index(b"}", i) + 1
            tokens.append(_FIELD)
            continue
        tokens.append(c)
        i += 2 if c in (0x7B, 0x7D) else 1  # {{ and }} stand for one brace
    return tuple(tokens)


def _steps(p: tuple[int, ...], i: int, in_field: bool) -> list[tuple[int, tuple[int, bool]]]:
    # The bytes (a literal, or _FIELD for the field class) p can consume next, and where it goes.
    if in_field or (i < len(p) and p[i] == _FIELD):
        return [(_FIELD, (i, True))]
    return [(p[i], (i + 1, False))] if i < len(p) else []


def _meet(a: int, b: int) -> bool:
    if a == _FIELD:
        return b == _FIELD or b in _FIELD_BYTES
    return a == b if b != _FIELD else a in _FIELD_BYTES


def patterns_overlap(p: tuple[int, ...], q: tuple[int, ...]) -> bool:
    """Whether some key matches both patterns."""
    start = (0, False, 0, False)
    seen, todo = {start}, [start]
    while todo:
        i, fi, j, fj = todo.pop()
        if i == len(p) and j == len(q) and not fi and not fj:
            return True
        moves = []
        if fi:  # a field has consumed at least one byte: it may end here
            moves.append((i + 1, False, j, fj))
        if fj:
            moves.append((i, fi, j + 1, False))
        for a, (ni, nfi) in _steps(p, i, fi):
            for b, (nj, nfj) in _steps(q, j, fj):
                if _meet(a, b):
                    moves.append((ni, nfi, nj, nfj))
        for m in moves:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return False


class _Claim:
    """A template claimed in a namespace: its text, the attribute filling it (None when fixed),
    and the live decorated functions using it (weak: a function that is gone claims nothing)."""

    __slots__ = ("text", "source", "owners")

    def __init__(self, text: str, source: str | None) -> None:
        self.text = text
        self.source = source
        self.owners: weakref.WeakSet = weakref.WeakSet()


_claimed: dict[str, dict[tuple[int, ...], _Claim]] = {}
_floating: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # owner -> (templates, obj_attr)
_claim_lock = threading.RLock()


def _conflict(pat: tuple[int, ...], source: str | None, table: dict) -> str | None:
    """The live claim of `table` that `pat` (filled from `source`) could share a key with."""
    for other, c in table.items():
        if not c.owners or (other == pat and c.source == source):
            continue  # gone, or the same template filled the same way: one entry shared on purpose
        if other == pat:
            return f"{c.text!r} filled from obj_attr={c.source!r}"
        if patterns_overlap(pat, other):
            return repr(c.text)
    return None


def _check(namespace: str, templates: list[bytes], obj_attr: str | None, what: str) -> None:
    table = _claimed.get(namespace, {})
    for attempt in (1, 2):
        for tb in templates:
            pat = _pattern(tb)
            other = _conflict(pat, obj_attr if _FIELD in pat else None, table)
            if other is None:
                continue
            if attempt == 1:
                gc.collect()  # decorated functions that are gone but not yet collected claim nothing
                break
            raise ValueError(
                f"{what}: key template {tb.decode('utf-8', 'replace')!r} can give the same key as {other} of "
                f"another @cache in namespace {namespace!r}: one entry would serve both. Give them literal "
                "parts that differ, e.g. another prefix (values may contain letters, digits, '_' and '-', "
                "so those do not separate a field from the text around it)"
            )
        else:
            return


def _record(namespace: str, templates: list[bytes], obj_attr: str | None, owner: Any) -> None:
    table = _claimed.setdefault(namespace, {})
    for tb in templates:
        pat = _pattern(tb)
        c = table.get(pat)
        if c is None or not c.owners:
            c = table[pat] = _Claim(tb.decode("utf-8", "replace"), obj_attr if _FIELD in pat else None)
        c.owners.add(owner)


def claim(
    namespace: str | None, templates: list[bytes], obj_attr: str | None, what: str, default_ns: str, owner: Any
) -> None:
    """Records the templates of the @cache `owner` in `namespace`, refusing one that can give the
    same key as a different template of a live @cache there, or the same per-user template
    filled from a different attribute (`u.{}` from `.id` beside `u.{}` from `.name`: the user
    named "42" would read user 42's entry). The same template filled the same way is one entry
    shared on purpose. None is init()'s namespace, `default_ns` now: recheck_default() moves
    such claims when init() names another."""
    with _claim_lock:
        effective = default_ns if namespace is None else namespace
        _check(effective, templates, obj_attr, what)
        _record(effective, templates, obj_attr, owner)
        if namespace is None:
            _floating[owner] = (templates, obj_attr)


def recheck_default(namespace: str) -> None:
    """Before init() makes `namespace` the one of decorators without their own: ValueError when
    their templates can meet the live claims there; else they are recorded there too."""
    with _claim_lock:
        floating = list(_floating.items())
        for owner, (templates, obj_attr) in floating:
            table = _claimed.get(namespace, {})
            if any(owner in c.owners for c in table.values()):
                continue  # already recorded there
            _check(namespace, templates, obj_attr, f"HTTPCache.init(namespace={namespace!r})")
        for owner, (templates, obj_attr) in floating:
            _record(namespace, templates, obj_attr, owner)
