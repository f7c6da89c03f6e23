# SPDX-License-Identifier: MIT
"""Fencing (issue 13, findings 7, 12 and 16) through the decorators, on memory://, one Redis server
and the cluster.

- A slow reader that read the "database" before a writer's update and ``@invalidate_cache`` never
  stores its old value after the invalidation, and a caller arriving after the invalidation never
  receives it (the in-process single-flight included): ``def`` functions in threads, ``async def``
  ones on one loop, and a reader in another process (Redis).
- A computation that calls its own cached function on the same key does not wait for itself.
- 50 concurrent callers of a key whose computation raises run it once and all get its exception.

HTTPCACHE_TEST_FENCING_ROUNDS scales the 1,000 rounds down."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time

import pytest

from httpcache import HTTPCache, cache, invalidate_cache

ROUNDS = int(os.environ.get("HTTPCACHE_TEST_FENCING_ROUNDS") or 1000)


class Item:
    """What the cached functions take: the key is its id."""

    def __init__(self, id: int) -> None:  # noqa: A002
        self.id = id


def _init(url: str, namespace: str) -> None:
    HTTPCache.init(redis_url=url, namespace=namespace, singleflight_wait_ms=5000, breaker_failures=1000)


# ---- finding 7: def functions, threads ----


def test_a_slow_reader_never_undoes_an_invalidation_threads(backend, namespace, caplog):
    _init(backend, namespace)
    db = {}
    read, release = threading.Event(), threading.Event()

    @cache(key="item:{}", obj="item", obj_attr="id", ttl_in_seconds=60)
    def read_item(item: Item, slow: bool = False) -> dict:
        v = db[item.id]
        if slow:
            read.set()
            release.wait(5)
        return {"v": v}

    @invalidate_cache(key="item:{}", obj="item", obj_attr="id")
    def write_item(item: Item) -> None:
        db[item.id] = "new"

    stale_served = stale_stored = 0
    for i in range(ROUNDS):
        db[i] = "old"
        read.clear()
        release.clear()
        got: dict = {}
        reader = threading.Thread(target=lambda: got.__setitem__("reader", read_item(Item(i), True)))
        reader.start()
        assert read.wait(5)
        write_item(Item(i))  # the writer: update, invalidated before and after
        late = threading.Thread(target=lambda: got.__setitem__("late", read_item(Item(i))))
        late.start()
        late.join(0.02)  # unfenced, it joins the reader's flight and waits here
        release.set()
        reader.join()
        late.join()
        assert got["reader"] == {"v": "old"}  # it began before the write: its own result
        stale_served += got["late"] != {"v": "new"}
        stale_stored += read_item(Item(i)) != {"v": "new"}  # what the backend holds now, if anything
    print(f"{backend} threads: {ROUNDS} rounds, {stale_served} stale served, {stale_stored} stale stored")
    assert (stale_served, stale_stored) == (0, 0)
    assert "unavailable" not in caplog.text  # a refused store is not an outage


# ---- finding 7: async def functions, one loop ----


def test_a_slow_reader_never_undoes_an_invalidation_asyncio(backend, namespace):
    _init(backend, namespace)
    db = {}

    async def main() -> tuple[int, int]:
        read, release = asyncio.Event(), asyncio.Event()

        @cache(key="item:{}", obj="item", obj_attr="id", ttl_in_seconds=60)
        async def read_item(item: Item, slow: bool = False) -> dict:
            v = db[item.id]
            if slow:
                read.set()
                await asyncio.wait_for(release.wait(), 5)
            return {"v": v}

        @invalidate_cache(key="item:{}", obj="item", obj_attr="id")
        async def write_item(item: Item) -> None:
            db[item.id] = "new"

        stale_served = stale_stored = 0
        for i in range(ROUNDS):
            db[i] = "old"
            read.clear()
            release.clear()
            reader = asyncio.ensure_future(read_item(Item(i), True))
            await asyncio.wait_for(read.wait(), 5)
            await write_item(Item(i))
            late = asyncio.ensure_future(read_item(Item(i)))
            await asyncio.wait([late], timeout=0.005)  # unfenced, it joins the reader's flight
            release.set()
            assert await reader == {"v": "old"}
            stale_served += await late != {"v": "new"}
            stale_stored += await read_item(Item(i)) != {"v": "new"}
        return stale_served, stale_stored

    stale_served, stale_stored = asyncio.run(main())
    print(f"{backend} asyncio: {ROUNDS} rounds, {stale_served} stale served, {stale_stored} stale stored")
    assert (stale_served, stale_stored) == (0, 0)


# ---- finding 7: the reader in another process ----


def _reader_process(url, namespace, rounds, db, go, read, release, finished) -> None:  # noqa: ANN001
    _init(url, namespace)

    @cache(key="item:{}", obj="item", obj_attr="id", ttl_in_seconds=60)
    def read_item(item: Item) -> dict:
        v = db.value
        read.set()
        release.wait(10)
        return {"v": v}

    for i in range(rounds):
        if not go.wait(30):
            raise SystemExit(3)
        go.clear()
        read_item(Item(i))
        finished.set()


def test_a_slow_reader_in_another_process_never_undoes_an_invalidation(redis_backend, namespace, caplog):
    rounds = max(ROUNDS // 4, 10)
    ctx = multiprocessing.get_context("spawn")
    db = ctx.Value("i", 0)
    go, read, release, finished = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    proc = ctx.Process(
        target=_reader_process, args=(redis_backend, namespace, rounds, db, go, read, release, finished)
    )
    proc.start()
    _init(redis_backend, namespace)

    @cache(key="item:{}", obj="item", obj_attr="id", ttl_in_seconds=60)
    def read_item(item: Item) -> dict:
        return {"v": db.value}

    @invalidate_cache(key="item:{}", obj="item", obj_attr="id")
    def write_item(item: Item) -> None:
        db.value = 2

    stale_served = stale_stored = 0
    try:
        for i in range(rounds):
            db.value = 1
            finished.clear()
            go.set()
            assert read.wait(30)  # the other process read the database and is "rendering"
            read.clear()
            write_item(Item(i))
            stale_served += read_item(Item(i)) != {"v": 2}
            release.set()
            assert finished.wait(30)  # it returned (and stored, or not)
            release.clear()
            stale_stored += read_item(Item(i)) != {"v": 2}
    finally:
        release.set()
        proc.join(30)
    print(f"{redis_backend} processes: {rounds} rounds, {stale_served} stale served, {stale_stored} stale stored")
    assert proc.exitcode == 0
    assert (stale_served, stale_stored) == (0, 0)
    assert "unavailable" not in caplog.text  # computing beside another process's lease is no outage


# ---- finding 12: re-entrancy ----


def test_a_computation_calling_its_own_key_does_not_wait_for_itself(backend, namespace):
    HTTPCache.init(redis_url=backend, namespace=namespace, singleflight_wait_ms=3000)

    @cache(key="self", ttl_in_seconds=60)
    def me(depth: int = 1) -> dict:
        return {"inner": me(depth - 1)} if depth else {"leaf": True}

    t0 = time.monotonic()
    assert me() == {"inner": {"leaf": True}}
    assert time.monotonic() - t0 < 1.0  # not the 3 s single-flight wait


# ---- finding 16: a failed computation is shared with its waiters ----

CALLERS = 50


class Boom(Exception):
    pass


def test_waiters_of_a_failed_computation_get_its_exception_threads(backend, namespace):
    _init(backend, namespace)
    runs = []
    arrived = threading.Semaphore(0)
    start = threading.Barrier(CALLERS)

    @cache(key="boom", ttl_in_seconds=60)
    def boom() -> dict:
        runs.append(1)
        time.sleep(0.3)  # the others arrive meanwhile
        raise Boom("the database is down")

    errors: list = [None] * CALLERS

    def call(n: int) -> None:
        start.wait()
        arrived.release()
        try:
            boom()
        except Boom as e:
            errors[n] = e

    threads = [threading.Thread(target=call, args=(n,)) for n in range(CALLERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{backend} threads: {CALLERS} callers, the failing computation ran {len(runs)} times")
    assert all(e is errors[0] for e in errors) and isinstance(errors[0], Boom)
    assert len(runs) == 1


def test_waiters_of_a_failed_computation_get_its_exception_asyncio(backend, namespace):
    _init(backend, namespace)
    runs = []

    @cache(key="boom", ttl_in_seconds=60)
    async def boom() -> dict:
        runs.append(1)
        await asyncio.sleep(0.05)
        raise Boom("the database is down")

    async def main() -> list:
        return await asyncio.gather(*(boom() for _ in range(CALLERS)), return_exceptions=True)

    errors = asyncio.run(main())
    print(f"{backend} asyncio: {CALLERS} callers, the failing computation ran {len(runs)} times")
    assert all(e is errors[0] for e in errors) and isinstance(errors[0], Boom)
    assert len(runs) == 1


# ---- the lease of a computation that stores nothing is given back ----


@pytest.mark.parametrize("outcome", ["raises", "not storable", "stored"])
def test_no_placeholder_outlives_an_async_call(redis_backend, redis_backend_client, namespace, outcome):
    """A miss takes the key's lease (a placeholder under the key); a call that stores nothing
    deletes it before returning, so other clients (redis-cli, a service reading the key) never
    see the placeholder bytes, and the next caller need not wait for the lease to expire."""
    _init(redis_backend, namespace)

    @cache(key="released", ttl_in_seconds=60)
    async def f():
        if outcome == "raises":
            raise Boom("failed")
        return {1, 2} if outcome == "not storable" else {"ok": True}

    async def main():
        try:
            return await f()
        except Boom:
            return None

    asyncio.run(main())
    raw = redis_backend_client.get(f"{namespace}:released")
    if outcome == "stored":
        assert raw is not None and b'"ok"' in raw, raw
    else:
        assert raw is None, raw


def test_a_voided_flight_leaves_the_newer_lease_alone(redis_backend, redis_backend_client, namespace):
    """A leader whose lease an invalidation from elsewhere removed (a raw DEL) is voided by the
    next miss, which takes a new lease. When the voided leader finishes it must not release:
    the context's lease record is the newer flight's, and releasing it would delete the new
    placeholder and turn the new leader's store into a plain SET that a second invalidation
    during its computation could not stop."""
    _init(redis_backend, namespace)
    full = f"{namespace}:voided"
    started = []

    @cache(key="voided", ttl_in_seconds=60)
    async def f(delay: float) -> dict:
        started.append(delay)
        await asyncio.sleep(delay)
        return {"computed_after": len(started)}

    async def main() -> None:
        a = asyncio.create_task(f(0.3))
        await asyncio.sleep(0.1)
        redis_backend_client.delete(full)  # invalidation 1, by another client: A's lease is gone
        await asyncio.sleep(0.05)
        b = asyncio.create_task(f(0.6))  # a new lease: A's flight is void
        await a
        await asyncio.sleep(0.15)
        redis_backend_client.delete(full)  # invalidation 2, while B computes
        await b

    asyncio.run(main())
    assert started == [0.3, 0.6]
    assert redis_backend_client.get(full) is None  # B's store was refused: fenced by its own lease
