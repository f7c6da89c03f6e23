# SPDX-License-Identifier: MIT
"""Keys of decorated functions: the templates checked at decoration, filled per call, and the
claims that keep two decorators of one namespace from sharing a key.

A template is filled by the core (``httpcache_key_format``), so Python and C programs build the
same key for the same template and values; the backend key is then ``namespace:key``.
"""

from __future__ import annotations

import gc
import inspect
import json
import logging
import threading
import weakref
from typing import Any, Callable

from . import _httpcache
from ._fields import Argument, Unkeyable, key_bytes, lookup, named_template
from ._routes import default_key, route_of

logger = logging.getLogger("httpcache")


class KeyBuilder:
    """Builds the keys of one decorated function from a call's arguments, in the one way its
    decorator chose:

    - a fixed key (no field): checked once, at decoration;
    - the seed's ``obj``/``obj_attr``: each ``{}`` filled with the attribute (or, for a mapping,
      the key) ``obj_attr`` of the argument named ``obj``, given by keyword, position or default;
    - named fields (``item.{item_id}``, ``user.{user.id}``): see ``_fields``;
    - ``key_builder(*args, **kwargs)``: its string, as the value of the function's own template
      ``<module>.<qualname>[{}]`` (so it can reach no other decorator's key);
    - no key at all: a route request's default key (``_routes.default_key``); a direct call's
      is ``<module>.<qualname>({})`` filled with its arguments' JSON.

    A value that cannot fill a key (missing, None, empty, or not identifying anything) makes
    ``build`` return None and the call run uncached, logged once per reason: a per-request key
    must never collapse into one shared by every caller. The core percent-encodes every value
    (outside ``[A-Za-z0-9_-]``), so no value can reach another template's key.

    ``claims``: the templates the decorator claims in its namespace; those of key_builder and
    default keys are the function's own (``own``: no other @cache may share them).
    """

    def __init__(
        self, func: Callable[..., Any], templates: list[Any], obj: Any, obj_attr: Any, what: str, *,
        key_builder: Callable[..., Any] | None = None, private: bool | None = None,
        request_param: str | None = None, added: tuple[str, ...] = (),
    ) -> None:
        self._check(templates, obj, obj_attr, what, key_builder, private)
        self.func = func
        self.what = what
        self.obj_attr = obj_attr
        self.key_builder = key_builder
        self.request_param = request_param
        self.added = added  # parameters the wrapper added (not the function's own)
        self.endpoint: Any = None  # the decorated wrapper: a route's default key is for its handler only
        self.warned: set[str] = set()
        self.on_template: Callable[[bytes], None] | None = None  # claims a route default key's template
        self.claimed: set[bytes] = set()
        self.fixed: list[bytes] | None = None
        self.obj: Argument | None = None if obj is None else Argument(func, obj, what)
        self.source: str | None = obj_attr  # what fills the fields, for the claims
        self.templates: list[bytes] = []
        self.fields: list[list[tuple[Argument, tuple[str, ...]]]] = []  # per template: named fields
        for t in templates:
            self._add_template(t, obj is not None)
        if templates and obj is None and not any(self.fields):
            self.fixed = [_httpcache.key_format(tb, []) for tb in self.templates]
        elif any(self.fields):
            self.source = "|".join(".".join((a.name, *p)) for fs in self.fields for a, p in fs)
        # Private by default when a key reads into an argument (a Depends user, a JWT's claims):
        # such a value tells callers apart; path and query parameters are plain values.
        dotted = any(path for fs in self.fields for _, path in fs)
        self.private = (obj is not None or dotted) if private is None else private
        name = f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}".replace("{", "{{").replace("}", "}}")
        self.own = (name + ("[{}]" if key_builder is not None else "({})")).encode("utf-8")
        self.claims = self.templates if templates else [self.own]

    @staticmethod
    def _check(templates: list[Any], obj: Any, obj_attr: Any, what: str, key_builder: Any, private: Any) -> None:
        if obj is not None and (not isinstance(obj, str) or not obj):
            raise ValueError(f"{what}: obj={obj!r} must be the name of a parameter")
        if obj is not None and (not isinstance(obj_attr, str) or not obj_attr):
            raise ValueError(f"{what}: obj={obj!r} needs obj_attr, the attribute to read (got {obj_attr!r})")
        if obj is None and obj_attr is not None:
            raise ValueError(f"{what}: obj_attr={obj_attr!r} needs obj, the parameter to read it from")
        if key_builder is not None and (templates or obj is not None or not callable(key_builder)):
            raise ValueError(f"{what}: key_builder must be a callable given instead of key, obj and obj_attr")
        if private is not None and not isinstance(private, bool):
            raise TypeError(f"{what}: private must be a bool, got {private!r}")
        if private and not templates and key_builder is None:
            raise ValueError(f"{what}: private=True needs a key naming the user (e.g. key='me.{{user.id}}'): "
                             "a default key is the same for every user")

    def _add_template(self, t: Any, with_obj: bool) -> None:
        what = self.what
        if not isinstance(t, str) or not t:
            raise ValueError(f"{what}: invalid key {t!r}: must be a non-empty str")
        try:
            named = named_template(t)
        except ValueError as e:
            raise ValueError(f"{what}: invalid key template {t!r}: {e}") from None
        if named is not None and with_obj:
            raise ValueError(f"{what}: key template {t!r} has named fields: they cannot be filled from obj/obj_attr")
        core, paths = named if named is not None else (t, [])
        tb = core.encode("utf-8")
        try:
            _httpcache.key_format(tb, [b"x"] * len(paths) if paths else ([b"x"] if with_obj else []))
        except ValueError as e:
            hint = " (a {} field needs obj and obj_attr, or name a parameter: {item_id})" if not with_obj else ""
            raise ValueError(f"{what}: invalid key template {t!r}: {e}{hint}") from None
        self.templates.append(tb)
        self.fields.append([(Argument(self.func, p[0], what), p[1:]) for p in paths])

    def build(self, args: tuple, kwargs: dict) -> list[bytes] | None:
        """The keys of this call, or None: it runs uncached."""
        if self.fixed is not None:
            return self.fixed
        try:
            if self.obj is not None:
                o = self.obj.of(args, kwargs)
                arg = None if o is None else key_bytes(lookup(o, (self.obj_attr,)))
                if arg is None:
                    return self._missing(f"{self.obj.name}.{self.obj_attr}")
                return self._fill([(tb, [arg]) for tb in self.templates])
            if self.templates:
                return self._named(args, kwargs)
            if self.key_builder is not None:
                return self._built(args, kwargs)
            return self._default(args, kwargs)
        except Unkeyable as e:
            self._warn_once(e.reason, f"{self._source_text()}: {e}; running uncached")
            return None

    def _named(self, args: tuple, kwargs: dict) -> list[bytes] | None:
        filled = []
        for tb, fields in zip(self.templates, self.fields):
            values = []
            for arg, path in fields:
                v = key_bytes(lookup(arg.of(args, kwargs), path))
                if v is None:
                    return self._missing(".".join((arg.name, *path)))
                values.append(v)
            filled.append((tb, values))
        return self._fill(filled)

    def _missing(self, field: str) -> None:
        """A call whose field is missing, None or empty: uncached (said once, at INFO: an
        anonymous caller is normal, a field that is never there is a mistake to see)."""
        if "missing" not in self.warned:
            self.warned.add("missing")
            logger.info("httpcache: %s: %s is missing, None or empty; such calls run uncached", self.what, field)
        return None

    def _built(self, args: tuple, kwargs: dict) -> list[bytes] | None:
        own = {k: v for k, v in kwargs.items() if k not in self.added}
        try:
            key = self.key_builder(*args, **own)
        except Exception as e:  # noqa: BLE001 - the application's own code
            raise Unkeyable("builder", f"key_builder raised {type(e).__name__}: {e}") from None
        if key is None:
            return None
        if not isinstance(key, str) or not key:
            raise Unkeyable("builder", f"key_builder returned {key!r}, not a non-empty str or None")
        return self._fill([(self.own, [key.encode("utf-8", "surrogatepass")])])

    def _default(self, args: tuple, kwargs: dict) -> list[bytes] | None:
        request = kwargs.get(self.request_param) if self.request_param else None
        route = route_of(request, self.endpoint) if request is not None else None
        if route is None:
            return self._fill([(self.own, [_call_arguments(self.func, args, kwargs, self.added)])])
        made = default_key(request, route)
        if isinstance(made, str):
            self._warn_once("default:" + made, f"no default key: {made}; give key= naming what keys the response; running uncached")
            return None
        tb, values = made
        if tb not in self.claimed and self.on_template is not None:
            try:
                self.on_template(tb)
            except ValueError as e:
                self._warn_once("claim", f"{e}; running uncached")
                return None
            self.claimed.add(tb)
        return self._fill([(tb, values)])

    def _fill(self, filled: list[tuple[bytes, list[bytes]]]) -> list[bytes] | None:
        try:
            return [_httpcache.key_format(tb, values) for tb, values in filled]
        except ValueError as e:  # e.g. over HTTPCACHE_MAX_KEY_BYTES: run uncached, never fail the call
            self._warn_once("key", f"cannot build a key from {self._source_text()}: {e}; running uncached")
            return None

    def _source_text(self) -> str:
        if self.obj is not None:
            return f"{self.obj.name}.{self.obj_attr}"
        if self.key_builder is not None:
            return "key_builder"
        return self.source or "the call"

    def _warn_once(self, reason: str, message: str) -> None:
        if reason not in self.warned:
            self.warned.add(reason)
            logger.warning("httpcache: %s: %s", self.what, message)

    @property
    def per_user(self) -> bool:
        """Whether responses under these keys are one user's (Cache-Control: private)."""
        return self.private


