# SPDX-License-Identifier: MIT
"""Redis Sentinel (redis+sentinel://S1,S2,S3/mymaster[/db], rediss+sentinel://), against the
CTest `sentinel` and `sentinel_tls` fixtures (tests/fixtures/redis_sentinel.sh: 1 master,
1 replica, 3 sentinels, quorum 2, a SIGKILLed master replaced in about 2.5-3.5 s).

The failover tests SIGKILL the master under a steady load of cached calls, from threads (`def`
functions, the core's blocking path) and from asyncio tasks (`async def` functions, the
non-blocking path), each on its own handle: every call must return the right value (zero failed
calls: the outage is served uncached), and values stored by calls made after the kill must land on
the new master (the one replica: no other node can be promoted) within FAILOVER_BOUND_S. The
measured times are printed. They revive the killed node afterwards (as a replica of the new
master), so the fixture stays usable; the roles are swapped, which DIR/master_port follows."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import pathlib
import subprocess
import threading
import time

import pytest
import redis as redis_py

from httpcache import HTTPCache, cache

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "redis_sentinel.sh"
THREADS = 3
TASKS = 10
HOT = 16  # keys read again and again (hits before and after the failover)
# The fixture's failover takes about 3.5 s (down-after-milliseconds 2000, then the election and
# the promotion); the library finds the new master through the sentinels once it is promoted.
FAILOVER_BOUND_S = 15.0


def fixture(action: str, directory: pathlib.Path, *args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        [str(FIXTURE), action, str(directory), *args], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"redis_sentinel.sh {action} failed: {done.stdout}{done.stderr}"
    return done.stdout.strip()


def data_client(directory: pathlib.Path, port: int, db: int = 0) -> redis_py.Redis:
    """redis-py straight to one data node (no sentinel), over TLS when the fixture speaks it."""
    tls = {}
    if (directory / "tls_dir").exists():
        tls = {"ssl": True, "ssl_ca_certs": str(directory / "tls" / "ca.crt")}
    return redis_py.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=5, **tls)


def role_port(directory: pathlib.Path, role: str) -> int:
    return int((directory / f"{role}_port").read_text())


@pytest.fixture(autouse=True)
def _reset():
    yield
    HTTPCache.close()


def expected(kind: str, n: int) -> dict:
    return {"kind": kind, "n": n, "value": f"value-of-{n}"}


def _sync_and_async_on(url: str, directory: pathlib.Path, namespace: str, db: int = 0, **options) -> None:
    """A `def` and an `async def` function cached through `url`: computed once each, the values
    on the master the sentinels name, in database `db`."""
    HTTPCache.init(redis_url=url, namespace=namespace, **options)
    calls = []

    @cache(key="s", ttl_in_seconds=60)
    def f():
        calls.append("f")
        return expected("sync", 1)

    @cache(key="a", ttl_in_seconds=60)
    async def g():
        calls.append("g")
        return expected("async", 2)

    assert f() == expected("sync", 1) and f() == expected("sync", 1)

    async def run():
        assert await g() == expected("async", 2) and await g() == expected("async", 2)

    asyncio.run(run())
    assert calls == ["f", "g"]
    stats = HTTPCache.stats()
    assert stats["errors"] == 0 and stats["stores"] == 2 and stats["hits"] == 2, stats
    master = data_client(directory, role_port(directory, "master"), db)
    try:
        assert json.loads(master.get(f"{namespace}:s")) == expected("sync", 1)
        assert json.loads(master.get(f"{namespace}:a")) == expected("async", 2)
    finally:
        master.close()


def test_sentinel_url_sync_and_async(sentinel_dir, namespace):
    _sync_and_async_on((sentinel_dir / "url").read_text().strip(), sentinel_dir, namespace)


def test_first_async_call_of_a_new_handle_stores(sentinel_dir, namespace, warnings_log):
    """A new handle's first calls are non-blocking ones: they wait (without blocking the loop) for
    the background ask of the sentinels instead of failing open, so nothing is logged as an outage."""
    HTTPCache.init(redis_url=(sentinel_dir / "url").read_text().strip(), namespace=namespace)
    calls = []

    @cache(key="first", ttl_in_seconds=60)
    async def g():
        calls.append(1)
        return {"v": 1}

    async def run():
        return await asyncio.gather(*[g() for _ in range(10)])

    assert asyncio.run(run()) == [{"v": 1}] * 10
    stats = HTTPCache.stats()
    assert stats["errors"] == 0 and stats["stores"] == 1, stats
    assert len(calls) == 1
    assert not warnings_log()


def test_sentinel_url_selects_the_database(sentinel_dir, namespace):
    url = (sentinel_dir / "url").read_text().strip()
    assert url.endswith("/mymaster")
    _sync_and_async_on(url + "/2", sentinel_dir, namespace, db=2)
    master = data_client(sentinel_dir, role_port(sentinel_dir, "master"))
    try:
        assert master.get(f"{namespace}:s") is None  # not in database 0
    finally:
        master.close()


def test_tls_sentinel_url_sync_and_async(sentinel_tls_dir, namespace):
    url = (sentinel_tls_dir / "url").read_text().strip()
    assert url.startswith("rediss+sentinel://") and "?ssl_ca_certs=" in url
    _sync_and_async_on(url, sentinel_tls_dir, namespace)


def test_tls_sentinel_with_the_ca_as_a_keyword(sentinel_tls_dir, namespace):
    """The CA given to init() instead of in the URL: used for the sentinels and the master."""
    url = (sentinel_tls_dir / "url").read_text().strip().split("?", 1)[0]
    _sync_and_async_on(url, sentinel_tls_dir, namespace, ssl_ca_certs=sentinel_tls_dir / "tls" / "ca.crt")


def test_tls_sentinel_with_the_wrong_ca_fails_open(sentinel_tls_dir, namespace, warnings_log):
    url = (sentinel_tls_dir / "url").read_text().strip().split("?", 1)[0]
    HTTPCache.init(redis_url=url, namespace=namespace, ssl_ca_certs=str(sentinel_tls_dir / "tls" / "other-ca.crt"))
    calls = []

    @cache(key="w", ttl_in_seconds=60)
    def f():
        calls.append(1)
        return "computed"

    assert [f() for _ in range(3)] == ["computed"] * 3
    assert len(calls) == 3  # never cached
    stats = HTTPCache.stats()
    assert stats["errors"] >= 1 and stats["stores"] == 0 and stats["hits"] == 0, stats
    logged = [r.getMessage() for r in warnings_log()]
    assert len(logged) == 1 and "certificate verify failed" in logged[0], logged


class Load:
    """One path's calls (sync or async): every result checked, the fresh keys it has just stored."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls = 0
        self.failures: list[str] = []
        self.recent: collections.deque[int] = collections.deque(maxlen=64)
        self.lock = threading.Lock()

    def record(self, n: int, result, fresh: bool) -> None:
        with self.lock:
            self.calls += 1
            if result != expected(self.kind, n):
                self.failures.append(repr(result)[:200])
            elif fresh:
                self.recent.append(n)

    def recent_keys(self) -> list[int]:
        with self.lock:
            return list(self.recent)


