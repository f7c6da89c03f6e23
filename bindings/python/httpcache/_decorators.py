# SPDX-License-Identifier: MIT
"""The ``cache`` and ``invalidate_cache`` decorators (drop-ins for ``authx_extra.cache``).

Keys, TTLs and storage are the C core's: a key template is filled by ``httpcache_key_format``,
the backend key is ``namespace:key``, and the TTL policy goes to the core, which computes end of
day / end of week in the configured zone. ``async def`` functions use the non-blocking path
(see ``_asyncio``); plain functions use the blocking ``get_or_compute`` with the GIL released.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from typing import Any, Callable, Iterable, TypeVar

from . import _httpcache
from ._core import HTTPCache, check_namespace
from ._early_hits import early_verdict, note_response
from ._responses import (
    MAGIC,
    MISS,
    ResponseMemo,
    cache_headers,
    decode_json,
    encode,
    set_cache_headers,
)

logger = logging.getLogger("httpcache")

F = TypeVar("F", bound=Callable[..., Any])

_OK = _httpcache.OK
_ENOTFOUND = _httpcache.ENOTFOUND
_HIT = _httpcache.OUTCOME_HIT
_STORED = _httpcache.OUTCOME_STORED
_COALESCED = _httpcache.OUTCOME_COALESCED
_EMPTY = inspect.Parameter.empty
_UNSET: Any = object()


class _KeyBuilder:
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


def _singleflight_wait_s() -> float:
    return (HTTPCache._options.get("singleflight_wait_ms") or 5000) / 1000.0


def _check_ttl(ttl: Any, where: str) -> int | None:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        logger.warning("httpcache: ttl_func of %s returned %r (must be an int > 0); result not cached", where, ttl)
        return None
    return ttl


def _run_coroutine_sync(coro: Any) -> Any:
    """Runs an async ttl_func from a sync call: in place when no loop runs on this thread, else
    on a short-lived thread (this thread's loop is blocked by the sync call anyway)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, asyncio.run(coro)))
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            box.append((False, e))

    t = threading.Thread(target=run, name="httpcache-ttl_func")
    t.start()
    t.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value



def _served(value: bytes, ttl_s: float, per_user: bool, memo: ResponseMemo) -> Any:
    """A stored value as the caller gets it (a Response with the hit's headers for a response
    record), or MISS when it cannot be decoded."""
    if not value.startswith(MAGIC):
        return decode_json(value)
    hit = memo.decode_record(value)
    if hit is not MISS:
        # A decoded response has none of these headers (they are never stored): append them.
        hit.raw_headers.extend(cache_headers(ttl_s, per_user, True))
    return hit


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
) -> Callable[[F], F]:
    """Caches the result of an ``async def`` or ``def`` function (or FastAPI handler).

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
    if end_of_day is not None:
        expire_end_of_day = end_of_day
    if end_of_week is not None:
        expire_end_of_week = end_of_week
    if ttl_in_seconds is not None and (
        isinstance(ttl_in_seconds, bool) or not isinstance(ttl_in_seconds, int) or ttl_in_seconds <= 0
    ):
        raise ValueError(f"{what}: invalid ttl_in_seconds={ttl_in_seconds!r}: must be an int > 0")
    if ttl_func is not None and not callable(ttl_func):
        raise ValueError(f"{what}: ttl_func={ttl_func!r} is not callable")
    if namespace is not None:
        check_namespace(namespace)
    if ttl_in_seconds is not None:
        fixed_policy = _httpcache.Policy.seconds(ttl_in_seconds)
    elif expire_end_of_week:
        fixed_policy = _httpcache.Policy.end_of_week()
    else:
        fixed_policy = _httpcache.Policy.end_of_day()

    def decorate(func: F) -> F:
        if not callable(func):
            raise ValueError(f"{what}: cannot decorate {func!r}: not callable")
        keys = _KeyBuilder(func, [key], obj, obj_attr, what)
        per_user = obj is not None
        # Per-user keys are many and each is read by one user: only a fixed key is memoized.
        memo = ResponseMemo(max_bytes=0) if per_user else ResponseMemo()
        where = getattr(func, "__qualname__", repr(func))

        if inspect.iscoroutinefunction(func):

            async def ttl_policy_async() -> Any:
                if ttl_func is None:
                    return fixed_policy
                try:
                    ttl = ttl_func()
                    if inspect.isawaitable(ttl):
                        ttl = await ttl
                except Exception:
                    logger.exception("httpcache: ttl_func of %s failed; result not cached", where)
                    return None
                ttl = _check_ttl(ttl, where)
                return None if ttl is None else _httpcache.Policy.seconds(ttl)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                built = keys.build(args, kwargs)
                if built is None:
                    return await func(*args, **kwargs)
                k = built[0]
                handle = HTTPCache.handle(namespace)
                loop = asyncio.get_running_loop()
                adapter = handle.adapter(loop)
                ticket = handle.ticket()
                verdict = early_verdict(k, namespace)  # HTTPCache.attach()'s GET of this request
                if verdict is None:
                    status, value, ttl_ms = await adapter.start_get(loop, k)
                else:
                    status, value, ttl_ms = verdict, None, 0
                if status == _OK:
                    handle.backend_ok(ticket)
                    hit = _served(value, ttl_ms / 1000, per_user, memo)
                    if hit is not MISS:
                        if not per_user and value.startswith(MAGIC):
                            note_response(async_wrapper, k, namespace)
                        return hit
                    backend_up = True  # an undecodable value: recompute and overwrite it
                elif status == _ENOTFOUND:
                    handle.backend_ok(ticket)
                    backend_up = True
                else:
                    handle.backend_failed(ticket, "get", status)
                    backend_up = False

                # Single-flight: concurrent misses of one key on this loop share one computation,
                # as the core's get_or_compute does for blocking calls. If the computing call
                # fails, declines to store or is too slow, each waiting call computes its own.
                flights = adapter.flights
                leader = flights.get(k)
                if leader is not None:
                    try:
                        shared = await asyncio.wait_for(asyncio.shield(leader), _singleflight_wait_s())
                    except asyncio.TimeoutError:
                        shared = None
                    if shared is not None:
                        data, ttl_s = shared
                        hit = _served(data, ttl_s, per_user, memo)
                        if hit is not MISS:
                            handle.count("coalesced")
                            return hit
                    return await compute_and_store(args, kwargs, handle, loop, adapter, k, backend_up, None, ticket)
                flight = loop.create_future()
                flights[k] = flight
                try:
                    return await compute_and_store(args, kwargs, handle, loop, adapter, k, backend_up, flight, ticket)
                finally:
                    if flights.get(k) is flight:
                        del flights[k]
                    if not flight.done():
                        flight.set_result(None)  # failed or declined: waiters compute their own

            async def compute_and_store(
                args: tuple,
                kwargs: dict,
                handle: Any,
                loop: Any,
                adapter: Any,
                k: bytes,
                backend_up: bool,
                flight: Any,
                ticket: int,
            ) -> Any:
                result = await func(*args, **kwargs)

                data, response = encode(result, per_user, where)
                if data is None:
                    handle.count("uncached")
                    return result
                policy = await ttl_policy_async()
                if policy is None:
                    handle.count("uncached")
                    return result
                ttl_s = 0
                if backend_up:
                    try:
                        st, ttl_s = await adapter.set(loop, k, data, policy)
                    except ValueError as e:  # value over max_value_bytes (counted by the core)
                        logger.warning("httpcache: result of %s not cached: %s", where, e)
                        handle.count("uncached")
                        return result
                    if st != _OK:
                        handle.backend_failed(ticket, "set", st)
                        ttl_s = 0
                stored = bool(ttl_s)
                if not stored:
                    handle.count("uncached")
                    ttl_s = handle.cache.ttl(policy)
                if flight is not None and not flight.done():
                    flight.set_result((data, ttl_s))
                if response:
                    set_cache_headers(result, ttl_s, per_user, hit=False)
                    if stored and not per_user:
                        note_response(async_wrapper, k, namespace)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            built = keys.build(args, kwargs)
            if built is None:
                return func(*args, **kwargs)
            k = built[0]
            handle = HTTPCache.handle(namespace)
            # What compute() saw: the result, whether it wanted it stored, and its TTL.
            state: dict[str, Any] = {}
            data_box: list[bytes] = []

            def compute() -> tuple[bytes, bool]:
                result = func(*args, **kwargs)
                state["result"] = result
                data, response = encode(result, per_user, where)
                state["response"] = response
                if data is None:
                    return b"", False
                if ttl_func is not None:
                    try:
                        ttl = ttl_func()
                        if inspect.isawaitable(ttl):
                            ttl = _run_coroutine_sync(ttl)
                    except Exception:
                        logger.exception("httpcache: ttl_func of %s failed; result not cached", where)
                        return b"", False
                    ttl = _check_ttl(ttl, where)
                    if ttl is None:
                        return b"", False
                    state["ttl"] = ttl
                state["store"] = True
                data_box.append(data)
                return data, True

            if ttl_func is not None:
                # The core asks for the TTL only when it stores, after compute() ran.
                policy = _httpcache.Policy.callback(lambda: state["ttl"])
            else:
                policy = fixed_policy
            ticket = handle.ticket()
            value, ttl_ms, outcome = handle.cache.get_or_compute(k, policy, compute)
            if outcome == _HIT or outcome == _COALESCED:
                # COALESCED: a concurrent call on this handle computed it (the core's
                # single-flight); this call's function did not run, as on a hit. That says nothing
                # about the backend (the value is shared even when it could not be stored).
                if outcome == _HIT:
                    handle.backend_ok(ticket)
                hit = _served(value, ttl_ms / 1000, per_user, memo)
                if hit is not MISS:
                    if not per_user and value.startswith(MAGIC):
                        note_response(sync_wrapper, k, namespace)
                    return hit
                # An undecodable value: recompute and overwrite it.
                value, ttl_ms, outcome = b"", 0, None
                data = compute()
                if state.get("store"):
                    try:
                        ttl_ms = handle.cache.set(k, data[0], policy) * 1000
                        outcome = _STORED
                    except ValueError:
                        pass  # over max_value_bytes: logged below
                    except _httpcache.Error as e:
                        handle.backend_failed(ticket, "set", e.code, str(e))
                if outcome != _STORED:
                    handle.count("uncached")  # the core counted a hit
            result = state["result"]
            if not state.get("store"):
                return result
            if outcome == _STORED:
                handle.backend_ok(ticket)
            elif len(data_box) and len(data_box[0]) > handle.max_value_bytes():
                logger.warning("httpcache: result of %s not cached: over max_value_bytes", where)
            elif outcome is not None:
                handle.backend_failed(ticket, "get or set")
            if state.get("response"):
                ttl_s = ttl_ms // 1000 if outcome == _STORED else handle.cache.ttl(
                    _httpcache.Policy.seconds(state["ttl"]) if ttl_func is not None else policy
                )
                set_cache_headers(result, ttl_s, per_user, hit=False)
                if not per_user and outcome == _STORED:
                    note_response(sync_wrapper, k, namespace)
            return result

        return sync_wrapper  # type: ignore[return-value]

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
        if not callable(func):
            raise ValueError(f"{what}: cannot decorate {func!r}: not callable")
        builder = _KeyBuilder(func, templates, obj, obj_attr, what)

        if inspect.iscoroutinefunction(func):

            async def delete(handle: Any, loop: Any, ks: list[bytes]) -> None:
                ticket = handle.ticket()
                status, _ = await handle.adapter(loop).invalidate(loop, ks)
                if status == _OK:
                    handle.backend_ok(ticket)
                else:
                    handle.backend_failed(ticket, "invalidate", status)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                ks = builder.build(args, kwargs)
                if ks is None:
                    return await func(*args, **kwargs)
                handle = HTTPCache.handle(namespace)
                loop = asyncio.get_running_loop()
                await delete(handle, loop, ks)
                try:
                    return await func(*args, **kwargs)
                finally:
                    await delete(handle, loop, ks)

            return async_wrapper  # type: ignore[return-value]

        def delete_sync(handle: Any, ks: list[bytes]) -> None:
            ticket = handle.ticket()
            try:
                handle.cache.invalidate(ks)
                handle.backend_ok(ticket)
            except _httpcache.Error as e:
                handle.backend_failed(ticket, "invalidate", e.code, str(e))

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            ks = builder.build(args, kwargs)
            if ks is None:
                return func(*args, **kwargs)
            handle = HTTPCache.handle(namespace)
            delete_sync(handle, ks)
            try:
                return func(*args, **kwargs)
            finally:
                delete_sync(handle, ks)

        return sync_wrapper  # type: ignore[return-value]

    return decorate
