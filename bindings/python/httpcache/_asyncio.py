# SPDX-License-Identifier: MIT
"""The asyncio adapter: the C library's non-blocking calls driven by the running event loop.

Why this design: a cached call on Redis must never block the loop, and a thread hop per call
(run_in_executor around the blocking API) costs a thread wake-up and a cross-thread loop wake-up
on every call. Instead, as hiredis's own event-loop adapters do, the C library owns one
non-blocking connection per (handle, loop), tells us which descriptor to watch and for what
(the watch callback -> ``loop.add_reader``/``add_writer``), and we call
``AsyncContext.process(events)`` when the loop sees it ready. Replies are parsed in C++ on the
loop's thread and each completion resolves its asyncio future right there: no thread, no
``call_soon_threadsafe``. Requests from concurrent tasks are pipelined on the one connection.
``loop.call_later`` with ``timeout_ms()`` fails requests stuck on a stalled server (ETIMEOUT)
instead of leaving their tasks waiting forever.

On ``memory://`` and ``lmdb://`` (the embedded stores) a request completes inside the call that
starts it: the future is already done when ``get()`` awaits it, and awaiting a done future does
not yield to the loop, so an embedded hit costs one future and no loop iteration (no timer is
armed either).
"""

from __future__ import annotations

import weakref
from typing import Any

from . import _httpcache

_READ = _httpcache.EV_READ
_WRITE = _httpcache.EV_WRITE
_ENOTFOUND = _httpcache.ENOTFOUND
_ESTALE = _httpcache.ESTALE


class _Watcher:
    """The watch callback: maps the library's interest in a descriptor to add/remove_reader and
    add/remove_writer. Holds only weak references, so the context -> watcher reference makes no
    cycle (the pybind11 context is invisible to the garbage collector).

    Writes are optimistic on an established connection (one the library already reads from):
    the socket is almost always writable, so instead of registering a writer (two epoll_ctl
    calls and a poll round per request) the write is tried on the next loop iteration
    (call_soon). Only if the library still wants to write after that (kernel buffer full) is
    the descriptor registered with add_writer. A connection still connecting always goes
    through add_writer, which is how its completion is detected. A lone request never gets
    here: the core's session writes it inside the call that starts it (AsyncContext.get/set/
    invalidate) and tells this watcher only the net change of interest, usually none."""

    __slots__ = ("loop_ref", "ctx_ref", "watched", "writers", "flushing")

    def __init__(self, loop: Any) -> None:
        self.loop_ref = weakref.ref(loop)
        self.ctx_ref: Any = None
        self.watched: dict[int, int] = {}  # fd -> events the library wants
        self.writers: set[int] = set()  # fds registered with add_writer
        self.flushing: set[int] = set()  # fds with an optimistic write scheduled

    def attach(self, ctx: Any) -> None:
        """Starts serving `ctx`. The library may call the watch callback while the context is
        being opened (a Redis Cluster session asks for its epoll descriptor right away, and never
        again), before the context object exists: that interest is only recorded by __call__,
        and registered with the loop here."""
        self.ctx_ref = weakref.ref(ctx)
        early, self.watched = self.watched, {}
        for fd, events in early.items():
            self(fd, events)

    def __call__(self, fd: int, events: int) -> None:
        old = self.watched.pop(fd, 0)
        if events:
            self.watched[fd] = events
        loop = self.loop_ref()
        ctx = self.ctx_ref() if self.ctx_ref is not None else None
        if ctx is None and self.ctx_ref is None:
            return  # still inside AsyncContext(): attach() registers it
        if loop is None or loop.is_closed():
            self.writers.discard(fd)
            self.flushing.discard(fd)
            return
        if events & _READ and not old & _READ and ctx is not None:
            loop.add_reader(fd, ctx.process, _READ)
        elif old & _READ and not events & _READ:
            loop.remove_reader(fd)
        if events & _WRITE and not old & _WRITE and ctx is not None:
            if old & _READ:
                if fd not in self.flushing and fd not in self.writers:
                    self.flushing.add(fd)
                    loop.call_soon(self._flush, fd)
            elif fd not in self.writers:
                loop.add_writer(fd, ctx.process, _WRITE)
                self.writers.add(fd)
        elif old & _WRITE and not events & _WRITE and fd in self.writers:
            loop.remove_writer(fd)
            self.writers.discard(fd)

    def _flush(self, fd: int) -> None:
        self.flushing.discard(fd)
        ctx = self.ctx_ref() if self.ctx_ref is not None else None
        if ctx is None or not self.watched.get(fd, 0) & _WRITE or fd in self.writers:
            return
        ctx.process(_WRITE)
        loop = self.loop_ref()
        if self.watched.get(fd, 0) & _WRITE and fd not in self.writers and loop is not None and not loop.is_closed():
            loop.add_writer(fd, ctx.process, _WRITE)  # the buffer is full: wait for writability
            self.writers.add(fd)