@pytest.mark.parametrize("sentinels_down", [0, 1], ids=["3-sentinels", "sentinel-1-down"])
def test_failover_under_load(sentinel_dir, namespace, request, capsys, sentinels_down):
    """SIGKILL the master under load: zero failed calls, and the new master gets the writes."""
    d = sentinel_dir
    url = (d / "url").read_text().strip()
    if sentinels_down:
        # The first sentinel of the URL: the library must go on to the next one.
        fixture("kill-sentinel", d, "1")
        request.addfinalizer(lambda: fixture("revive-sentinel", d, "1"))
    old_master, new_master = role_port(d, "master"), role_port(d, "replica")
    sync_ns, async_ns = namespace + "_sync", namespace + "_async"  # one handle (and breaker) each
    HTTPCache.init(redis_url=url, namespace=sync_ns)

    @cache(key="k.{}", obj="n", obj_attr="real", ttl_in_seconds=120, namespace=sync_ns)
    def fsync(n):
        return expected("sync", n)

    @cache(key="k.{}", obj="n", obj_attr="real", ttl_in_seconds=120, namespace=async_ns)
    async def fasync(n):
        await asyncio.sleep(0)
        return expected("async", n)

    fresh = itertools.count(1000)  # a key never used before: a miss, computed, stored
    stop = threading.Event()
    loads = {"sync": Load("sync"), "async": Load("async")}

    def worker(w: int) -> None:
        load, i = loads["sync"], w
        while not stop.is_set():
            for n, is_fresh in ((i % HOT, False), (next(fresh), True)):
                try:
                    result = fsync(n)
                except BaseException as e:  # noqa: BLE001 - a failed call, counted
                    result = e
                load.record(n, result, is_fresh)
            i += 1
            time.sleep(0.002)

    async def task(t: int) -> None:
        load, i = loads["async"], t
        while not stop.is_set():
            for n, is_fresh in ((i % HOT, False), (next(fresh), True)):
                try:
                    result = await fasync(n)
                except Exception as e:  # noqa: BLE001 - a failed call, counted
                    result = e
                load.record(n, result, is_fresh)
            i += 1
            await asyncio.sleep(0.002)

    async def tasks() -> None:
        await asyncio.gather(*[task(t) for t in range(TASKS)])

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(THREADS)]
    threads.append(threading.Thread(target=lambda: asyncio.run(tasks())))
    new = data_client(d, new_master)
    landed: dict[str, float | None] = {"sync": None, "async": None}
    for t in threads:
        t.start()
    try:
        # Warmed up: both handles storing through the master the sentinels name.
        warm_until = time.monotonic() + 5
        while time.monotonic() < warm_until and not all(
            HTTPCache.handle(ns).cache.stats()["stores"] > 0 for ns in (sync_ns, async_ns)
        ):
            time.sleep(0.05)
        time.sleep(0.2)
        stores_before = {ns: HTTPCache.handle(ns).cache.stats()["stores"] for ns in (sync_ns, async_ns)}
        assert all(stores_before.values()), stores_before

        killed_at = time.monotonic()
        assert int(fixture("kill-master", d)) == old_master
        first_after = next(fresh)  # every fresh key from here on was computed after the kill
        while None in landed.values() and time.monotonic() - killed_at < FAILOVER_BOUND_S:
            for kind, ns in (("sync", sync_ns), ("async", async_ns)):
                if landed[kind] is not None:
                    continue
                keys = [n for n in loads[kind].recent_keys() if n > first_after]
                if not keys:
                    continue
                try:
                    values = new.mget([f"{ns}:k.{n}" for n in keys])
                except redis_py.RedisError:
                    continue
                for n, raw in zip(keys, values):
                    if raw is not None:
                        assert json.loads(raw) == expected(kind, n), raw  # the caller's exact value
                        landed[kind] = time.monotonic() - killed_at
                        break
            time.sleep(0.02)
        # The sentinels agree on the replica as the new master (the fixture rewrites master_port).
        fixture("wait-failover", d, str(old_master), "20")
        assert role_port(d, "master") == new_master
        hits_after = {ns: HTTPCache.handle(ns).cache.stats()["hits"] for ns in (sync_ns, async_ns)}
        time.sleep(0.3)  # hits on the new master (the hot keys came over with replication)
        hits_resumed = {
            ns: HTTPCache.handle(ns).cache.stats()["hits"] > hits_after[ns] for ns in (sync_ns, async_ns)
        }
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        new.close()
        fixture("revive", d)  # the old master back, as a replica of the new one

    stats = {ns: HTTPCache.handle(ns).cache.stats() for ns in (sync_ns, async_ns)}
    down = ", sentinel 1 down" if sentinels_down else ""
    report = []
    for kind, ns in (("sync", sync_ns), ("async", async_ns)):
        took = "never" if landed[kind] is None else f"{landed[kind]:.2f} s"
        report.append(
            f"python sentinel failover{down} ({kind}): {loads[kind].calls} calls, {len(loads[kind].failures)} failed; "
            f"a value stored after the kill was on the new master {took} after the SIGKILL; "
            f"backend errors {stats[ns]['errors']}, breaker trips {stats[ns]['breaker_trips']}"
        )
    with capsys.disabled():  # past pytest's capture: shown by `ctest -V` and `ctest --output-on-failure`
        print("\n" + "\n".join(report))

    for kind, load in loads.items():
        assert load.calls > 100, (kind, load.calls)
        assert load.failures == [], (kind, load.failures[:5])
        assert landed[kind] is not None and landed[kind] <= FAILOVER_BOUND_S, (kind, landed)
    assert all(hits_resumed.values()), hits_resumed


