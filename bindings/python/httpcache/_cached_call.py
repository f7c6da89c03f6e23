# SPDX-License-Identifier: MIT
"""CachedCall: everything one ``@cache``-decorated function does per call, behind two thin
wrappers (``_decorators``).

Who decides what (docs/design.md has the whole walk):
- the key: ``KeyBuilder`` (templates filled by the core); the TTL: ``TtlChoice`` (computed by the
  core); whether and how a result is stored: ``_codec.encode``; the headers: ``_headers``.
- single-flight: for ``def`` functions the core's get_or_compute (per handle, and across
  processes with lock_ttl_ms); for ``async def`` ones this module, per event loop
  (``LoopAdapter.flights``), because the non-blocking API has no compute callback.
- backend health (one log line per outage): the handle's ``Health``, told by each call here.

Both paths share ``hit`` (stored bytes -> the caller's result) and ``stored`` (the headers of a
computed response); each returns its outcome instead of writing to shared state.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable, NamedTuple

from . import _httpcache
from ._codec import MAGIC, MISS, ResponseMemo, decode_json, decode_value, encode, is_value_record
from ._config import HTTPCache, Handle
from ._asyncio import Flight
from ._early_hits import early_verdict, note_response
from ._headers import cache_headers, set_cache_headers
from ._injected import response_param, without_param
from ._keys import KeyBuilder
from ._ttl import TtlChoice

logger = logging.getLogger("httpcache")

_OK = _httpcache.OK
_ENOTFOUND = _httpcache.ENOTFOUND
_HIT = _httpcache.OUTCOME_HIT
_STORED = _httpcache.OUTCOME_STORED
_COALESCED = _httpcache.OUTCOME_COALESCED


class Entry(NamedTuple):
    """What a leader of an async flight computed, as its waiters are served it."""

    data: bytes
    ttl_s: float


class CachedCall:
    """One decorated function: its key builder, TTL choice and response memo, and the sync and
    async paths of a call."""

    __slots__ = (
        "func", "keys", "ttl", "namespace", "per_user", "memo", "where", "endpoint", "current", "ttl_callback",
        "response_param", "adds_param", "__weakref__",
    )

    def __init__(self, func: Callable[..., Any], keys: KeyBuilder, ttl: TtlChoice, namespace: str | None) -> None:
        self.func = func
        self.keys = keys
        self.ttl = ttl
        self.namespace = namespace
        self.per_user = keys.per_user
        # Per-user keys are many and each is read by one user: only a fixed key is memoized.
        self.memo = ResponseMemo(max_bytes=0) if self.per_user else ResponseMemo()
        self.where = getattr(func, "__qualname__", repr(func))
        self.endpoint: Any = None  # the wrapper routing calls, for HTTPCache.attach()
        # The sync path's store policy: the core calls it right after a computation, on the same
        # thread, for the TTL that computation settled (its ttl_func, capped by its handler).
        self.current = threading.local()
        self.ttl_callback = _httpcache.Policy.callback(lambda: self.current.run.ttl)
        # FastAPI's injected Response (see _injected): the handler's own parameter, or one the
        # wrapper adds (adds_param) and never passes on.
        self.response_param, self.adds_param = response_param(func)

    # -- shared by both paths

    def injected(self, kwargs: dict) -> Any:
        """The Response FastAPI injected into this call, or None."""
        return None if self.response_param is None else kwargs.get(self.response_param)

    def run(self, args: tuple, kwargs: dict) -> Any:
        """The decorated function's own call (without the parameter the wrapper added)."""
        return self.func(*args, **(without_param(kwargs) if self.adds_param else kwargs))

    def serve(self, value: bytes, ttl_s: float, injected: Any = None) -> Any:
        """Stored bytes as the caller gets them (a Response with the hit's headers for a response
        record; a plain result, whose status, headers and cache headers go on the injected
        response), or MISS when they cannot be decoded."""
        if not value.startswith(MAGIC):
            result = decode_json(value)
            if injected is not None and result is not MISS:
                set_cache_headers(injected, ttl_s, self.per_user, hit=True)
            return result
        if is_value_record(value):
            return self._serve_value(value, ttl_s, injected)
        hit = self.memo.decode_record(value)
        if hit is not MISS:
            # A decoded response has none of these headers (they are never stored): append them.
            hit.raw_headers.extend(cache_headers(ttl_s, self.per_user, True, hit.handler_cache_control))
        return hit

    def _serve_value(self, value: bytes, ttl_s: float, injected: Any) -> Any:
        decoded = decode_value(value)
        if decoded is MISS:
            return MISS
        result, status, headers = decoded
        if injected is not None:
            if status is not None:
                injected.status_code = status
            injected.raw_headers.extend(headers)
            set_cache_headers(injected, ttl_s, self.per_user, hit=True)
        return result

    def hit(self, key: bytes, value: bytes, ttl_s: float, injected: Any = None) -> Any:
        """serve() for bytes read from the backend, which HTTPCache.attach() may learn."""
        result = self.serve(value, ttl_s, injected)
        if result is not MISS and not self.per_user and value.startswith(MAGIC) and not is_value_record(value):
            note_response(self.endpoint, key, self.namespace)
        return result

    def stored(self, response: Any, key: bytes, ttl_s: float, in_backend: bool) -> None:
        """Gives a computed response its cache headers (it was stored, or would have been)."""
        set_cache_headers(response, ttl_s, self.per_user, hit=False)
        if in_backend and not self.per_user:
            note_response(self.endpoint, key, self.namespace)

    def key(self, args: tuple, kwargs: dict) -> bytes | None:
        built = self.keys.build(args, kwargs)
        return None if built is None else built[0]

    # -- def functions: the core's get_or_compute decides (single-flight, lock, store)

    def call_sync(self, args: tuple, kwargs: dict) -> Any:
        key = self.key(args, kwargs)
        if key is None:
            return self.run(args, kwargs)
        handle = HTTPCache.handle(self.namespace)
        run = _Computation(self, handle, args, kwargs)
        policy = self.ttl_callback
        ticket = handle.ticket()
        value, ttl_ms, outcome, failure = handle.cache.get_or_compute(key, policy, run)
        if outcome == _HIT or outcome == _COALESCED:
            # COALESCED: a concurrent call on this handle computed it; this call's function did
            # not run, as on a hit. That says nothing about the backend (the value is shared even
            # when it could not be stored).
            if outcome == _HIT:
                handle.backend_ok(ticket)
            result = self.hit(key, value, ttl_ms / 1000, self.response_param and kwargs.get(self.response_param))
            if result is not MISS:
                return result
            ttl_ms, outcome = self._overwrite(handle, key, policy, run, ticket)
        return self._computed(handle, key, run, ttl_ms, outcome, ticket, failure)

    def _overwrite(self, handle: Handle, key: bytes, policy: Any, run: _Computation, ticket: int) -> tuple[int, Any]:
        """Computes and stores over a stored value that does not decode: (ttl_ms, outcome)."""
        run()
        ttl_ms, outcome = 0, None
        if run.data is not None:
            try:
                ttl_ms, outcome = handle.cache.set(key, run.data, policy) * 1000, _STORED
            except ValueError:
                pass  # over max_value_bytes: logged by _computed
            except _httpcache.Error as e:
                handle.backend_failed(ticket, "set", e.code, str(e))
        if outcome != _STORED:
            handle.count("uncached")  # the core counted a hit
        return ttl_ms, outcome

    def _computed(
        self, handle: Handle, key: bytes, run: _Computation, ttl_ms: int, outcome: Any, ticket: int,
        failure: str | None = None,
    ) -> Any:
        """The result of a call whose function ran: logs why it was not stored (`failure`: the
        backend's, when it failed), sets headers."""
        if run.data is None:
            return run.result
        if outcome == _STORED:
            handle.backend_ok(ticket)
        elif len(run.data) > handle.max_value_bytes():
            logger.warning("httpcache: result of %s not cached: over max_value_bytes", self.where)
        elif ttl_ms < 0:
            pass  # not stored because of fencing (an invalidation, another caller's lease): no outage
        elif outcome is not None:
            handle.backend_failed(ticket, "get or set", None, failure)
        in_backend = outcome == _STORED
        ttl_s = ttl_ms // 1000 if in_backend else run.ttl
        if run.is_response:
            self.stored(run.result, key, ttl_s, in_backend)
        elif (injected := self.injected(run.kwargs)) is not None:
            set_cache_headers(injected, ttl_s, self.per_user, hit=False)
        return run.result

    # -- async def functions: non-blocking get and set; single-flight per loop here

    async def call_async(self, args: tuple, kwargs: dict) -> Any:
        key = self.key(args, kwargs)
        if key is None:
            return await self.run(args, kwargs)
        handle = HTTPCache.handle(self.namespace)
        loop = asyncio.get_running_loop()
        adapter = handle.adapter(loop)
        ticket = handle.ticket()
        verdict = early_verdict(key, self.namespace)  # HTTPCache.attach()'s GET of this request
        lease = 0
        if verdict is None:
            status, value, ttl_ms = await adapter.start_get(loop, key)
        else:
            (status, ttl_ms), value = verdict, None  # on a miss, ttl_ms is its lease number
        if status == _OK:
            handle.backend_ok(ticket)
            result = self.hit(key, value, ttl_ms / 1000, self.response_param and kwargs.get(self.response_param))
            if result is not MISS:
                return result
            backend_up = True  # an undecodable value: recompute and overwrite it
        elif status == _ENOTFOUND:
            handle.backend_ok(ticket)
            backend_up = True
            lease = ttl_ms  # on a miss: the lease number (see _asyncio.Flight)
        else:
            handle.backend_failed(ticket, "get", status, value)
            backend_up = False
        return await self._single_flight(args, kwargs, handle, loop, adapter, key, backend_up, ticket, lease)

    async def _single_flight(self, args, kwargs, handle, loop, adapter, key, backend_up, ticket, lease) -> Any:  # noqa: ANN001
        """Concurrent misses of one key on this loop share one computation, and its failure (the
        same exception). Fenced: a call joins a flight only with the same lease number (see
        _asyncio.Flight), so one arriving after an invalidation never gets a value computed
        before it. If the computing call declines to store or is too slow, each waiting call
        computes its own."""
        flights = adapter.flights
        leader = flights.get(key)
        if leader is not None and not leader.void and leader.lease == lease and (lease or leader.generation == adapter.generation):
            try:
                shared = await asyncio.wait_for(asyncio.shield(leader.future), HTTPCache.option("singleflight_wait_ms") / 1000)
            except asyncio.TimeoutError:
                shared = None
            if shared is not None:
                result = self.serve(shared.data, shared.ttl_s, self.injected(kwargs))
                if result is not MISS:
                    handle.count("coalesced")
                    return result
            return (await self._compute(args, kwargs, handle, loop, adapter, key, backend_up, ticket, None))[0]
        if leader is not None:
            leader.void = True  # a newer lease (or an invalidation): that flight must not store
        flight = Flight(loop.create_future(), lease, adapter.generation)
        flights[key] = flight
        entry = None
        try:
            result, entry = await self._compute(args, kwargs, handle, loop, adapter, key, backend_up, ticket, flight)
            return result
        except Exception as e:
            if not flight.future.done():
                flight.future.set_exception(e)  # waiters raise the same exception
                flight.future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            if flights.get(key) is flight:
                del flights[key]
            if not flight.future.done():
                flight.future.set_result(entry)  # None (declined or canceled): waiters compute their own
            # A void flight's lease is gone (invalidated) and the context's record for the key may
            # be a newer flight's: releasing would delete that one's placeholder and unfence it.
            if lease > 0 and not flight.set_sent and not flight.void:
                await _release(adapter, loop, key)

    async def _compute(self, args, kwargs, handle, loop, adapter, key, backend_up, ticket, flight) -> tuple[Any, Entry | None]:  # noqa: ANN001
        """(the function's result, the Entry waiters may be served, or None when not storable).
        A computation outside a flight, or of a flight made void, is not stored (fencing)."""
        result = await self.run(args, kwargs)
        injected = self.injected(kwargs)
        data, is_response, cap = encode(result, self.per_user, self.where, injected)
        policy = None if data is None else await self.ttl.policy_async(self.where)
        if policy is None:
            handle.count("uncached")
            return result, None
        if cap is not None and cap < handle.cache.ttl(policy):
            policy = _httpcache.Policy.seconds(cap)  # never stored longer than the handler allows
        ttl_s = 0
        if backend_up and flight is not None and not flight.void:
            flight.set_sent = True
            try:
                status, ttl_s = await adapter.set(loop, key, data, policy)
            except ValueError as e:  # value over max_value_bytes (counted by the core)
                flight.set_sent = False  # refused before it was sent: the lease is still ours
                logger.warning("httpcache: result of %s not cached: %s", self.where, e)
                handle.count("uncached")
                return result, None
            if status == _ENOTFOUND:
                ttl_s = 0  # refused: the lease was invalidated while computing (fencing)
            elif status != _OK:
                handle.backend_failed(ticket, "set", status, ttl_s)  # ttl_s: the error message
                ttl_s = 0
        in_backend = bool(ttl_s)
        if not in_backend:
            handle.count("uncached")
            ttl_s = handle.cache.ttl(policy)
        if is_response:
            self.stored(result, key, ttl_s, in_backend)
        elif injected is not None:
            set_cache_headers(injected, ttl_s, self.per_user, hit=False)
        return result, Entry(data, ttl_s)