MAX_TAGS = 32
MAX_TAG_BYTES = 1024


class TagBuilder:
    """The tags of one decorated function's entries (``tags=["catalog", "user:{user.id}"]``):
    templates like keys', with the same named fields, filled the same way by the core (so no
    value can reach another tag). A call whose tag cannot be filled, or comes out over 1024
    bytes, runs uncached (an entry without one of its tags would outlive that tag's
    invalidation) or, for an invalidation, invalidates nothing, said once."""

    __slots__ = ("keys", "what")

    def __init__(self, func: Callable[..., Any], tags: list[str], what: str) -> None:
        self.what = f"{what} tags"
        self.keys = KeyBuilder(func, tags, None, None, self.what)

    @staticmethod
    def check(tags: Any, what: str) -> list[str] | None:
        """The decorator's ``tags`` as a list (None stays None), checked before decorating."""
        if tags is None:
            return None
        if isinstance(tags, (str, bytes)) or not hasattr(tags, "__iter__"):
            raise TypeError(f"{what}: tags must be a list of str, got {tags!r}")
        tags = list(tags)
        if not 1 <= len(tags) <= MAX_TAGS:
            raise ValueError(f"{what}: give 1..{MAX_TAGS} tags, got {len(tags)}")
        return tags

    @property
    def templates(self) -> list[bytes]:
        return self.keys.templates

    def build(self, args: tuple, kwargs: dict) -> list[bytes] | None:
        built = self.keys.build(args, kwargs)
        if built is not None and any(len(t) > MAX_TAG_BYTES for t in built):
            self.keys._warn_once("long", f"a tag is over {MAX_TAG_BYTES} bytes; running uncached")
            return None
        return built


