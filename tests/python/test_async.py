# SPDX-License-Identifier: MIT
"""The non-blocking path and the GIL: a stalled Redis (SIGSTOP) must neither block the event
loop nor hold the GIL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time

import pytest
from redis.cluster import RedisCluster

from httpcache import HTTPCache, _httpcache, cache, invalidate_cache


@contextlib.contextmanager
def stalled(pid: int):
    """The Redis server stopped (SIGSTOP) for the duration of the block; always resumed."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def unraisable():
    """Exceptions reported as unraisable (e.g. from a completion callback) during the test."""
    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u)
    yield seen
    sys.unraisablehook = old


@pytest.fixture
def on_redis(redis_url, namespace, request):
    def init(**options):
        HTTPCache.init(redis_url=redis_url, namespace=namespace, **options)
        request.addfinalizer(HTTPCache.close)

    return init


async def test_event_loop_never_blocks_while_redis_stalls(on_redis, redis_pid, unraisable, capsys):
    on_redis(command_timeout_ms=5000)
    loop = asyncio.get_running_loop()
    calls = []

    @cache(key="stall.{}", obj="i", obj_attr="real", ttl_in_seconds=60)
    async def f(i):
        calls.append(i)
        return i * 2

    for i in range(100):  # connect, and cache half of the keys
        assert await f(i) == i * 2
    calls.clear()

    gaps = []
    stop = asyncio.Event()

    async def ticker():
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.002)
            now = loop.time()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    with stalled(redis_pid):
        tasks = [asyncio.create_task(f(i)) for i in range(200)]  # 100 hits, 100 misses
        await asyncio.sleep(0.3)
        waiting = sum(not t.done() for t in tasks)
    results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    await asyncio.sleep(0.02)
    stop.set()
    await tick
    assert waiting == 200  # every call really waited for the stalled server
    assert results == [i * 2 for i in range(200)]
    assert sorted(calls) == list(range(100, 200))  # misses computed once, hits not at all
    ordered = sorted(gaps)
    with capsys.disabled():  # the figures, for the record (latency is bench/'s to judge, not a test's)
        print(f"\nevent loop during the stall: {len(gaps)} ticks of 2 ms, p99 gap "
              f"{ordered[len(ordered) * 99 // 100] * 1000:.1f} ms, worst {ordered[-1] * 1000:.1f} ms")
    assert len(gaps) > 100
    # Liveness: the loop went on turning while the server was stopped. SIGCONT is only sent once
    # the loop has slept 0.3 s, so a call blocking the loop on the stalled server would hold it
    # for the whole 5 s command timeout; 2 s is far above any scheduling delay.
    assert max(gaps) < 2.0, f"the loop stalled for {max(gaps) * 1000:.1f} ms"
    assert not unraisable


async def test_stalled_server_times_out_and_calls_run_uncached(on_redis, redis_pid, redis_client, namespace, capsys):
    on_redis(command_timeout_ms=200)
    calls = []

    @cache(key="slow", ttl_in_seconds=60)
    async def f():
        calls.append(1)
        return len(calls)

    assert await f() == 1
    redis_client.delete(f"{namespace}:slow")
    loop = asyncio.get_running_loop()
    with stalled(redis_pid):
        t0 = loop.time()
        result = await asyncio.wait_for(f(), 5)
        elapsed = loop.time() - t0
    assert result == 2  # computed, served uncached
    with capsys.disabled():
        print(f"\nstalled server, command_timeout_ms=200: the call returned after {elapsed * 1000:.0f} ms")
    # It waited for the timeout (a lower bound holds under any load), and gave up on its own well
    # before SIGCONT, which only comes once the call has returned (the 5 s wait_for is the bound).
    assert elapsed >= 0.15, elapsed
    assert elapsed < 3.0, elapsed
    # The server is back: the next calls reconnect and cache again.
    for _ in range(50):
        await f()
        if redis_client.get(f"{namespace}:slow") is not None:
            break
        await asyncio.sleep(0.05)
    before = len(calls)
    await f()
    assert len(calls) == before  # a hit


