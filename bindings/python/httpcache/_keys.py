# SPDX-License-Identifier: MIT
"""Keys of decorated functions: the templates checked at decoration, filled per call.

A template is filled by the core (``httpcache_key_format``), so Python and C programs build the
same key for the same template and values; the backend key is then ``namespace:key``.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

from . import _httpcache

logger = logging.getLogger("httpcache")

_EMPTY = inspect.Parameter.empty
_UNSET: Any = object()


class KeyBuilder:
    """Builds the keys of one decorated function from its call arguments.

    Without ``obj`` the key is fixed (checked once, at decoration). With ``obj`` each ``{}`` is
    filled with ``getattr(<the argument named obj>, obj_attr)``, whether the argument came by
    keyword, by position or from its default. When the object or the attribute is missing,
    None or empty, ``build`` returns None and the call runs uncached: a per-user key must never
    collapse into a key shared by every user.
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
        v = getattr(o, self.obj_attr, None)
        if v is None:
            return None
        arg = bytes(v) if isinstance(v, (bytes, bytearray)) else str(v).encode("utf-8")
        if not arg:
            return None
        try:
            return [_httpcache.key_format(t, [arg]) for t in self.templates]
        except ValueError as e:  # e.g. over HTTPCACHE_MAX_KEY_BYTES: run uncached, never fail the call
            logger.warning("httpcache: cannot build a key from %s.%s: %s; running uncached", self.obj, self.obj_attr, e)
            return None

    @property
    def per_user(self) -> bool:
        """Whether each call's key comes from its arguments (an ``obj``), not fixed."""
        return self.fixed is None
