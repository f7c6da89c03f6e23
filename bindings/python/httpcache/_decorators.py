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
from typing import Any, Callable, Iterable, TypeVar

from . import _httpcache
from ._cached_call import CachedCall
from ._config import HTTPCache, Handle, check_namespace
from ._injected import add_param
from ._keys import KeyBuilder, claim
from ._ttl import TtlChoice

F = TypeVar("F", bound=Callable[..., Any])

_OK = _httpcache.OK


def cache(
    key: str,
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
) -> Callable[[F], F]:
    """Caches the result of an ``async def`` or ``def`` function (or FastAPI handler).

    ``condition(result)``: a false answer returns that result uncached (not stored; no warning).

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

    def decorate(func: F) -> F:
        _check_callable(what, func)
        keys = KeyBuilder(func, [key], obj, obj_attr, what)
        call = CachedCall(func, keys, ttl, namespace, condition)
        claim(namespace, keys.templates, obj_attr, what, HTTPCache.namespace, call)
        wrapper = _thin_wrapper(func, call)
        if call.adds_param:
            add_param(wrapper, func)  # FastAPI injects a Response for the cache headers
        call.endpoint = wrapper
        return wrapper

    return decorate


def invalidate_cache(
    key: str | None = None,
    keys: Iterable[str] | None = None,
    obj: str | None = None,
    obj_attr: str | None = None,
    namespace: str | None = None,
) -> Callable[[F], F]:
    """Deletes cache keys around a call: before it runs (so readers during the call do not get
    the old value) and again after it returns or raises, so the keys are gone when the call
    returns even if a concurrent reader re-cached one during the call."""
    templates = ([key] if key is not None else []) + (list(keys) if keys is not None else [])
    what = f"invalidate_cache(keys={templates!r})"
    if not templates:
        raise ValueError("invalidate_cache: give key or keys")
    if namespace is not None:
        check_namespace(namespace)

    def decorate(func: F) -> F:
        _check_callable(what, func)
        return _thin_wrapper(func, Invalidation(func, KeyBuilder(func, templates, obj, obj_attr, what), namespace))

    return decorate


def _check_callable(what: str, func: Any) -> None:
    if not callable(func):
        raise ValueError(f"{what}: cannot decorate {func!r}: not callable")


def _thin_wrapper(func: F, target: CachedCall | Invalidation) -> F:
    """The wrapper of `func` (its name, docstring and signature) that hands each call to `target`:
    an ``async def`` one for an ``async def`` function, else a plain one."""
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
    """The keys one ``@invalidate_cache`` deletes, and the two ways of deleting them. A failed
    delete is an outage like any other: logged once per outage, never raised to the caller."""

    __slots__ = ("func", "keys", "namespace")

    def __init__(self, func: Callable[..., Any], keys: KeyBuilder, namespace: str | None) -> None:
        self.func = func
        self.keys = keys
        self.namespace = namespace

    def call_sync(self, args: tuple, kwargs: dict) -> Any:
        keys = self.keys.build(args, kwargs)
        if keys is None or not HTTPCache.enabled:
            return self.func(*args, **kwargs)
        self.delete_sync(keys)
        try:
            return self.func(*args, **kwargs)
        finally:
            self.delete_sync(keys)

    async def call_async(self, args: tuple, kwargs: dict) -> Any:
        keys = self.keys.build(args, kwargs)
        if keys is None or not HTTPCache.enabled:
            return await self.func(*args, **kwargs)
        await self.delete_async(keys)
        try:
            return await self.func(*args, **kwargs)
        finally:
            await self.delete_async(keys)

    def delete_sync(self, keys: list[bytes]) -> None:
        handle: Handle = HTTPCache.handle(self.namespace)
        ticket = handle.ticket()
        try:
            handle.cache.invalidate(keys)
            handle.backend_ok(ticket)
        except _httpcache.Error as e:
            handle.backend_failed(ticket, "invalidate", e.code, str(e))

    async def delete_async(self, keys: list[bytes]) -> None:
        handle: Handle = HTTPCache.handle(self.namespace)
        loop = asyncio.get_running_loop()
        ticket = handle.ticket()
        status, deleted_or_message = await handle.adapter(loop).invalidate(loop, keys)
        if status == _OK:
            handle.backend_ok(ticket)
        else:
            handle.backend_failed(ticket, "invalidate", status, deleted_or_message)
