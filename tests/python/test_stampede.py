# SPDX-License-Identifier: MIT
"""The cross-process stampede lock (lock_ttl_ms) from Python, on one Redis server and on the
cluster: 4 processes x 50 concurrent callers compute a cold key exactly once.

The lock is the core's, taken by the blocking get_or_compute, so these callers are threads calling
a `def` function. `async def` functions do not take it: the non-blocking path never waits on the
backend, and its single-flight is per event loop (test_decorators.py)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

import stampede_worker
from httpcache import HTTPCache, cache

PROCESSES = 4
CALLERS = 50


def test_four_processes_of_fifty_callers_compute_a_cold_key_once(redis_backend, redis_backend_client, namespace):
    outcomes, computations, exits = stampede_worker.run_processes(redis_backend, namespace, PROCESSES, CALLERS, 0.5)
    assert exits == [0] * PROCESSES
    values = [v for vs, _ in outcomes for v in vs]
    assert len(values) == PROCESSES * CALLERS
    assert values == [{"answer": 42}] * (PROCESSES * CALLERS)  # every caller got the value
    assert computations == 1  # computed once across the 4 processes
    totals = {k: sum(st[k] for _, st in outcomes) for k in ("stores", "hits", "coalesced", "uncached", "errors")}
    assert totals["stores"] == 1 and totals["uncached"] == 0 and totals["errors"] == 0, totals
    # The 199 others: waited for the computing thread of their process, or for the lock holder's
    # stored value, or (arriving late) found it stored.
    assert totals["hits"] + totals["coalesced"] == PROCESSES * CALLERS - 1, totals
    assert redis_backend_client.get(f"{namespace}:cold") == b'{"answer":42}'
    assert redis_backend_client.exists(f"httpcache-lock!{namespace}:cold") == 0  # released


LOCK_TTL_MS = 3000


def test_a_crashed_lock_holder_blocks_nobody_past_the_lock_ttl(
    redis_backend, redis_backend_client, namespace, request, capsys
):
    """A real holder process, killed (SIGKILL) while it computes under the lock: its lock carries
    the lock_ttl_ms the library set, nobody releases it, and another process computes once it
    has expired (not before, and not only when its own singleflight_wait_ms runs out)."""
    lock = f"httpcache-lock!{namespace}:orphan"
    ctx = multiprocessing.get_context("spawn")
    computing = ctx.Event()
    holder = ctx.Process(target=stampede_worker.hold_lock, args=(redis_backend, namespace, LOCK_TTL_MS, computing))
    holder.start()
    request.addfinalizer(holder.kill)
    assert computing.wait(60), "the holder never started computing"
    pttl_held = redis_backend_client.pttl(lock)
    token = redis_backend_client.get(lock)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    assert holder.exitcode == -signal.SIGKILL
    pttl_orphaned = redis_backend_client.pttl(lock)
    orphaned_at = time.monotonic()
    # The expiry is the library's lock_ttl_ms (read at most a loaded second after it was set),
    # and the dead holder's lock outlives it.
    assert LOCK_TTL_MS - 1000 < pttl_held <= LOCK_TTL_MS, pttl_held
    assert 0 < pttl_orphaned <= pttl_held and redis_backend_client.get(lock) == token, pttl_orphaned

    HTTPCache.init(redis_url=redis_backend, namespace=namespace, lock_ttl_ms=LOCK_TTL_MS, singleflight_wait_ms=20_000)
    request.addfinalizer(HTTPCache.close)
    calls = []

    @cache(key="orphan", ttl_in_seconds=60)
    def f():
        calls.append(time.monotonic() - orphaned_at)
        assert redis_backend_client.get(lock) not in (None, token)  # the lock is ours now
        return "mine"

    assert f() == "mine"
    waited = time.monotonic() - orphaned_at
    with capsys.disabled():
        print(f"\ncrashed holder on {redis_backend}: lock PTTL {pttl_held} ms when held, {pttl_orphaned} ms "
              f"after SIGKILL; the next process computed {calls[0] * 1000:.0f} ms later")
    assert len(calls) == 1
    assert calls[0] >= pttl_orphaned / 1000 - 0.05, calls  # not before the orphaned lock expired
    # Liveness: well before this caller's own 20 s singleflight_wait_ms, i.e. because it expired.
    assert waited < 10, waited
    assert redis_backend_client.get(f"{namespace}:orphan") == b'"mine"'
    assert redis_backend_client.exists(lock) == 0  # released by its new holder
    assert f() == "mine" and len(calls) == 1


def test_lock_wait_is_bounded_by_singleflight_wait(redis_backend, redis_backend_client, namespace, request):
    HTTPCache.init(redis_url=redis_backend, namespace=namespace, lock_ttl_ms=5000, singleflight_wait_ms=300)
    request.addfinalizer(HTTPCache.close)

    @cache(key="held", ttl_in_seconds=60)
    def f():
        return "computed anyway"

    # A live holder that takes too long (its lock lasts 60 s): we wait 300 ms, then compute.
    redis_backend_client.set(f"httpcache-lock!{namespace}:held", "slow-holder", px=60_000)
    start = time.monotonic()
    assert f() == "computed anyway"
    assert 0.25 <= time.monotonic() - start < 2.0
    assert redis_backend_client.get(f"httpcache-lock!{namespace}:held") == b"slow-holder"  # not ours to delete


@pytest.mark.parametrize("bad", [-1, 2**32, "100", 1.5, True])
def test_lock_ttl_ms_is_checked(bad):
    with pytest.raises(ValueError) as info:
        HTTPCache.init(lock_ttl_ms=bad)
    assert "lock_ttl_ms" in str(info.value)