def test_near_tier_follows_a_failover(sentinel_dir, namespace):
    """The near tier on redis+sentinel:// (issue 17): its copy of an entry is not served past a
    failover. The master is killed, and a value written on the new master is read at once after
    it takes over; near hits then resume, answered from the new master's link."""
    d = sentinel_dir
    url = (d / "url").read_text().strip()
    HTTPCache.init(redis_url=url, namespace=namespace, near_cache=True)
    handle = HTTPCache.handle(namespace)
    from httpcache import _httpcache

    handle.cache.set(b"k", b"before", _httpcache.Policy.seconds(60))
    deadline = time.monotonic() + 5
    while handle.cache.stats()["near_hits"] == 0:  # the report link subscribes in the background
        assert handle.cache.get(b"k")[0] == b"before" and time.monotonic() < deadline
        time.sleep(0.01)
    old_master = role_port(d, "master")
    try:
        assert int(fixture("kill-master", d)) == old_master
        fixture("wait-failover", d, str(old_master), "20")
        new = data_client(d, role_port(d, "master"))
        new.set(f"{namespace}:k", b"after", px=60000)
        new.close()
        deadline = time.monotonic() + FAILOVER_BOUND_S
        while True:
            try:
                if handle.cache.get(b"k")[0] == b"after":
                    break
            except Exception:  # noqa: BLE001 - the handle finds the new master meanwhile
                pass
            assert time.monotonic() < deadline, "the near tier still answered the old master's value"
            time.sleep(0.05)
        hits = handle.cache.stats()["near_hits"]
        deadline = time.monotonic() + 5
        while handle.cache.stats()["near_hits"] == hits:  # linked to the new master: near hits again
            assert handle.cache.get(b"k")[0] == b"after" and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        fixture("revive", d)  # the old master back, as a replica of the new one
