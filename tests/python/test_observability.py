# SPDX-License-Identifier: MIT
"""HTTPCache.stats() (the core's counters, summed over the namespaces' handles) and logging through
the `httpcache` logger: one WARNING per outage, one INFO when the backend is back, never print."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import threading
import time

import pytest

from httpcache import HTTPCache, cache, invalidate_cache
from httpcache._config import STAT_COUNTERS, Health

ZERO = dict.fromkeys(STAT_COUNTERS, 0) | {"breaker_open": False}


def without_near(stats: dict) -> dict:
    """The counters but the near tier's, which count the server's reports of our own writes too
    when the suite runs with the tier on."""
    return {k: v for k, v in stats.items() if not k.startswith("near_")}


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def log(caplog):
    """The httpcache logger's records of the test, INFO and up: log(level) lists the messages."""
    caplog.set_level(logging.INFO, logger="httpcache")

    def messages(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "httpcache" and r.levelno == level]

    return messages


def test_stats_keys_and_zero_after_init(backend, namespace, request):
    HTTPCache.init(redis_url=backend, namespace=namespace)
    request.addfinalizer(HTTPCache.close)
    stats = HTTPCache.stats()
    assert list(stats) == [
        "hits", "misses", "stores", "errors", "breaker_trips", "breaker_skips",
        "uncached", "oversized", "coalesced", "near_hits", "near_invalidations", "near_flushes", "breaker_open",
    ]
    assert stats == ZERO
    HTTPCache.close()
    assert HTTPCache.stats() == ZERO  # no handles, nothing counted


def test_stats_count_sync_and_async_calls_over_every_namespace(backend, namespace, request):
    HTTPCache.init(redis_url=backend, namespace=namespace, max_value_bytes=1000)
    request.addfinalizer(HTTPCache.close)

    @cache(key="s", ttl_in_seconds=60)
    def s():
        return "sync"

    @cache(key="a", ttl_in_seconds=60)
    async def a():
        return "async"

    @cache(key="o", ttl_in_seconds=60, namespace=namespace + "_other")
    def other():
        return "other namespace"

    @cache(key="big", ttl_in_seconds=60)
    def big():
        return "x" * 2000

    @cache(key="abig", ttl_in_seconds=60)
    async def abig():
        return "x" * 2000

    @cache(key="nj", ttl_in_seconds=60)
    def not_json():
        return {1, 2}

    @cache(key="anj", ttl_in_seconds=60)
    async def anot_json():
        return (1, 2)

    assert s() == s() == "sync"
    assert other() == other() == "other namespace"
    assert big() == "x" * 2000 and not_json() == {1, 2}

    async def run():
        return [await a(), await a(), await abig(), await anot_json()]

    assert asyncio.run(run()) == ["async", "async", "x" * 2000, (1, 2)]
    assert set(HTTPCache._handles) == {namespace, namespace + "_other"}
    stats = HTTPCache.stats()
    assert stats["near_hits"] <= stats["hits"]  # the near tier's (HTTPCACHE_NEAR_CACHE=1) are hits too
    assert without_near(stats) == without_near(ZERO) | {
        "hits": 3,  # s, a, other: second calls
        "misses": 7,  # their first calls, and big, abig, nj, anj
        "stores": 3,
        "uncached": 4,  # big and abig (too large), nj and anj (not JSON)
        "oversized": 2,
    }


def test_stats_count_coalesced_callers(backend, namespace, request):
    HTTPCache.init(redis_url=backend, namespace=namespace)
    request.addfinalizer(HTTPCache.close)
    calls = []

    @cache(key="slow", ttl_in_seconds=60)
    def slow():
        calls.append(1)
        time.sleep(0.3)
        return "v"

    @cache(key="aslow", ttl_in_seconds=60)
    async def aslow():
        calls.append(1)
        await asyncio.sleep(0.3)
        return "v"

    start = threading.Barrier(8)
    results = []

    def call():
        start.wait()
        results.append(slow())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def burst():
        return await asyncio.gather(*[aslow() for _ in range(8)])

    assert asyncio.run(burst()) == ["v"] * 8
    assert results == ["v"] * 8 and len(calls) == 2
    st = HTTPCache.stats()
    assert st["stores"] == 2
    # Threads arriving after the computation finished find the stored value instead.
    assert st["coalesced"] + st["hits"] == 14 and st["coalesced"] >= 7


def test_stats_of_an_unreachable_backend(namespace, request):
    HTTPCache.init(
        redis_url=f"redis://127.0.0.1:{_free_port()}", namespace=namespace,
        connect_timeout_ms=100, breaker_failures=2, breaker_cooldown_ms=60_000,
    )
    request.addfinalizer(HTTPCache.close)

    @cache(key="k", ttl_in_seconds=60)
    def f():
        return 1

    @cache(key="a", ttl_in_seconds=60)
    async def g():
        return 2

    assert [f() for _ in range(10)] == [1] * 10
    assert asyncio.run(g()) == 2
    assert HTTPCache.stats() == ZERO | {
        "errors": 2,  # then the breaker opened...
        "breaker_trips": 1,
        "breaker_skips": 9,  # ...and the other 8 sync calls and the async one skipped Redis
        "uncached": 11,
        "breaker_open": True,
    }