async def _release(adapter: Any, loop: Any, key: bytes) -> None:
    """The lease of a flight that stored nothing is given back (see LoopAdapter.release), so no
    placeholder outlives the call; a failure to do so only leaves it to expire."""
    try:
        await adapter.release(loop, key)
    except Exception:  # noqa: BLE001 - the context closed, the backend failed: it expires by itself
        pass


class _Computation:
    """The compute callback the core's get_or_compute runs on a miss of a ``def`` function: runs
    it once and keeps what it produced (the result, the bytes to store or None, the TTL)."""

    __slots__ = ("call", "handle", "args", "kwargs", "result", "data", "is_response", "ttl")

    def __init__(self, call: CachedCall, handle: Handle, args: tuple, kwargs: dict) -> None:
        self.call = call
        self.handle = handle
        self.args = args
        self.kwargs = kwargs
        self.data: bytes | None = None
        self.ttl: int | None = None

    def __call__(self) -> tuple[bytes, bool]:
        call = self.call
        self.result = call.run(self.args, self.kwargs)
        self.data, self.is_response, cap = encode(self.result, call.per_user, call.where, call.injected(self.kwargs))
        if self.data is not None and call.ttl.func is not None:
            self.ttl = call.ttl.seconds_sync(call.where)
            if self.ttl is None:
                self.data = None
        if self.data is not None:
            ttl = self.ttl if self.ttl is not None else self.handle.cache.ttl(call.ttl.fixed)
            self.ttl = ttl if cap is None else min(ttl, cap)  # never longer than the handler allows
        call.current.run = self  # what the TTL callback reads, right after this returns
        return (b"", False) if self.data is None else (self.data, True)
