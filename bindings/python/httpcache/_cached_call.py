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

The ``def`` and ``async def`` paths differ only in how they call the function (and its
ttl_func) and talk to the backend: the blocking get_or_compute, or the loop's non-blocking get
and set. They share one way to serve a hit (``hit``/``serve``: stored bytes -> the caller's
result) and one way to compute and store: ``computed`` applies the storage rules and encodes,
``Computed.expire_in`` settles the TTL (capped by the handler), and ``finished`` gives the
caller its result with its cache headers. Each step returns its outcome (a ``Computed``, the
TTL stored) instead of writing to shared state; the one exception is what the core's callbacks
need, kept per thread (see ``CachedCall.current``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable

from . import _httpcache
from ._codec import (
    MISS, RECORD, ResponseMemo, decode_json, decode_value, encode_response, encode_value, is_response, is_value_record,
    template_parts,
)
from ._config import HTTPCache, Handle
from ._invalidation import invalidate_async, invalidate_sync
from ._asyncio import Flight
from ._early_hits import early_verdict, learning, note_response
from ._headers import (
    cache_headers, ensure_etag, hit_headers_good_for, is_conditional, not_modified, not_modified_response, request_flags,
    set_cache_headers,
)
from ._injected import Injected, without_params
from ._keys import KeyBuilder, TagBuilder
from ._routes import response_for, route_of
from ._ttl import TtlChoice
from ._typed import ResultCoder

logger = logging.getLogger("httpcache")

_OK = _httpcache.OK
_ENOTFOUND = _httpcache.ENOTFOUND
_HIT = _httpcache.OUTCOME_HIT
_STORED = _httpcache.OUTCOME_STORED
_COALESCED = _httpcache.OUTCOME_COALESCED
_STALE = _httpcache.OUTCOME_STALE
_ESTALE = _httpcache.ESTALE
_NO_WINDOWS = (0, 0)
_EPOCH = _httpcache.HitPath.epoch
_VARIED_KEYS = 64


class Computed:
    """One run of the decorated function, as both paths store and return it: the result (and
    the Response FastAPI injected into the call), the bytes to store (None: not stored), whether
    they are a response record, and their TTL in seconds. The leader of an async flight hands it
    to its waiters, who are served its data and ttl."""

    __slots__ = ("result", "injected", "data", "is_response", "cap", "ttl", "stale")

    def __init__(self, result: Any, injected: Any, data: bytes | None, is_response: bool, cap: int | None) -> None:
        self.result = result
        self.injected = injected
        self.data = data
        self.is_response = is_response
        self.cap = cap  # the most seconds the response's handler allows, or None
        self.stale: tuple[int, int] | None = None  # the response's own stale windows (ms), if it gives any
        self.ttl = 0

    def expire_in(self, seconds: int | None) -> None:
        """Takes the TTL choice's answer for this result; None (its ttl_func failed) stores nothing."""
        if seconds is None:
            self.data = None
        else:
            self.ttl = seconds if self.cap is None else min(seconds, self.cap)


class CachedCall:
    """One decorated function: its key builder, TTL choice and response memo, and the sync and
    async paths of a call."""

    __slots__ = (
        "func", "keys", "ttl", "namespace", "per_user", "memo", "where", "endpoint", "current", "ttl_callback",
        "compute_callback", "response_param", "request_param", "added", "condition", "values", "condition_warned", "request_no_cache", "revalidate", "tags", "stale", "stale_warned", "vary", "fast", "__weakref__",
    )

    def __init__(
        self, func: Callable[..., Any], keys: KeyBuilder, ttl: TtlChoice, namespace: str | None,
        condition: Callable[[Any], Any] | None = None, values: ResultCoder | None = None,
        injected: Injected = Injected(),
    ) -> None:
        self.func = func
        self.condition = condition  # False for a result: returned, not stored
        self.condition_warned = False
        self.request_no_cache: str | None = None  # "ignore" | "honor"; None: init()'s
        self.revalidate = False  # responses tell clients Cache-Control: no-cache (with the ETag)
        self.tags: TagBuilder | None = None  # the tags its entries are stored under
        self.stale = _NO_WINDOWS  # (stale-while-revalidate ms, stale-if-error ms) of its entries
        self.vary: list[str] = []  # request headers whose values tell its entries apart (RFC 9111 4.1)
        self.stale_warned = False
        self.keys = keys
        self.ttl = ttl
        self.namespace = namespace
        self.per_user = keys.per_user  # responses are one user's: Cache-Control private
        # What hits decode, per key while its stored bytes are unchanged: one key, or the last
        # _VARIED_KEYS of a key that varies per call, up to 16 KiB each (a near, memory:// or lmdb:// hit
        # then costs a copy; the memory held stays a few MiB per decorated function).
        memo_keys = 1 if keys.fixed is not None else _VARIED_KEYS
        self.memo = ResponseMemo(max_keys=memo_keys) if memo_keys == 1 else ResponseMemo(16 << 10, memo_keys)
        self.where = getattr(func, "__qualname__", repr(func))
        self.values = values if values is not None else ResultCoder(func, self.where)
        self.values.memo.max_keys = memo_keys
        self.endpoint: Any = None  # the wrapper routing calls, for HTTPCache.attach()
        # get_or_compute's callbacks take no arguments and are made once, so that a hit builds no
        # callable: call_sync leaves the call's (handle, args, kwargs) in `current` (per thread;
        # one tuple in one write costs a hit less than a partial or a write per field), the
        # compute callback leaves its Computed there, and the TTL callback, which the core runs
        # right after it on the same thread, reads that Computed's TTL.
        self.current = threading.local()
        self.compute_callback = self._compute_for_core
        self.ttl_callback = _httpcache.Policy.callback(lambda: self.current.computed.ttl)
        # FastAPI's injected Response and Request (see _injected): the handler's own parameters,
        # or ones the wrapper adds (`added`) and never passes on.
        self.response_param, self.request_param, self.added = injected
        self.fast: Any = None  # the one-call hit path (_httpcache.HitPath) of a fixed key: see fast_path()

    # -- shared by both paths

    def injected(self, kwargs: dict) -> Any:
        """The Response FastAPI injected into this call, or None."""
        return None if self.response_param is None else kwargs.get(self.response_param)

    def run(self, args: tuple, kwargs: dict) -> Any:
        """The decorated function's own call (without the parameter the wrapper added)."""
        return self.func(*args, **(without_params(kwargs, self.added) if self.added else kwargs))

    def serve(self, key: bytes, value: bytes, ttl_s: float, kwargs: dict) -> Any:
        """Stored bytes as the caller gets them (a Response with the hit's headers for a response
        record, or its 304 when the request's preconditions say the client has it; a plain
        result, whose status, headers and cache headers go on the injected response), or MISS
        when they cannot be decoded."""
        injected = self.injected(kwargs)
        if not value.startswith(RECORD):
            result = self.values.decode_hit(key, value)
            if injected is not None and result is not MISS:
                set_cache_headers(injected, ttl_s, self.per_user, hit=True)
            return result
        if is_value_record(value):
            return self._serve_value(key, value, ttl_s, injected)
        request = kwargs.get(self.request_param) if self.request_param is not None else None
        if request is not None and is_conditional(request.scope):
            template = self.memo.template(value, key)  # only read: the 304 copies what it keeps
            if template is not MISS and not_modified(template, request.scope):
                added = cache_headers(ttl_s, self.per_user, True, template.handler_cache_control, template.stored_at)
                hit = not_modified_response(template, added)
                if injected is not None:
                    hit.raw_headers.extend(injected.raw_headers)
                return hit
        hit = self.memo.decode_record(value, key)
        if hit is not MISS:
            # A decoded response has none of these headers (they are never stored): append them.
            hit.raw_headers.extend(cache_headers(ttl_s, self.per_user, True, hit.handler_cache_control, hit.stored_at))
            if injected is not None:  # what this request's dependencies set (the handler did not run)
                hit.raw_headers.extend(injected.raw_headers)
                if injected.status_code:
                    hit.status_code = injected.status_code
        return hit

    def _serve_value(self, key: bytes, value: bytes, ttl_s: float, injected: Any) -> Any:
        decoded = decode_value(value)
        if decoded is MISS:
            return MISS
        data, status, headers = decoded
        result = self.values.decode_hit(key, data)
        if result is MISS:
            return MISS
        if injected is not None:
            if status is not None:
                injected.status_code = status
            injected.raw_headers.extend(headers)
            set_cache_headers(injected, ttl_s, self.per_user, hit=True)
        return result

    def hit(self, key: bytes, value: bytes, ttl_s: float, kwargs: dict) -> Any:
        """serve() for bytes read from the backend, which HTTPCache.attach() may learn."""
        result = self.serve(key, value, ttl_s, kwargs)
        if result is not MISS and self.learnable() and value.startswith(RECORD) and not is_value_record(value):
            note_response(self.endpoint, key, self.namespace)
        return result

    def fast_path(self) -> Any:
        """The HitPath the wrappers ask first: for a fixed key, or keys built from the call's
        arguments (the last _VARIED_KEYS), without tags (a hit must judge their generations) or
        vary, nor key_builder (the application's code, run once per call). None otherwise."""
        if self.tags is not None or self.vary or self.keys.key_builder is not None:
            return None
        self.fast = _httpcache.HitPath(MISS, learning, max_keys=1 if self.keys.fixed is not None else _VARIED_KEYS)
        return self.fast

    def near(self, handle: Handle, key: bytes, kwargs: dict, epoch: int = 0) -> Any:
        """A hit this process answers alone (the near tier, memory://, lmdb://'s mapped file),
        with no network I/O, or MISS. A plain JSON result decoded before comes back from the core
        already copied (peek with the memo's states); other bytes are served as any hit's. With
        a fast path, the value's version comes too, and the hit arms it (see _arm; `epoch`:
        HitPath.epoch() read before this call read HTTPCache's settings)."""
        values = self.values
        plain = values.decode is decode_json and self.response_param is None
        if self.fast is not None:
            answer = handle.cache.peek_version(key)
            if answer is None:
                return MISS
            value, ttl_ms, version = answer
            result = self.hit(key, value, ttl_ms / 1000, kwargs)
            if result is not MISS and version:
                self._arm(epoch, handle, key, value, version, ttl_ms / 1000)
            return result
        answer = handle.cache.peek(key, values.memo.states if plain else None)
        if answer is None:
            return MISS
        value, ttl_ms = answer
        if type(value) is not bytes:
            return value
        return self.hit(key, value, ttl_ms / 1000, kwargs)

    def _arm(self, epoch: int, handle: Handle, key: bytes, value: bytes, version: int, ttl_s: float) -> None:
        """Arms the fast path with what the memo decoded `value` to, if it still holds that (a
        snapshot of its state: another thread may replace it meanwhile, never within it), unless
        HTTPCache's settings changed since `epoch` (the hit answered the old ones)."""
        honor = (self.request_no_cache or HTTPCache.request_no_cache) == "honor"
        if not value.startswith(RECORD):
            state = self.values.memo.states.get(key) if self.values.decode is decode_json else None
            if state is not None and state[0] == value:
                self.fast.arm_value(
                    epoch, handle.cache, key, version, state[1], self.request_param, self.response_param, honor,
                )
            return
        state = self.memo.states.get(key)
        if is_value_record(value) or state is None or state[0] != value:
            return
        template = state[1]
        fields, headers = template_parts(template)
        now = time.time()  # before cache_headers reads it: the headers change at the next whole second
        headers += cache_headers(ttl_s, self.per_user, True, template.handler_cache_control, template.stored_at)
        good_for = hit_headers_good_for(now, template.stored_at, ttl_s)
        self.fast.arm_response(
            epoch, handle.cache, key, version, type(template), fields, headers, good_for, self.request_param,
            self.response_param, honor, self.endpoint if self.learnable() else None, self.namespace,
        )

    def answered_stale(self, failure: BaseException) -> None:
        """A computation failed and a stale entry answered it (stale-if-error): said once per
        function at WARNING (then at DEBUG), since the caller saw no error."""
        level = logging.DEBUG if self.stale_warned else logging.WARNING
        self.stale_warned = True
        logger.log(level, "httpcache: %s raised %s: %s; answered with its stale entry (stale-if-error)",
                   self.where, type(failure).__name__, failure)

    def stale_if_error_ms(self, stale: bytes) -> int:
        """How stale (ms) an entry may be to answer a failed refresh: the decorator's window, else
        the stored response's own Cache-Control stale-if-error."""
        if self.stale[1] or not stale.startswith(RECORD) or is_value_record(stale):
            return self.stale[1]
        hit = self.memo.decode_record(stale)
        if hit is MISS or not hit.handler_cache_control:
            return 0
        _, sie = _httpcache.http_stale([(b"cache-control", hit.handler_cache_control.encode("latin-1"))])
        return (sie or 0) * 1000

    def learnable(self) -> bool:
        """Whether HTTPCache.attach() may answer this route's requests from its one key: a fixed
        key that no request header changes."""
        return self.keys.fixed is not None and not self.vary

    def key_of(self, args: tuple, kwargs: dict) -> bytes | None:
        """This call's key (its variant's, with vary), or None: it runs uncached."""
        built = self.keys.build(args, kwargs)  # [key] (one template), or None
        if built is None or not self.vary:
            return None if built is None else built[0]
        request = kwargs.get(self.request_param) if self.request_param is not None else None
        headers = request.scope.get("headers", []) if request is not None else []
        key = built[0] + b"\0vary" + _httpcache.http_variant(headers, self.vary)
        if len(key) > _httpcache.MAX_KEY_BYTES:
            self.keys._warn_once("vary", "a variant's key is over the key size limit; running uncached")
            return None
        return key

    def revalidates(self, kwargs: dict) -> bool:
        """Whether this call's request asks to revalidate (Cache-Control: no-cache, max-age=0)
        and the decorator (or init()) honours it: the entry is then invalidated first, and the
        call computes and stores as on a miss, fenced like any other."""
        if self.request_param is None:
            return False
        request = kwargs.get(self.request_param)
        if request is None or (self.request_no_cache or HTTPCache.request_no_cache) != "honor":
            return False
        return bool(request_flags(request.scope) & _httpcache.HTTP_REQUEST_NO_CACHE)

    def headers_before(self, kwargs: dict) -> int:
        """How many headers the injected response has before the function runs: those are its
        dependencies', for this request only (never stored)."""
        injected = self.injected(kwargs)
        return 0 if injected is None else len(injected.raw_headers)

    def computed(self, result: Any, kwargs: dict, before: int = 0) -> Computed:
        """A result as it is to be stored: the storage rules and the encoding. A route's result
        becomes the response FastAPI would send (``_routes``), stored with the headers its
        handler set and returned with its dependencies' too (`before`: how many of the injected
        response's headers are theirs); a plain one is encoded by its ResultCoder, with the
        status and headers its handler set on the injected response (``_codec.encode_value``).
        A response computed for a HEAD request (maybe without its body) is not stored. The
        caller then asks the TTL choice, for a storable result only (``Computed.expire_in``)."""
        injected = self.injected(kwargs)
        if not self._accepts(result):
            return Computed(result, injected, None, False, None)
        request = kwargs.get(self.request_param) if self.request_param is not None else None
        if request is not None and (
            request.scope.get("method") == "HEAD" or request_flags(request.scope) & _httpcache.HTTP_REQUEST_NO_STORE
        ):  # a HEAD response may lack its body; a no-store request's response is never stored
            return Computed(result, injected, None, False, None)
        route = route_of(request, self.endpoint) if request is not None and not is_response(result) else None
        if route is not None:
            response = response_for(route, result, injected, before)
            if response is None:  # FastAPI will refuse it too (a validation error), or it streams
                return Computed(result, injected, None, False, None)
            record = self._response_record(response)
            response.raw_headers.extend(injected.raw_headers[:before] if injected is not None else ())
            return self._with_windows(Computed(response, None, *record), response)
        if is_response(result):
            return self._with_windows(Computed(result, injected, *self._response_record(result)), result)
        data = self.values.encode(result)
        if data is None or injected is None:
            return Computed(result, injected, data, False, None)
        data, _, cap = encode_value(data, injected, self.per_user, self.where, self.vary)
        return Computed(result, injected, data, False, cap)

    def _with_windows(self, computed: Computed, response: Any) -> Computed:
        """A response's own Cache-Control stale-while-revalidate / stale-if-error (read by the
        core, ``httpcache_http_stale``) replace the decorator's windows for its entry."""
        if computed.data is not None:
            swr, sie = _httpcache.http_stale(response.raw_headers)
            if swr is not None or sie is not None:
                own = ((swr or 0) * 1000, (sie or 0) * 1000)
                computed.stale = own if own != _NO_WINDOWS else None
        return computed

    def windows(self, computed: Computed) -> tuple[int, int]:
        """The stale windows (ms) an entry is stored with: its response's own, else the decorator's."""
        return computed.stale if computed.stale is not None else self.stale

    def _response_record(self, response: Any) -> tuple[bytes | None, bool, int | None]:
        """(record, True, cap) of a response to store; with revalidate, the response being
        returned says no-cache as its record does."""
        record, cap = encode_response(response, self.per_user, self.where, self.revalidate, self.vary)
        if record is not None and self.revalidate:
            response.raw_headers.append((b"cache-control", b"no-cache"))
        return record, True, cap

    def _accepts(self, result: Any) -> bool:
        """condition(result); a condition that raises refuses (logged once), never fails the call."""
        if self.condition is None:
            return True
        try:
            return bool(self.condition(result))
        except Exception as e:  # noqa: BLE001 - the application's own code
            if not self.condition_warned:
                self.condition_warned = True
                logger.warning("httpcache: condition of %s raised %s: %s; result returned uncached",
                               self.where, type(e).__name__, e)
            return False

    def finished(self, computed: Computed, key: bytes, stored_ttl: int | None) -> Any:
        """The caller's result of a computation: a storable one gets its cache headers, for the
        entry's TTL when it was stored (`stored_ttl`), else for the TTL it would have had."""
        if computed.data is None:
            return computed.result
        if stored_ttl is not None:
            computed.ttl = stored_ttl
        if computed.is_response:
            ensure_etag(computed.result)
            set_cache_headers(computed.result, computed.ttl, self.per_user, hit=False)
            if stored_ttl is not None and self.learnable():
                note_response(self.endpoint, key, self.namespace)
        elif computed.injected is not None:
            set_cache_headers(computed.injected, computed.ttl, self.per_user, hit=False)
        return computed.result

    # -- def functions: the core's get_or_compute decides (single-flight, lock, store)

    def call_sync(self, args: tuple, kwargs: dict, key: Any = MISS) -> Any:
        """A call of a ``def`` function (`key`: its key, when the wrapper built it already)."""
        epoch = _EPOCH() if self.fast is not None else 0  # before the settings are read (see _arm)
        if key is MISS:
            key = self.key_of(args, kwargs)
        if key is None or not HTTPCache.enabled:
            return self.run(args, kwargs)
        tags = self.tags.build(args, kwargs) if self.tags is not None else []
        if tags is None:
            return self.run(args, kwargs)
        handle = HTTPCache.handle(self.namespace)
        if self.revalidates(kwargs):
            invalidate_sync(handle, [key])
        elif not tags:
            result = self.near(handle, key, kwargs, epoch)
            if result is not MISS:
                return result
        current = self.current
        current.call = handle, args, kwargs
        ticket = handle.ticket()
        try:
            value, ttl_ms, outcome, failure = handle.cache.get_or_compute(
                key, self.ttl_callback, self.compute_callback, tags, self.stale
            )
        finally:
            current.call = None  # the thread keeps no handle (HTTPCache.close() frees it) nor arguments
        if outcome == _STALE and failure is not None:
            self.answered_stale(failure)
        if outcome == _HIT or outcome == _COALESCED or outcome == _STALE:
            # COALESCED: a concurrent call on this handle computed it; this call's function did
            # not run, as on a hit. That says nothing about the backend (the value is shared even
            # when it could not be stored).
            if outcome == _HIT:
                handle.backend_ok(ticket)
            result = self.hit(key, value, ttl_ms / 1000, kwargs)
            if result is not MISS:
                return result
            computed = self._compute_sync(handle, args, kwargs)
            ttl_ms, outcome = self._overwrite(handle, key, computed, ticket, bool(tags))
        else:
            computed = current.computed  # any other outcome ran this call's compute callback
        current.computed = None  # the result is the caller's now: not kept alive by this thread
        return self._after_core(handle, key, computed, ttl_ms, outcome, ticket, failure)

    def _compute_for_core(self) -> tuple[bytes, bool]:
        """get_or_compute's compute callback (a miss), on the calling thread: computes the call
        call_sync left in `current` and leaves its Computed there."""
        current = self.current
        computed = self._compute_sync(*current.call)
        # Set after the function ran: a nested call of this function on this thread set its own.
        current.computed = computed
        if computed.data is None:
            return b"", False
        return (computed.data, True) if computed.stale is None else (computed.data, True, computed.stale)

    def _compute_sync(self, handle: Handle, args: tuple, kwargs: dict) -> Computed:
        before = self.headers_before(kwargs)
        computed = self.computed(self.run(args, kwargs), kwargs, before)
        if computed.data is not None:
            computed.expire_in(self.ttl.seconds_sync(self.where, handle.cache))
        return computed

    def _overwrite(self, handle: Handle, key: bytes, computed: Computed, ticket: int, tagged: bool) -> tuple[int, Any]:
        """Stores a computation over a stored value that does not decode: (ttl_ms, outcome). Not
        for a tagged call: a plain set has no generations read before computing to stamp."""
        ttl_ms, outcome = 0, None
        if computed.data is not None and not tagged:
            try:
                ttl_ms = handle.cache.set(key, computed.data, _httpcache.Policy.seconds(computed.ttl)) * 1000
                outcome = _STORED
            except ValueError:
                pass  # over max_value_bytes: logged by _after_core
            except _httpcache.Error as e:
                handle.backend_failed(ticket, "set", e.code, str(e))
        if outcome != _STORED:
            handle.count("uncached")  # the core counted a hit
        return ttl_ms, outcome

    def _after_core(
        self, handle: Handle, key: bytes, computed: Computed, ttl_ms: int, outcome: Any, ticket: int,
        failure: str | None = None,
    ) -> Any:
        """The result of a call whose function ran: tells Health what became of its store
        (`failure`: the backend's, when it failed) and logs a value too large to store."""
        if computed.data is not None:
            if outcome == _STORED:
                handle.backend_ok(ticket)
            elif len(computed.data) > handle.max_value_bytes():
                logger.warning("httpcache: result of %s not cached: over max_value_bytes", self.where)
            elif ttl_ms < 0:
                pass  # not stored because of fencing (an invalidation, another caller's lease): no outage
            elif outcome is not None:
                handle.backend_failed(ticket, "get or set", None, failure)
        return self.finished(computed, key, ttl_ms // 1000 if outcome == _STORED else None)

    # -- async def functions: non-blocking get and set; single-flight per loop here

    async def call_async(self, args: tuple, kwargs: dict, key: Any = MISS) -> Any:
        """A call of an ``async def`` function (`key`: as call_sync's)."""
        epoch = _EPOCH() if self.fast is not None else 0  # before the settings are read (see _arm)
        if key is MISS:
            key = self.key_of(args, kwargs)
        if key is None or not HTTPCache.enabled:
            return await self.run(args, kwargs)
        tags = self.tags.build(args, kwargs) if self.tags is not None else []
        if tags is None:
            return await self.run(args, kwargs)
        handle = HTTPCache.handle(self.namespace)
        revalidate = self.revalidates(kwargs)
        # HTTPCache.attach()'s GET of this request (taken after a revalidation's invalidation);
        # a tagged call reads its tags' generations itself.
        verdict = None if tags or revalidate else early_verdict(key, self.namespace)
        if verdict is None and not tags and not revalidate:
            result = self.near(handle, key, kwargs, epoch)
            if result is not MISS:
                return result
        loop = asyncio.get_running_loop()
        adapter = handle.adapter(loop)
        if revalidate:
            await invalidate_async(handle, loop, [key])
            verdict = None if tags else early_verdict(key, self.namespace)
        ticket = handle.ticket()
        lease, read = 0, None
        if verdict is None:
            status, value, ttl_ms = await adapter.start_get(loop, key, tags)
        else:
            (status, ttl_ms), value = verdict, None  # on a miss, ttl_ms is its lease number
        if status == _OK:
            handle.backend_ok(ticket)
            result = self.hit(key, value, ttl_ms / 1000, kwargs)
            if result is not MISS:
                return result
            backend_up = True  # an undecodable value: recompute and overwrite it
        elif status == _ENOTFOUND:
            handle.backend_ok(ticket)
            backend_up = True
            lease = ttl_ms  # on a miss: the lease number (see _asyncio.Flight)
            read = value  # a tagged miss: the tags' generations it read
        elif status == _ESTALE:  # a stale entry this call refreshes (the others are served it)
            handle.backend_ok(ticket)
            return await self._refresh(args, kwargs, handle, loop, adapter, key, tags, (value, ttl_ms), ticket)
        else:
            handle.backend_failed(ticket, "get", status, value)
            backend_up = False
        return await self._single_flight(args, kwargs, handle, loop, adapter, key, backend_up, ticket, (lease, tags, read))

    async def _single_flight(self, args, kwargs, handle, loop, adapter, key, backend_up, ticket, miss) -> Any:  # noqa: ANN001
        """Concurrent misses of one key on this loop share one computation, and its failure (the
        same exception). Fenced: a call joins a flight only with the same lease number (see
        _asyncio.Flight), so one arriving after an invalidation never gets a value computed
        before it. If the computing call declines to store or is too slow, each waiting call
        computes its own."""
        lease, tags, read = miss  # its lease number, tags and their generations read (see _asyncio.Flight)
        flights = adapter.flights
        leader = flights.get(key)
        if (leader is not None and not leader.void and leader.lease == lease and leader.read == read
                and (lease or leader.generation == adapter.generation)):
            return await self._join(leader, args, kwargs, handle, loop, adapter, key, ticket)
        if leader is not None:
            leader.void = True  # a newer lease (or an invalidation): that flight must not store
        flight = Flight(loop.create_future(), lease, adapter.generation, tags, read)
        flights[key] = flight
        shared = None
        try:
            computed = await self._compute_async(
                args, kwargs, handle, loop, adapter, key, ticket, flight if backend_up else None
            )
            shared = None if computed.data is None else computed
            return computed.result
        except Exception as e:
            if not flight.future.done():
                flight.future.set_exception(e)  # waiters raise the same exception
                flight.future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            if flights.get(key) is flight:
                del flights[key]
            if not flight.future.done():
                flight.future.set_result(shared)  # None (declined or canceled): waiters compute their own
            # A void flight's lease is gone (invalidated) and the context's record for the key may
            # be a newer flight's: releasing would delete that one's placeholder and unfence it.
            if lease > 0 and not flight.set_sent and not flight.void:
                await _release(adapter, loop, key)

    async def _refresh(self, args, kwargs, handle, loop, adapter, key, tags, stale, ticket) -> Any:  # noqa: ANN001
        """Recomputes a stale entry (the context holds its refresh lock: its set replaces the entry
        only while it is still the one read). A failure within stale-if-error is answered with
        the stale entry; the lock is given back whenever nothing is stored."""
        value, ttl_ms = stale
        started_ms = int(time.time() * 1000)
        # Registered as the key's flight, so that a miss of the key on this loop (after an
        # invalidation: a new lease) makes it void: its set would be fenced with that lease.
        flight = Flight(loop.create_future(), 0, adapter.generation, tags)
        flights = adapter.flights
        if flights.get(key) is not None:
            flights[key].void = True
        flights[key] = flight
        try:
            return (await self._compute_async(args, kwargs, handle, loop, adapter, key, ticket, flight)).result
        except Exception as e:
            # Measured now; within stale-while-revalidate the refresher's caller is answered as
            # the others were (RFC 5861 revalidates in the background: no client sees it).
            stale_ms = int(time.time() * 1000) - started_ms - ttl_ms
            if stale_ms <= self.stale_if_error_ms(value) or -ttl_ms <= self.stale[0]:
                result = self.hit(key, value, -stale_ms / 1000, kwargs)
                if result is not MISS:
                    self.answered_stale(e)
                    return result
            raise
        finally:
            if flights.get(key) is flight:
                del flights[key]
            if not flight.future.done():
                flight.future.set_result(None)  # nobody joins a refresh; a waiter would compute its own
            if not flight.set_sent and not flight.void:  # void: the key's record is a newer miss's
                await _release(adapter, loop, key)

    async def _join(self, leader, args, kwargs, handle, loop, adapter, key, ticket) -> Any:  # noqa: ANN001
        """A call that found its key's flight under its own lease: served what the leader
        computed, or, when the leader has nothing to share (a result not to be stored, a
        canceled call) or is too slow, computes its own, not stored: the lease is the leader's."""
        try:
            shared = await asyncio.wait_for(asyncio.shield(leader.future), HTTPCache.option("singleflight_wait_ms") / 1000)
        except asyncio.TimeoutError:
            shared = None
        if shared is not None:
            result = self.serve(key, shared.data, shared.ttl, kwargs)
            if result is not MISS:
                handle.count("coalesced")
                return result
        return (await self._compute_async(args, kwargs, handle, loop, adapter, key, ticket, None)).result

    async def _compute_async(self, args, kwargs, handle, loop, adapter, key, ticket, flight) -> Computed:  # noqa: ANN001
        """Runs the function and stores what it computed through `flight`, the flight this call
        leads on a backend that is up (None: not stored). A flight made void while computing
        stores nothing either (fencing)."""
        before = self.headers_before(kwargs)
        computed = self.computed(await self.run(args, kwargs), kwargs, before)
        if computed.data is not None:
            computed.expire_in(await self.ttl.seconds_async(self.where, handle.cache))
        stored_ttl = None
        if computed.data is not None and flight is not None and not flight.void:
            stored_ttl = await self._store_async(handle, loop, adapter, key, computed, ticket, flight)
        if stored_ttl is None:
            handle.count("uncached")
        self.finished(computed, key, stored_ttl)
        return computed

    async def _store_async(self, handle, loop, adapter, key, computed, ticket, flight) -> int | None:  # noqa: ANN001
        """The TTL the backend stored `computed` with, fenced by the flight's lease, or None."""
        flight.set_sent = True
        try:
            status, ttl_s = await adapter.set(
                loop, key, computed.data, _httpcache.Policy.seconds(computed.ttl), flight.tags, self.windows(computed)
            )
        except ValueError as e:  # value over max_value_bytes (counted by the core)
            flight.set_sent = False  # refused before it was sent: the lease is still ours
            logger.warning("httpcache: result of %s not cached: %s", self.where, e)
            computed.data = None  # no cache headers; waiters compute their own
            return None
        if status == _OK:
            return ttl_s
        if status != _ENOTFOUND:  # ENOTFOUND: the lease was invalidated while computing (fencing)
            handle.backend_failed(ticket, "set", status, ttl_s)  # ttl_s: the error message
        return None


async def _release(adapter: Any, loop: Any, key: bytes) -> None:
    """The lease of a flight that stored nothing is given back (see LoopAdapter.release), so no
    placeholder outlives the call; a failure to do so only leaves it to expire."""
    try:
        await adapter.release(loop, key)
    except Exception:  # noqa: BLE001 - the context closed, the backend failed: it expires by itself
        pass