class Flight:
    """One computation of a key on this loop (``_cached_call.CachedCall._single_flight``): the
    future its waiters await (the leader's ``Computed``, None, or its exception), the lease it
    computes under and the loop's invalidation generation when it started.

    Fencing: on a miss the core's session takes the key's lease and reports its number (ttl_ms
    of the miss: > 0 ours, < 0 another holder's, 0 none). A caller may join a flight only with
    the same lease number; a miss that took a *new* lease for a key whose flight holds an older
    one means an invalidation (from any process) removed that lease: the flight is made void at
    once, inside the completion (``_SharedRead.set_result``), before any task runs, so its
    leader never sends a set the session would fence with the new lease."""

    __slots__ = ("future", "lease", "generation", "void", "set_sent", "tags", "read")

    def __init__(
        self, future: Any, lease: int, generation: int, tags: list[bytes] | None = None, read: bytes | None = None,
    ) -> None:
        self.future = future
        self.lease = lease
        self.generation = generation
        self.tags = tags or []  # its set stamps the value with the generations its miss read
        self.read = read  # those generations (opaque): a miss that read others must not join
        self.void = False
        self.set_sent = False  # a set used (or gave up) the lease: nothing to release


class _SharedRead:
    """The completion target of one GET, shared by every caller of that key who arrives while it
    is in flight: the library calls done()/set_result() on it (as on a future), and it resolves
    each caller's own future at once, in the same loop pass, then leaves the table of reads."""

    __slots__ = ("table", "shared_as", "key", "waiters", "finished", "flights", "reread")

    def __init__(self, table: dict, shared_as: Any, first: Any, flights: dict, key: bytes, reread: Any) -> None:
        self.table = table
        self.shared_as = shared_as  # its entry in the table: the key, with the tags if any
        self.key = key
        self.waiters = [first]
        self.finished = False
        self.flights = flights
        self.reread = reread  # reread(future): the same GET again, for that future alone

    def done(self) -> bool:
        return self.finished

    def set_result(self, result: Any) -> None:
        self.finished = True
        if self.table.get(self.shared_as) is self:
            del self.table[self.shared_as]
        if result[0] == _ENOTFOUND and result[2] > 0:
            flight = self.flights.get(self.key)
            if flight is not None and flight.lease != result[2]:
                flight.void = True  # a new lease: the old one was invalidated (see Flight)
        refresher = result[0] == _ESTALE
        for fut in self.waiters:
            if fut.done():
                continue
            if refresher or result[0] != _ESTALE:
                fut.set_result(result)
                refresher = False
            else:  # one caller refreshes a stale entry; each other one asks for itself (see reread)
                self.reread(fut)


