# SPDX-License-Identifier: MIT
"""A process of the cross-process stampede test (test_stampede.py), started with the `spawn`
method: it imports only httpcache, so it starts fast and shares nothing with pytest's process."""

from __future__ import annotations

import multiprocessing
import threading
import time

from httpcache import HTTPCache, cache


def run(url: str, namespace: str, callers: int, compute_s: float, computations, ready, results) -> None:
    """`callers` threads call one cold cached function at once, once every process is `ready`
    (a multiprocessing.Barrier); each computation increments `computations` (a shared Value).
    Puts (values returned, HTTPCache.stats()) on `results`."""
    HTTPCache.init(redis_url=url, namespace=namespace, lock_ttl_ms=10_000, singleflight_wait_ms=20_000)

    @cache(key="cold", ttl_in_seconds=60)
    def cold():
        with computations.get_lock():
            computations.value += 1
        time.sleep(compute_s)
        return {"answer": 42}

    start = threading.Barrier(callers)
    values: list = []

    def call() -> None:
        start.wait()
        try:
            values.append(cold())
        except BaseException as e:  # reported, not raised: the test counts it as a failure
            values.append(repr(e))

    threads = [threading.Thread(target=call) for _ in range(callers)]
    ready.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((values, HTTPCache.stats()))


def hold_lock(url: str, namespace: str, lock_ttl_ms: int, computing) -> None:
    """A lock holder that never finishes: calls a cold cached function with the cross-process lock
    on (lock_ttl_ms), sets `computing` (a multiprocessing.Event) once inside the computation,
    which holds the lock, then sleeps there until the test kills the process (SIGKILL)."""
    HTTPCache.init(redis_url=url, namespace=namespace, lock_ttl_ms=lock_ttl_ms, singleflight_wait_ms=60_000)

    @cache(key="orphan", ttl_in_seconds=60)
    def orphan():
        computing.set()
        time.sleep(600)
        return "never"

    orphan()


def run_processes(url: str, namespace: str, processes: int, callers: int, compute_s: float):
    """Runs run() in `processes` spawned processes at once and waits for them: (each process's
    (values, stats), how many computations ran in all, each process's exit code)."""
    ctx = multiprocessing.get_context("spawn")
    computations, ready, results = ctx.Value("i", 0), ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=run, args=(url, namespace, callers, compute_s, computations, ready, results))
             for _ in range(processes)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    return outcomes, computations.value, [p.exitcode for p in procs]