def test_unreachable_backend_logs_one_warning_for_many_concurrent_calls(namespace, request, log, capsys):
    HTTPCache.init(redis_url=f"redis://127.0.0.1:{_free_port()}", namespace=namespace, connect_timeout_ms=100)
    request.addfinalizer(HTTPCache.close)

    @cache(key="k.{}", obj="i", obj_attr="real", ttl_in_seconds=60)
    def f(i):
        return i

    @cache(key="a.{}", obj="i", obj_attr="real", ttl_in_seconds=60)
    async def g(i):
        return -i

    @invalidate_cache(key="k.{}", obj="i", obj_attr="real")
    def inv(i):
        return i

    def work():
        for i in range(20):
            assert f(i) == i and inv(i) == i

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()

    async def run():
        return await asyncio.gather(*[g(i) for i in range(50)])

    assert asyncio.run(run()) == [-i for i in range(50)]
    for t in threads:
        t.join()
    warnings = log(logging.WARNING)
    assert len(warnings) == 1, warnings
    assert "unavailable" in warnings[0] and "serving uncached" in warnings[0] and namespace in warnings[0]
    assert log(logging.INFO) == []
    assert capsys.readouterr().out == ""  # never print


def test_outage_logged_once_and_recovery_once(redis_url, redis_pid, namespace, request, log, caplog, capsys):
    # Two stalls (SIGSTOP) of the real server under sync and async calls: one WARNING when each
    # starts, one INFO when it is over, whatever the number of calls failing or skipped between.
    HTTPCache.init(
        redis_url=redis_url, namespace=namespace,
        connect_timeout_ms=100, command_timeout_ms=100, breaker_failures=2, breaker_cooldown_ms=100,
    )
    request.addfinalizer(HTTPCache.close)

    @cache(key="k.{}", obj="i", obj_attr="real", ttl_in_seconds=60)
    def f(i):
        return i

    @cache(key="a.{}", obj="i", obj_attr="real", ttl_in_seconds=60)
    async def g(i):
        return -i

    def load(seconds: float) -> None:
        def work():
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                assert f(i % 8) == i % 8
                i += 1
                time.sleep(0.002)

        async def awork():
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                assert await g(i % 8) == -(i % 8)
                i += 1
                await asyncio.sleep(0.002)

        async def aload():
            await asyncio.gather(*[awork() for _ in range(4)])

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        asyncio.run(aload())
        for t in threads:
            t.join()

    def hits() -> int:
        return HTTPCache.stats()["hits"]

    def transitions() -> str:
        """The log as a string of W (outage) and B (back), in order."""
        return "".join("W" if r.levelno == logging.WARNING else "B" for r in caplog.records if r.name == "httpcache")

    load(0.3)
    failed_before = 0
    for outage in (1, 2):
        logged_before = len(transitions())
        os.kill(redis_pid, signal.SIGSTOP)
        try:
            load(0.6)
        finally:
            os.kill(redis_pid, signal.SIGCONT)
        stats = HTTPCache.stats()
        failed = stats["errors"] + stats["breaker_skips"] - failed_before  # calls that missed Redis
        failed_before += failed
        before = hits()
        load(0.6)  # the breaker lets a probe through within 100 ms; calls hit again
        assert hits() > before
        # One WARNING when the stall starts and one INFO when it is over, whatever the number of
        # calls failing or skipped in between. With 100 ms timeouts a loaded machine may also
        # time out a call outside the stalls: that is an outage of its own, logged the same
        # way (a W and its B), so the log is checked as alternating pairs, at least one per stall.
        seen = transitions()
        this = seen[logged_before:]
        assert "W" in this, seen  # the stall was logged
        assert re.fullmatch(r"(WB)+", seen), seen  # never two lines in a row for one outage; all over
        assert failed > 5 * len(this), (failed, seen)  # many calls failed, a few lines said so
    warnings, infos = log(logging.WARNING), log(logging.INFO)
    assert all("unavailable" in w for w in warnings) and all(" back " in i for i in infos)
    assert capsys.readouterr().out == ""


def test_calls_in_flight_across_a_transition_do_not_flap(log):
    h = Health("redis://user:secret@host:6379/0", "ns")
    early = h.ticket()  # a call that started while the backend was up...
    h.failed(early, "get", "timed out")  # ...and saw it go down: the outage is logged
    h.ok(early)  # another call of that time, answered late: not a recovery
    h.failed(early, "set", "timed out")  # nor a second outage
    assert h.down
    late = h.ticket()
    h.failed(late, "get", "timed out")  # still down: nothing new
    h.ok(late)  # a call started during the outage succeeds: back
    h.failed(late, "get", "timed out")  # a late failure of that time: not a new outage
    assert not h.down
    warnings, infos = log(logging.WARNING), log(logging.INFO)
    assert len(warnings) == 1 and len(infos) == 1
    assert "secret" not in warnings[0] + infos[0] and "user:***@host" in warnings[0]
    h.failed(h.ticket(), "get", "refused")  # a new outage
    assert len(log(logging.WARNING)) == 2