class LoopAdapter:
    """One AsyncContext of one cache handle, for one event loop (its thread only)."""

    __slots__ = ("_loop_ref", "_ctx", "_watcher", "_timer", "flights", "reads", "generation", "__weakref__")

    def __init__(self, cache: _httpcache.Cache, loop: Any) -> None:
        self._loop_ref = weakref.ref(loop)
        watcher = _Watcher(loop)
        self._ctx = _httpcache.AsyncContext(cache, watcher)
        watcher.attach(self._ctx)
        self._watcher = watcher
        self._timer = False
        # GETs in flight: key -> (the future the library resolves, the callers' futures). Callers
        # of a key already being read share that reply (each decodes its own copy) instead of
        # sending one more GET: N concurrent hits of one key cost one round trip.
        self.reads: dict[bytes, _SharedRead] = {}
        # Single-flight of async decorated calls on this loop (see _cached_call): key -> Flight.
        self.flights: dict[bytes, Flight] = {}
        # Invalidations through this adapter: a flight started before one is joined by nobody
        # who arrives after it (the lease numbers tell the same for invalidations from anywhere
        # the backend is reachable; this covers the rest).
        self.generation = 0

    def _reread(self, loop: Any, key: bytes, tags: list[bytes] | None, fut: Any) -> None:
        """A GET of `key` for `fut` alone: a waiter of a shared read that found a stale entry this
        context refreshes is answered by the core as any other caller would be (the stale value
        within stale-while-revalidate, else ESTALE: compute, unstored)."""
        self._ctx.get(key, fut, tags or [])
        if not fut.done():
            self._arm(loop)

    def _arm(self, loop: Any) -> None:
        # One timer for the earliest deadline; it re-arms itself while requests are pending. Only
        # a flag is kept, never the TimerHandle: it references the loop, and the adapter is the
        # value of a WeakKeyDictionary keyed by that loop, so holding it would keep the loop,
        # the context and its connection alive forever once the loop is closed.
        if not self._timer:
            t = self._ctx.timeout_ms()
            if t >= 0:
                self._timer = True
                loop.call_later(t / 1000.0, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = False
        self._ctx.process(0)
        loop = self._loop_ref()
        if loop is not None and not loop.is_closed():
            self._arm(loop)

    def start_get(self, loop: Any, key: bytes, tags: list[bytes] | None = None) -> Any:
        """Starts a GET of `key`; returns a future of (status, value, remaining ttl_ms), status OK
        (value: bytes), ENOTFOUND (None), EBACKEND or ETIMEOUT (value: the error message). Callers await the future itself: no
        coroutine frame of ours per suspended request."""
        mine = loop.create_future()  # each caller awaits its own: cancelling one cancels only it
        shared_as = (key, *tags) if tags else key  # a tagged read is shared only with the same tags
        shared = self.reads.get(shared_as)
        if shared is not None:
            shared.waiters.append(mine)
            return mine
        read = _SharedRead(self.reads, shared_as, mine, self.flights, key, lambda fut: self._reread(loop, key, tags, fut))
        self._ctx.get(key, read, tags or [])  # a lone request is written inside the call (by the core session)
        if mine.done():  # memory://, lmdb://: completed inside the call, nothing to share
            return mine
        self.reads[shared_as] = read
        self._arm(loop)
        return mine

    async def set(
        self, loop: Any, key: bytes, value: bytes, policy: _httpcache.Policy, tags: list[bytes] | None = None,
        stale: tuple[int, int] = (0, 0),
    ) -> tuple[int, int]:
        """(status, ttl seconds applied; on EBACKEND/ETIMEOUT the error message instead). ValueError
        for a bad key/policy or an oversized value. With tags: stamped with the generations this
        context's miss of the key read (ENOTFOUND without one)."""
        fut = loop.create_future()
        self._ctx.set(key, value, policy, fut, tags or [], stale)
        if not fut.done():
            self._arm(loop)
        return await fut

    async def release(self, loop: Any, key: bytes) -> None:
        """Gives up the lease this context's miss of `key` took, when nothing will be stored: the
        placeholder is deleted if still there. Best effort: a failure only leaves it to expire."""
        fut = loop.create_future()
        self._ctx.release(key, fut)
        if not fut.done():
            self._arm(loop)
        await fut

    async def invalidate(self, loop: Any, keys: list[bytes]) -> tuple[int, int]:
        """(status, keys deleted; on EBACKEND/ETIMEOUT the error message instead)."""
        self.generation += 1
        gone = set(keys)
        for shared_as, read in list(self.reads.items()):
            if read.key in gone:
                del self.reads[shared_as]  # a GET sent before this is shared with nobody arriving after
        for key in keys:
            flight = self.flights.get(key)
            if flight is not None:
                flight.void = True  # its computation began before the invalidation: never stored
        fut = loop.create_future()
        self._ctx.invalidate(keys, fut)
        if not fut.done():
            self._arm(loop)
        return await fut

    async def invalidate_tags(self, loop: Any, tags: list[bytes]) -> tuple[int, Any]:
        """(status, 0; on EBACKEND/ETIMEOUT the error message instead). A tag may cover any key:
        every read in flight and every flight of this loop is void for later callers."""
        self.generation += 1
        self.reads.clear()
        for flight in self.flights.values():
            flight.void = True
        fut = loop.create_future()
        self._ctx.invalidate_tags(tags, fut)
        if not fut.done():
            self._arm(loop)
        return await fut

    def __del__(self) -> None:
        # Dropped with its handle (HTTPCache.init() again) or its loop: the loop's reader
        # registration would otherwise keep the context and its connection alive.
        try:
            self.close()
        except Exception:  # a finalizer must not raise
            pass

    def close(self) -> None:
        # A timer still scheduled finds the context closed: process() is then a no-op.
        self._ctx.close()