def test_sync_call_releases_the_gil_while_redis_stalls(on_redis, redis_pid):
    on_redis(command_timeout_ms=5000)

    @cache(key="gil", ttl_in_seconds=60)
    def f():
        return "value"

    assert f() == "value"  # connects and stores; later calls are hits
    done = threading.Event()
    results = []

    def call():
        results.append(f())
        done.set()

    with stalled(redis_pid):
        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.05)  # the worker is now inside the blocking C call
        count = 0
        end = time.monotonic() + 0.25
        while time.monotonic() < end:
            count += 1
        blocked_meanwhile = not done.is_set()
    worker.join(10)
    assert blocked_meanwhile  # the worker really waited on the server...
    assert count > 10_000  # ...while this thread kept running Python code
    assert results == ["value"]


@pytest.mark.parametrize("method", ["get", "set", "invalidate", "get_or_compute"])
def test_binding_releases_the_gil_in_blocking_calls(redis_url, redis_pid, namespace, method):
    c = _httpcache.Cache(redis_url, namespace, command_timeout_ms=5000)
    c.set(b"k", b"v", _httpcache.Policy.seconds(60))
    calls = {
        "get": lambda: c.get(b"k"),
        "set": lambda: c.set(b"k", b"v", _httpcache.Policy.seconds(60)),
        "invalidate": lambda: c.invalidate([b"k"]),
        "get_or_compute": lambda: c.get_or_compute(b"k", _httpcache.Policy.seconds(60), lambda: b"v"),
    }
    done = threading.Event()
    with stalled(redis_pid):
        worker = threading.Thread(target=lambda: (calls[method](), done.set()))
        worker.start()
        time.sleep(0.05)
        count = 0
        end = time.monotonic() + 0.1
        while time.monotonic() < end:
            count += 1
        blocked_meanwhile = not done.is_set()
    worker.join(10)
    assert blocked_meanwhile and done.is_set()
    assert count > 5_000
    c.close()


async def test_memory_requests_complete_inside_the_call(namespace):
    HTTPCache.init(namespace=namespace)  # memory://
    loop = asyncio.get_running_loop()

    @cache(key="m", ttl_in_seconds=60)
    async def f():
        return 1

    await f()
    adapter = HTTPCache.handle().adapter(loop)
    assert adapter._ctx.pending() == 0 and not adapter._timer
    fut = loop.create_future()
    adapter._ctx.get(b"m", fut)
    assert fut.done() and fut.result() == (_httpcache.OK, b"1", fut.result()[2])
    HTTPCache.close()


async def test_first_call_of_a_new_context_is_served_by_the_loop(redis_backend, namespace, request):
    # A Redis Cluster session asks for its epoll descriptor while the context is being opened,
    # and never again: that request must reach the loop (it once did not, so every async call on
    # redis+cluster:// waited for its command timeout and ran uncached).
    HTTPCache.init(redis_url=redis_backend, namespace=namespace, command_timeout_ms=5000)
    request.addfinalizer(HTTPCache.close)

    @cache(key="first", ttl_in_seconds=60)
    async def f():
        return "v"

    HTTPCache.handle().cache.set(b"first", b'"stored"', _httpcache.Policy.seconds(60))
    start = time.monotonic()
    assert await f() == "stored"  # a hit, through the non-blocking path of this loop
    assert time.monotonic() - start < 1.0
    assert HTTPCache.stats()["errors"] == 0


def test_one_context_per_event_loop(backend, namespace):
    HTTPCache.init(redis_url=backend, namespace=namespace)
    calls = []

    @cache(key="loops", ttl_in_seconds=60)
    async def f():
        calls.append(1)
        return "x"

    @invalidate_cache(key="loops")
    async def clear():
        return None

    for _ in range(3):  # a new loop each time: a new context, the same cache
        assert asyncio.run(f()) == "x"
    assert calls == [1]
    asyncio.run(clear())
    assert asyncio.run(f()) == "x" and calls == [1, 1]

    # Loops in other threads, concurrently.
    errors = []

    def in_thread():
        try:
            for _ in range(20):
                assert asyncio.run(f()) == "x"
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=in_thread) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    HTTPCache.close()