_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_exact(v: Any) -> bool:
    """Whether v's JSON gives it back with its types: no tuple (a list), no non-str dict key."""
    if type(v) in _JSON_SCALARS:
        return True
    if type(v) is list:
        return all(_json_exact(x) for x in v)
    if type(v) is dict:
        return all(type(k) is str and _json_exact(x) for k, x in v.items())
    return False


def _call_arguments(func: Callable[..., Any], args: tuple, kwargs: dict, added: tuple[str, ...]) -> bytes:
    """A direct call's arguments as the value of its default key: the JSON of its bound
    arguments, defaults applied; Unkeyable unless each is a JSON value of exact type."""
    own = {k: v for k, v in kwargs.items() if k not in added}
    try:
        bound = inspect.signature(func).bind(*args, **own)
        bound.apply_defaults()
    except (TypeError, ValueError) as e:
        raise Unkeyable("arguments", f"its arguments do not bind ({e})") from None
    items = list(bound.arguments.items())
    if not _json_exact(dict(items)):
        raise Unkeyable("arguments", "its arguments are not all JSON values (str, int, float, bool, None, list, "
                                     "dict with str keys); give key=")
    try:
        return json.dumps(items, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except ValueError as e:
        raise Unkeyable("arguments", f"its arguments are not JSON values ({e}); give key=") from None


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


def claimed_in(namespace: str, template: bytes) -> list[str] | None:
    """None when a live @cache of `namespace` uses `template`; else the namespaces whose live
    @cache do (possibly none)."""
    pat = _pattern(template)
    with _claim_lock:
        c = _claimed.get(namespace, {}).get(pat)
        if c is not None and c.owners:
            return None
        return sorted(ns for ns, table in _claimed.items() if (o := table.get(pat)) is not None and o.owners)
