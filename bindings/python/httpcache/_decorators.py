# SPDX-License-Identifier: MIT
"""The ``cache`` and ``invalidate_cache`` decorators (drop-ins for ``authx_extra.cache``).

Each decorator checks its arguments once, builds one small object that does the work of a call
(``CachedCall``; ``Invalidation`` below) and returns a thin wrapper around it: ``async def``
functions get an ``async def`` wrapper (the non-blocking path, see ``_asyncio``), plain
functions a plain one (the blocking path, the GIL released while it waits).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import Any, Callable, Iterable, TypeVar

from . import _httpcache
from ._cached_call import CachedCall
from ._codec import MISS
from ._config import HTTPCache, check_namespace, check_request_no_cache
from ._injected import add_params, injected_params
from ._invalidation import invalidate_async, invalidate_sync
from ._keys import KeyBuilder, TagBuilder, claim, claimed_in
from ._ttl import TtlChoice
from ._typed import ResultCoder, check_coder

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("httpcache")



def cache(
    key: str | None = None,
    obj: str | None = None,
    obj_attr: str | None = None,
    ttl_in_seconds: int | None = None,
    expire_end_of_day: bool = True,
    expire_end_of_week: bool = False,
    ttl_func: Callable[[], Any] | None = None,
    namespace: str | None = None,
    *,
    end_of_day: bool | None = None,
    end_of_week: bool | None = None,
    condition: Callable[[Any], Any] | None = None,
    key_builder: Callable[..., str | None] | None = None,
    private: bool | None = None,
    coder: Any = None,
    request_no_cache: str | None = None,
    revalidate: bool = False,
    tags: Iterable[str] | None = None,
    stale_while_revalidate: int | None = None,
    stale_if_error: int | None = None,
    vary: Iterable[str] | None = None,
) -> Callable[[F], F]:
    """Caches the result of an ``async def`` or ``def`` function (or FastAPI handler).

    Keys: ``key`` is fixed (``"home"``), or has fields: named ones read the function's
    parameters, with dots into attributes or mapping keys (``"item.{item_id}"``,
    ``"user.{user.id}"``, ``"t.{claims.sub}"``); the seed's ``{}`` is filled from
    ``<argument named obj>.<obj_attr>`` (an attribute, or a key of a mapping). Without ``key``,
    a route request is keyed by its method, route path, path and sorted query parameters (not
    its headers, cookies or body: name the user in ``key`` when the response depends on who
    asks), and a direct call by the function's name and JSON arguments. ``key_builder(*args,
    **kwargs)`` returns the key itself (None: uncached). A value that cannot fill a key runs the
    call uncached, never under a key shared by other callers.

    ``private``: responses are one user's (``Cache-Control: private``, and the storage rules of
    per-user keys); default True with ``obj``, else False.

    Results: a FastAPI route's result is stored as the response FastAPI sends for it
    (response_model, status_code, response_class); a plain function's as JSON, typed by its
    return annotation (a model, dataclass, tuple, set, datetime...: see ``_typed``), or by
    ``coder`` (an object with ``dumps``/``loads``). Never pickled unless ``coder`` says so.
    ``condition(result)``: a false answer returns that result uncached (not stored; no warning).

    A request's own ``Cache-Control: no-store`` keeps its response out of the cache (an entry
    may still answer it); ``no-cache`` / ``max-age=0`` is ignored unless ``request_no_cache``
    (or init()'s) is "honor": the entry is then invalidated and recomputed.

    ``revalidate=True``: responses tell clients ``Cache-Control: no-cache`` with their strong
    ETag, so a browser asks every time and gets a bodiless 304 from the cache until an
    invalidation; the first load after one shows the new data (with max-age, a browser keeps
    its copy for up to max-age after @invalidate_cache).

    ``tags``: templates like ``key``'s (``["catalog", "user:{user.id}"]``); an entry is stored
    under the call's tags, and ``HTTPCache.invalidate_tags(...)`` or
    ``@invalidate_cache(tags=...)`` of any of them makes it miss, in O(1) per tag, with no
    extra round trip on a Redis hit (see the C header's "Tags").

    ``stale_while_revalidate`` / ``stale_if_error`` (seconds, RFC 5861; a response's own
    Cache-Control directives of those names win for its entry): past its TTL, an entry is
    served as it is for that long while exactly one caller, in any process, recomputes it; a
    computation that raises is answered with it within stale-if-error. An invalidated entry is
    never served stale. Stale answers say ``Age`` > ``max-age``, with no Warning header.

    ``vary``: request header names (``["Accept-Language"]``) whose values tell a response's
    variants apart (RFC 9111 section 4.1): each variant gets its own entry (the key gets the
    request's values, encoded by the core: ``httpcache_http_variant``), and a response whose
    ``Vary`` names only these may be stored; any other ``Vary`` is not stored.

    TTL precedence: ``ttl_func`` (sync or async, no arguments, returns seconds) >
    ``ttl_in_seconds`` > end of week (``expire_end_of_week``/``end_of_week``) > end of day (the
    default, ``expire_end_of_day``/``end_of_day``; also the fallback when every option is off).
    ``{}`` in ``key`` is filled from ``getattr(<argument named obj>, obj_attr)``; the key is then
    per-user, and cached responses say ``Cache-Control: private``.

    An ``async def`` function never blocks its event loop on the backend; a ``def`` function
    waits for it on the calling thread with the GIL released (FastAPI runs ``def`` handlers in
    its thread pool). Concurrent misses of one key share one computation (single-flight): in
    the core for ``def`` functions, per event loop for ``async def`` ones.
    """
    what = f"cache(key={key!r})"
    # End of day is both the default and the fallback, so expire_end_of_day changes nothing.
    ttl = TtlChoice(what, ttl_in_seconds, expire_end_of_week if end_of_week is None else end_of_week, ttl_func)
    if namespace is not None:
        check_namespace(namespace)
    if condition is not None and not callable(condition):
        raise TypeError(f"{what}: condition must be callable, got {condition!r}")
    check_coder(coder, what)
    tags = TagBuilder.check(tags, what)
    windows = (_window(stale_while_revalidate, "stale_while_revalidate", what),
               _window(stale_if_error, "stale_if_error", what))
    varied = _varied(vary, what)
    if request_no_cache is not None:
        check_request_no_cache(request_no_cache, what)

    def decorate(func: F) -> F:
        _check_callable(what, func)
        injected = injected_params(func)
        keys = KeyBuilder(
            func, [] if key is None else [key], obj, obj_attr, what, key_builder=key_builder, private=private,
            request_param=injected.request, added=injected.added,
        )
        values = ResultCoder(func, getattr(func, "__qualname__", repr(func)), coder)
        call = CachedCall(func, keys, ttl, namespace, condition, values, injected)
        call.request_no_cache = request_no_cache
        call.revalidate = bool(revalidate)
        call.tags = None if tags is None else TagBuilder(func, tags, what)
        call.stale = windows
        call.vary = varied
        # key_builder and default keys use templates named after the function: functions made by
        # one factory (same qualified name) share them, as they would share a fixed key.
        claim(namespace, keys.claims, keys.source, what, HTTPCache.namespace, call)
        if key is None and key_builder is None:  # a route's default key template: claimed at its first use
            keys.on_template = lambda tb: claim(namespace, [tb], keys.source, what, HTTPCache.namespace, call)
        wrapper = _thin_wrapper(func, call, call.fast_path())
        add_params(wrapper, func, injected.added)  # FastAPI injects a Response and a Request
        call.endpoint = keys.endpoint = wrapper
        return wrapper

    return decorate


def invalidate_cache(
    key: str | None = None,
    keys: Iterable[str] | None = None,
    obj: str | None = None,
    obj_attr: str | None = None,
    namespace: str | None = None,
    *,
    tags: Iterable[str] | None = None,
) -> Callable[[F], F]:
    """Deletes cache keys, and invalidates ``tags`` (templates like ``@cache``'s), around a
    call: before it runs (so readers during the call do not get the old value) and again after
    it returns or raises, so the entries are gone when the call returns even if a concurrent
    reader re-cached one during the call."""
    templates = ([key] if key is not None else []) + (list(keys) if keys is not None else [])
    what = f"invalidate_cache(keys={templates!r})" if tags is None else f"invalidate_cache(keys={templates!r}, tags={tags!r})"
    if not templates and tags is None:
        raise ValueError("invalidate_cache: give key, keys or tags")
    tags = TagBuilder.check(tags, what)
    if namespace is not None:
        check_namespace(namespace)

    def decorate(func: F) -> F:
        _check_callable(what, func)
        builder = KeyBuilder(func, templates, obj, obj_attr, what) if templates else None
        tag_builder = None if tags is None else TagBuilder(func, tags, what)
        return _thin_wrapper(func, Invalidation(func, builder, tag_builder, namespace))

    return decorate


def _varied(vary: Any, what: str) -> list[str]:
    """The header names of ``vary``, lower-cased and sorted; TypeError/ValueError otherwise."""
    if vary is None:
        return []
    if isinstance(vary, (str, bytes)) or not hasattr(vary, "__iter__"):
        raise TypeError(f"{what}: vary must be a list of header names, got {vary!r}")
    vary = list(vary)
    if not all(isinstance(v, str) for v in vary):
        raise TypeError(f"{what}: vary must be a list of header names (str), got {vary!r}")
    names = sorted({v.lower() for v in vary})
    try:
        _httpcache.http_variant([], names)  # the core checks each is an HTTP token
    except ValueError as e:
        raise ValueError(f"{what}: vary={vary!r}: {e}") from None
    return names


def _window(seconds: Any, name: str, what: str) -> int:
    """A stale window in ms (None: 0); TypeError/ValueError for anything but 0..366 days."""
    if seconds is None:
        return 0
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"{what}: {name} must be whole seconds (int), got {seconds!r}")
    if not 0 <= seconds <= 366 * 86400:
        raise ValueError(f"{what}: {name}={seconds} must be 0..{366 * 86400} seconds")
    return seconds * 1000


def _check_callable(what: str, func: Any) -> None:
    if not callable(func):
        raise ValueError(f"{what}: cannot decorate {func!r}: not callable")


def _thin_wrapper(func: F, target: CachedCall | Invalidation, fast: Any = None) -> F:
    """The wrapper of `func` (its name, docstring and signature) that hands each call to `target`:
    an ``async def`` one for an ``async def`` function, else a plain one. With a fast path
    (``CachedCall.fast_path``), a call asks it first: a hit it answers returns at once."""
    if fast is not None:
        if target.keys.fixed is None:
            return _keyed_fast_wrapper(func, target, fast.hit_key)
        return _fast_wrapper(func, target, fast.hit)
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await target.call_async(args, kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        return target.call_sync(args, kwargs)

    return sync_wrapper  # type: ignore[return-value]


class Invalidation:
    """The keys one ``@invalidate_cache`` deletes and the tags it invalidates, and the two ways
    of doing so. A failure is an outage like any other: logged once per outage, never raised
    to the caller."""

    __slots__ = ("func", "keys", "tags", "namespace", "checked")

    def __init__(
        self, func: Callable[..., Any], keys: KeyBuilder | None, tags: TagBuilder | None, namespace: str | None,
    ) -> None:
        self.func = func
        self.keys = keys
        self.tags = tags
        self.namespace = namespace
        self.checked = self.keys is None

    def _check_claims(self) -> None:
        """Warns once when a template names no live @cache's key in the namespace it deletes in:
        the seed ignored a decorator's namespace, so code written for it may name one that no
        @cache writes to, and then invalidates nothing."""
        self.checked = True
        namespace = self.namespace or HTTPCache.namespace
        for tb in self.keys.templates:
            elsewhere = claimed_in(namespace, tb)
            if elsewhere is not None:
                logger.warning(
                    "httpcache: %s deletes %r in namespace %r, where no @cache of this process uses that key "
                    "template%s: it may invalidate nothing", self.keys.what, tb.decode("utf-8", "replace"), namespace,
                    f" (@cache uses it in namespace {', '.join(map(repr, elsewhere))})" if elsewhere else "",
                )

    def _targets(self, args: tuple, kwargs: dict) -> tuple[list[bytes], list[bytes]] | None:
        """This call's keys and tags, or None: nothing to invalidate (a field is missing)."""
        if not self.checked:
            self._check_claims()
        keys = self.keys.build(args, kwargs) if self.keys is not None else []
        tags = self.tags.build(args, kwargs) if self.tags is not None else []
        if keys is None or tags is None or not HTTPCache.enabled:
            return None
        return keys, tags

    def call_sync(self, args: tuple, kwargs: dict) -> Any:
        targets = self._targets(args, kwargs)
        if targets is None:
            return self.func(*args, **kwargs)
        self.delete_sync(*targets)
        try:
            return self.func(*args, **kwargs)
        finally:
            self.delete_sync(*targets)

    async def call_async(self, args: tuple, kwargs: dict) -> Any:
        targets = self._targets(args, kwargs)
        if targets is None:
            return await self.func(*args, **kwargs)
        await self.delete_async(*targets)
        try:
            return await self.func(*args, **kwargs)
        finally:
            await self.delete_async(*targets)

    def delete_sync(self, keys: list[bytes], tags: list[bytes]) -> None:
        invalidate_sync(HTTPCache.handle(self.namespace), keys, tags)

    async def delete_async(self, keys: list[bytes], tags: list[bytes]) -> None:
        await invalidate_async(HTTPCache.handle(self.namespace), asyncio.get_running_loop(), keys, tags)


def _fast_wrapper(func: F, target: CachedCall, hit: Callable[[dict], Any]) -> F:
    """_thin_wrapper's wrappers, asking `hit` (a HitPath's) before the normal path."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            result = hit(kwargs)
            if result is MISS:
                return await target.call_async(args, kwargs)
            return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        result = hit(kwargs)
        if result is MISS:
            return target.call_sync(args, kwargs)
        return result

    return sync_wrapper  # type: ignore[return-value]


def _keyed_fast_wrapper(func: F, target: CachedCall, hit_key: Callable[[bytes, dict], Any]) -> F:
    """_fast_wrapper's, for keys built per call: the key first, handed on to the normal path."""
    key_of = target.key_of
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            key = key_of(args, kwargs)
            if key is not None:
                result = hit_key(key, kwargs)
                if result is not MISS:
                    return result
            return await target.call_async(args, kwargs, key)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        key = key_of(args, kwargs)
        if key is not None:
            result = hit_key(key, kwargs)
            if result is not MISS:
                return result
        return target.call_sync(args, kwargs, key)

    return sync_wrapper  # type: ignore[return-value]