async def test_cancelled_call_during_a_stall(on_redis, redis_pid, unraisable):
    on_redis(command_timeout_ms=5000)

    @cache(key="cancel", ttl_in_seconds=60)
    async def f():
        return "ok"

    assert await f() == "ok"
    with stalled(redis_pid):
        task = asyncio.create_task(f())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await asyncio.wait_for(f(), 5) == "ok"  # the connection still serves later calls
    assert not unraisable


async def test_server_closing_the_connection(redis_backend, redis_backend_client, namespace, request):
    HTTPCache.init(redis_url=redis_backend, namespace=namespace)
    request.addfinalizer(HTTPCache.close)
    calls = []

    @cache(key="drop", ttl_in_seconds=60)
    async def f():
        calls.append(1)
        return "v"

    await f()
    kill = ("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    if isinstance(redis_backend_client, RedisCluster):
        redis_backend_client.execute_command(*kill, target_nodes=RedisCluster.ALL_NODES)
    else:
        redis_backend_client.execute_command(*kill)
    for _ in range(5):
        assert await asyncio.wait_for(f(), 5) == "v"
    # At most the call that found the connection closed ran uncached.
    assert len(calls) <= 2
    assert redis_backend_client.get(f"{namespace}:drop") == b'"v"'


async def test_concurrent_misses_all_return(backend, namespace):
    HTTPCache.init(redis_url=backend, namespace=namespace)

    @cache(key="burst.{}", obj="i", obj_attr="real", ttl_in_seconds=60)
    async def f(i):
        await asyncio.sleep(0)
        return {"i": i}

    results = await asyncio.gather(*[f(i % 10) for i in range(500)])
    assert results == [{"i": i % 10} for i in range(500)]
    results = await asyncio.gather(*[f(i % 10) for i in range(500)])
    assert results == [{"i": i % 10} for i in range(500)]
    HTTPCache.close()


async def test_large_values_fill_the_socket_buffer(backend, namespace):
    # Several MB: the write cannot finish in one go, so the descriptor is watched for writability.
    HTTPCache.init(redis_url=backend, namespace=namespace)
    big = "x" * (6 << 20)
    calls = []

    @cache(key="big.{}", obj="i", obj_attr="real", ttl_in_seconds=60)
    async def f(i):
        calls.append(i)
        return [i, big]

    first = await asyncio.gather(*[f(i) for i in range(3)])
    second = await asyncio.gather(*[f(i) for i in range(3)])
    assert first == second == [[i, big] for i in range(3)]
    assert sorted(calls) == [0, 1, 2]  # once each; on a cluster the nodes answer in any order
    HTTPCache.close()


def test_closed_loops_release_their_context_and_connection(redis_backend, namespace):
    import gc

    # Counts descriptors: the near tier's report links (HTTPCACHE_NEAR_CACHE=1) connect in the
    # background, so it is off here, whatever the environment says.
    HTTPCache.init(redis_url=redis_backend, namespace=namespace, near_cache=False)

    @cache(key="loop-leak", ttl_in_seconds=60)
    async def f():
        return 1

    asyncio.run(f())
    gc.collect()
    fds_before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        assert asyncio.run(f()) == 1
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2
    assert len(HTTPCache.handle()._adapters) <= 1
    HTTPCache.close()


def _get_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


async def test_concurrent_hits_of_one_key_share_one_read(on_redis, redis_client, unraisable):
    on_redis()
    calls = []

    @cache(key="shared.read", ttl_in_seconds=60)
    async def f():
        calls.append(1)
        return {"v": [1, 2, 3]}

    assert await f() == {"v": [1, 2, 3]}
    before = _get_calls(redis_client)
    results = await asyncio.gather(*[f() for _ in range(32)])
    gets = _get_calls(redis_client) - before
    assert results == [{"v": [1, 2, 3]}] * 32
    assert len({id(r) for r in results}) == 32  # each caller decodes its own copy
    assert calls == [1]
    assert gets == 1, gets


async def test_cancelling_one_sharer_leaves_the_others_served(on_redis, redis_pid, unraisable):
    on_redis(command_timeout_ms=5000)

    @cache(key="shared.cancel", ttl_in_seconds=60)
    async def f():
        return "ok"

    assert await f() == "ok"
    with stalled(redis_pid):
        first = asyncio.create_task(f())
        others = [asyncio.create_task(f()) for _ in range(3)]
        await asyncio.sleep(0.05)
        first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(asyncio.gather(*others), 5) == ["ok"] * 3
    assert not unraisable


async def test_lone_requests_are_written_without_a_watcher_call(redis_backend, namespace, request, monkeypatch):
    """On an established connection, a request with nothing else pending is written inside the
    call that starts it, and the watcher hears nothing (interest READ -> READ|WRITE -> READ nets
    to no change); requests started while another is pending are queued and written together
    on the next loop pass, through the watcher. Both kinds complete, on one server and on the
    cluster."""
    from httpcache import _asyncio

    HTTPCache.init(redis_url=redis_backend, namespace=namespace, command_timeout_ms=5000)
    request.addfinalizer(HTTPCache.close)
    handle = HTTPCache.handle()
    for i in range(4):
        handle.cache.set(b"k%d" % i, b"v%d" % i, _httpcache.Policy.seconds(60))
    loop = asyncio.get_running_loop()
    adapter = handle.adapter(loop)
    # Connects (through the watcher). On the cluster each node has its own connection, made on
    # its first request: every key used below is read once here, so all of them are established.
    for key in (b"k0", b"k1", b"k2", b"k3", b"k9"):
        assert (await adapter.start_get(loop, key))[0] == (_httpcache.ENOTFOUND if key == b"k9" else _httpcache.OK)
    heard: list[tuple[int, int]] = []
    told = _asyncio._Watcher.__call__

    def recording(self, fd, events):
        heard.append((fd, events))
        told(self, fd, events)

    monkeypatch.setattr(_asyncio._Watcher, "__call__", recording)
    for i in range(3):
        status, value, ttl_ms = await adapter.start_get(loop, b"k%d" % i)
        assert (status, value) == (_httpcache.OK, b"v%d" % i) and 0 < ttl_ms <= 60_000
    st, ttl_s = await adapter.set(loop, b"k9", b"v9", _httpcache.Policy.seconds(60))
    assert st == _httpcache.OK and ttl_s == 60
    assert heard == [], "lone requests on established connections must not go through the watcher"
    results = await asyncio.gather(*[adapter.start_get(loop, b"k%d" % (i % 4)) for i in range(8)])
    assert [r[1] for r in results] == [b"v%d" % (i % 4) for i in range(8)]
    assert adapter._ctx.pending() == 0



async def test_a_completion_may_start_a_request_inline(redis_backend, namespace, request):
    """A future-like object whose set_result starts another request, inside the library's reply
    processing: the nested request is queued (never written from inside that processing) and is
    served on a later loop pass."""
    HTTPCache.init(redis_url=redis_backend, namespace=namespace, command_timeout_ms=5000)
    request.addfinalizer(HTTPCache.close)
    handle = HTTPCache.handle()
    handle.cache.set(b"a", b"1", _httpcache.Policy.seconds(60))
    handle.cache.set(b"b", b"2", _httpcache.Policy.seconds(60))
    loop = asyncio.get_running_loop()
    adapter = handle.adapter(loop)
    await adapter.start_get(loop, b"a")  # connected
    nested = loop.create_future()

    class StartsAnother:
        finished = False

        def done(self):
            return self.finished

        def set_result(self, result):
            self.finished = True
            self.result = result
            adapter._ctx.get(b"b", nested)  # inside process(): a completion starting a request
            adapter._arm(loop)

    first = StartsAnother()
    adapter._ctx.get(b"a", first)
    adapter._arm(loop)
    status, value, _ = await asyncio.wait_for(nested, 3)
    assert first.result[:2] == (_httpcache.OK, b"1")
    assert (status, value) == (_httpcache.OK, b"2")
