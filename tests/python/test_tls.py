# SPDX-License-Identifier: MIT
"""TLS end to end, against the real TLS-only servers of the CTest fixtures `redis_tls`,
`redis_mtls` (a client certificate required) and `cluster_tls` (tests/fixtures/redis_server.sh
tls|mtls, redis_cluster.sh ... tls; certificates by tls_certs.sh: the server's names redis.test
and 127.0.0.1, not localhost).

The TLS settings are init() keywords here (the URL files carry them in the query, which the
other tests use as written): verification, host names, client certificates, the values refused
at init(), and a failed handshake as an outage: the decorated call runs uncached (fail open), the
outage is counted and logged once with its reason, and no password is ever shown. Then the chaos
test's kill and revive, over TLS."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import re
import subprocess
import threading
import time
from urllib.parse import urlsplit

import pytest
import redis as redis_py
from redis.cluster import ClusterNode, RedisCluster

import httpcache
from httpcache import HTTPCache, cache

from chaos_support import wait_for_hit

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "redis_server.sh"


@pytest.fixture(autouse=True)
def _reset():
    yield
    HTTPCache.close()


def _port(directory: pathlib.Path) -> int:
    return int((directory / "port").read_text())


def _bare(directory: pathlib.Path, host: str = "127.0.0.1") -> str:
    """rediss://HOST:PORT of the fixture's server, with no TLS setting in the URL."""
    return f"rediss://{host}:{_port(directory)}"


def expected(kind: str, n: int = 0) -> dict:
    return {"kind": kind, "n": n}


def _sync_async_calls(namespace: str, runs: int = 2) -> list[str]:
    """A `def` and an `async def` cached function, each called `runs` times (every result
    checked); the names of the computations that ran."""
    calls: list[str] = []

    @cache(key="s", ttl_in_seconds=60, namespace=namespace)
    def f():
        calls.append("f")
        return expected("sync")

    @cache(key="a", ttl_in_seconds=60, namespace=namespace)
    async def g():
        calls.append("g")
        return expected("async")

    for _ in range(runs):
        assert f() == expected("sync")

    async def run():
        for _ in range(runs):
            assert await g() == expected("async")

    asyncio.run(run())
    return calls


def _assert_cached(namespace: str, client) -> None:
    """The two functions of _sync_async_calls ran once each and their values are on the server."""
    assert _sync_async_calls(namespace) == ["f", "g"]
    stats = HTTPCache.stats()
    assert stats["errors"] == 0 and stats["stores"] == 2 and stats["hits"] == 2, stats
    assert client.get(f"{namespace}:s") == b'{"kind":"sync","n":0}'
    assert client.get(f"{namespace}:a") == b'{"kind":"async","n":0}'


# --- verification on: the CA given as a keyword ---------------------------------------------


def test_ca_keyword_sync_async_and_fastapi_route(rediss_dir, rediss_client, namespace):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    # A PathLike, and no TLS setting in the URL.
    HTTPCache.init(redis_url=_bare(rediss_dir), namespace=namespace, ssl_ca_certs=rediss_dir / "tls" / "ca.crt")
    _assert_cached(namespace, rediss_client)

    app = FastAPI()
    runs = []

    @app.get("/r")
    @cache(key="route", ttl_in_seconds=60)
    async def route():
        runs.append(1)
        return {"route": len(runs)}

    with TestClient(app) as client:
        assert [client.get("/r").json() for _ in range(3)] == [{"route": 1}] * 3
    assert len(runs) == 1
    assert rediss_client.get(f"{namespace}:route") is not None
    assert HTTPCache.stats()["errors"] == 0


def test_ca_path_keyword(rediss_dir, rediss_client, namespace):
    HTTPCache.init(redis_url=_bare(rediss_dir), namespace=namespace, ssl_ca_path=str(rediss_dir / "tls" / "capath"))
    _assert_cached(namespace, rediss_client)


@pytest.mark.parametrize(
    "host, query, options",
    [
        ("localhost", "", {"ssl_check_hostname": False}),  # the chain is still verified
        ("localhost", "", {"ssl_server_hostname": "redis.test"}),
        ("localhost", "?ssl_server_hostname=redis.test", {}),
        ("127.0.0.1", "", {"ssl_cert_reqs": "none"}),  # no CA at all: nothing verified
    ],
    ids=["check_hostname-off", "server_hostname", "server_hostname-in-url", "cert_reqs-none"],
)
def test_host_name_settings(rediss_dir, rediss_client, namespace, host, query, options):
    if "ssl_cert_reqs" not in options:
        options = {**options, "ssl_ca_certs": str(rediss_dir / "tls" / "ca.crt")}
    HTTPCache.init(redis_url=_bare(rediss_dir, host) + query, namespace=namespace, **options)
    _assert_cached(namespace, rediss_client)


def test_mutual_tls(redis_mtls_dir, namespace):
    tls = redis_mtls_dir / "tls"
    client = redis_py.Redis.from_url((redis_mtls_dir / "url").read_text().strip())
    try:
        # Every setting as a keyword (the URL file has them in its query: checked as written too).
        HTTPCache.init(
            redis_url=_bare(redis_mtls_dir), namespace=namespace, ssl_ca_certs=tls / "ca.crt",
            ssl_certfile=tls / "client.crt", ssl_keyfile=str(tls / "client.key"),
        )
        _assert_cached(namespace, client)
        HTTPCache.init(redis_url=(redis_mtls_dir / "url").read_text().strip(), namespace=namespace + "_url")
        _assert_cached(namespace + "_url", client)
    finally:
        client.close()


def test_tls_cluster(cluster_tls_dir, namespace):
    ca = str(cluster_tls_dir / "tls" / "ca.crt")
    ports = (cluster_tls_dir / "ports").read_text().split()
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", int(p)) for p in ports], ssl=True, ssl_ca_certs=ca)
    try:
        url = (cluster_tls_dir / "url").read_text().strip()
        assert url.startswith("rediss+cluster://")
        HTTPCache.init(redis_url=url, namespace=namespace)
        _assert_cached(namespace, client)
        # The CA as a keyword, one seed node only: the others are found (and reached over TLS).
        HTTPCache.init(redis_url=url.split("?", 1)[0].split(",")[0], namespace=namespace + "_kw", ssl_ca_certs=ca)
        _assert_cached(namespace + "_kw", client)

        @cache(key="spread.{}", obj="i", obj_attr="real", ttl_in_seconds=60)
        def spread(i):
            return i

        assert [spread(i) for i in range(32)] == list(range(32))  # keys on every master
        assert all(client.get(f"{namespace}_kw:spread.{i}") == str(i).encode() for i in range(32))
        assert HTTPCache.stats()["errors"] == 0
    finally:
        client.close()


# --- a failed handshake: fail open, counted, logged once with the reason --------------------


def _fails_open(url: str, namespace: str, warnings_log, reason: str, **options) -> str:
    """Every call returns its value, computed each time; one WARNING naming `reason`; returns it."""
    HTTPCache.init(redis_url=url, namespace=namespace, **options)
    assert _sync_async_calls(namespace, runs=3) == ["f"] * 3 + ["g"] * 3  # never cached
    stats = HTTPCache.stats()
    assert stats["errors"] >= 1 and stats["uncached"] == 6, stats
    assert stats["hits"] == stats["misses"] == stats["stores"] == 0, stats
    logged = [r.getMessage() for r in warnings_log()]
    assert len(logged) == 1, logged  # once per outage, not per call
    assert "unavailable" in logged[0] and reason in logged[0], logged
    return logged[0]


@pytest.mark.parametrize(
    "host, query, options, reason",
    [
        ("127.0.0.1", "", {"ssl_ca_certs": "other-ca.crt"}, "certificate verify failed"),
        ("127.0.0.1", "", {}, "certificate verify failed"),  # the system's CAs: not the test CA
        ("localhost", "", {"ssl_ca_certs": "ca.crt"}, "certificate verify failed: hostname mismatch"),
        ("127.0.0.1", "", {"ssl_ca_certs": "ca.crt", "ssl_server_hostname": "other.test"},
         "certificate verify failed: hostname mismatch"),
        # The URL's query overrides the keyword.
        ("localhost", "?ssl_check_hostname=true", {"ssl_ca_certs": "ca.crt", "ssl_check_hostname": False},
         "certificate verify failed: hostname mismatch"),
    ],
    ids=["wrong-ca", "system-cas", "localhost", "wrong-server_hostname", "url-overrides-keyword"],
)
def test_failed_verification_fails_open(rediss_dir, namespace, warnings_log, host, query, options, reason):
    tls = rediss_dir / "tls"
    if "ssl_ca_certs" in options:
        options = {**options, "ssl_ca_certs": tls / options["ssl_ca_certs"]}
    url = _bare(rediss_dir, host) + query
    message = _fails_open(url, namespace, warnings_log, reason, **options)
    assert url in message


@pytest.mark.parametrize("cert", [None, "other-client"], ids=["no-client-cert", "client-cert-of-another-ca"])
def test_mutual_tls_refused_fails_open(redis_mtls_dir, namespace, warnings_log, cert):
    tls = redis_mtls_dir / "tls"
    options = {"ssl_ca_certs": tls / "ca.crt"}
    if cert:
        options.update(ssl_certfile=tls / f"{cert}.crt", ssl_keyfile=tls / f"{cert}.key")
    # The server refuses the handshake after it completes on the client's side (TLS 1.3): the
    # reason is the connection's end, seen on the first write or read.
    _fails_open(_bare(redis_mtls_dir), namespace, warnings_log, "TLS", **options)


# --- values refused at init() ---------------------------------------------------------------


@pytest.mark.parametrize(
    "query, options, error, text",
    [
        ("", {"ssl_cert_reqs": "maybe"}, ValueError, "ssl_cert_reqs"),
        ("", {"ssl_cert_reqs": True}, ValueError, "ssl_cert_reqs"),
        ("", {"ssl_check_hostname": 1}, TypeError, "ssl_check_hostname"),
        ("", {"ssl_check_hostname": "true"}, TypeError, "ssl_check_hostname"),
        ("", {"ssl_ca_certs": 5}, TypeError, "ssl_ca_certs"),
        ("", {"ssl_ca_certs": "missing.crt"}, ValueError, "missing.crt"),
        ("", {"ssl_ca_certs": "ca.key"}, ValueError, "ca.key"),  # not a certificate
        ("", {"ssl_ca_certs": "ca.crt", "ssl_certfile": "client.crt"}, ValueError, "ssl_keyfile"),
        ("", {"ssl_ca_certs": "ca.crt", "ssl_certfile": "client.crt", "ssl_keyfile": "other-client.key"},
         ValueError, "other-client.key"),
        ("?ssl_cert_reqs=maybe", {}, ValueError, "ssl_cert_reqs"),
        ("?ssl_check_hostname=maybe", {}, ValueError, "ssl_check_hostname"),
        ("?ssl_bogus=1", {}, ValueError, "ssl_bogus"),
    ],
    ids=[
        "cert_reqs-maybe", "cert_reqs-bool", "check_hostname-int", "check_hostname-str", "ca_certs-int",
        "ca_certs-missing", "ca_certs-not-a-certificate", "certfile-without-keyfile", "key-of-another-cert",
        "url-cert_reqs", "url-check_hostname", "url-unknown",
    ],
)
def test_bad_tls_values_are_refused_at_init(rediss_dir, namespace, query, options, error, text):
    tls = rediss_dir / "tls"
    paths = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
    options = {k: str(tls / v) if k in paths and isinstance(v, str) else v for k, v in options.items()}
    with pytest.raises(error) as raised:
        HTTPCache.init(redis_url=_bare(rediss_dir) + query, namespace=namespace, **options)
    assert text in str(raised.value)


# --- the password is never shown ------------------------------------------------------------


def test_password_never_shown(rediss_dir, rediss_client, namespace, caplog):
    caplog.set_level(logging.DEBUG, logger="httpcache")
    auth_url = (rediss_dir / "url_auth").read_text().strip()
    password = urlsplit(auth_url).password
    assert password and password in auth_url
    texts: list[str] = []

    def refused(**kw) -> None:
        with pytest.raises((ValueError, TypeError)) as raised:
            HTTPCache.init(**kw)
        texts.extend([str(raised.value), repr(raised.value)])

    def backend_error() -> None:
        with pytest.raises(httpcache.Error) as raised:
            HTTPCache.handle().cache.get(b"k")
        texts.extend([str(raised.value), repr(raised.value)])

    # The right password over TLS works.
    HTTPCache.init(redis_url=auth_url, namespace=namespace)
    _assert_cached(namespace, rediss_client)
    # A wrong one (that contains the real one), and a failed handshake with the password in the URL.
    wrong = auth_url.replace(f":{password}@", f":Wrong-{password}@")
    HTTPCache.init(redis_url=wrong, namespace=namespace + "_wrong", breaker_failures=100)
    assert _sync_async_calls(namespace + "_wrong", runs=2) == ["f", "f", "g", "g"]
    backend_error()
    HTTPCache.init(redis_url=auth_url.split("?", 1)[0], namespace=namespace + "_ca", breaker_failures=100,
                   ssl_ca_certs=rediss_dir / "tls" / "other-ca.crt")
    assert _sync_async_calls(namespace + "_ca", runs=2) == ["f", "f", "g", "g"]
    backend_error()
    # Values refused at init(), with the password in the URL.
    refused(redis_url=auth_url, namespace=namespace, ssl_cert_reqs="maybe")
    refused(redis_url=auth_url, namespace=namespace, ssl_check_hostname=1)
    refused(redis_url=auth_url.split("?", 1)[0], namespace=namespace, ssl_ca_certs=str(rediss_dir / "missing.crt"))
    refused(redis_url=auth_url + "&ssl_cert_reqs=maybe", namespace=namespace)

    logged = [r.getMessage() for r in caplog.records if r.name.startswith("httpcache")]
    warnings = [m for m in logged if "unavailable" in m]
    assert len(warnings) == 2, logged
    assert "certificate verify failed" in warnings[1] and "WRONGPASS" in warnings[0], warnings
    assert all("app:***@" in m for m in warnings), warnings
    assert len(texts) == 12
    for text in logged + texts:
        assert password not in text, text


# --- chaos over TLS: kill and revive the server under load ----------------------------------

KEYS = 16


class Load:
    def __init__(self) -> None:
        self.calls = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def record(self, kind: str, i: int, result) -> None:
        with self.lock:
            self.calls += 1
            if result != expected(kind, i):
                self.failures.append(repr(result)[:200])


def test_chaos_kill_revive_over_tls(rediss_url, rediss_dir, namespace, caplog, capsys):
    """tests/python/test_chaos.py's kill and revive, shorter, over TLS: zero failed calls from
    threads and asyncio tasks, and hits again within 1 s of the revival (new handshakes)."""
    caplog.set_level(logging.INFO, logger="httpcache")
    sync_ns, async_ns = namespace + "_sync", namespace + "_async"  # one handle (and breaker) each
    HTTPCache.init(redis_url=rediss_url, namespace=sync_ns, connect_timeout_ms=200, command_timeout_ms=200)

    @cache(key="chaos.{}", obj="i", obj_attr="real", ttl_in_seconds=60, namespace=sync_ns)
    def fsync(i):
        return expected("sync", i)

    @cache(key="chaos.{}", obj="i", obj_attr="real", ttl_in_seconds=60, namespace=async_ns)
    async def fasync(i):
        await asyncio.sleep(0)
        return expected("async", i)

    stop = threading.Event()
    loads = {"sync": Load(), "async": Load()}

    def worker(n: int) -> None:
        while not stop.is_set():
            i, n = n % KEYS, n + 1
            try:
                result = fsync(i)
            except BaseException as e:  # noqa: BLE001 - a failed call, counted
                result = e
            loads["sync"].record("sync", i, result)
            time.sleep(0.001)

    async def task(n: int) -> None:
        while not stop.is_set():
            i, n = n % KEYS, n + 1
            try:
                result = await fasync(i)
            except Exception as e:  # noqa: BLE001 - a failed call, counted
                result = e
            loads["async"].record("async", i, result)
            await asyncio.sleep(0.001)

    async def tasks() -> None:
        await asyncio.gather(*[task(n) for n in range(10)])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=lambda: asyncio.run(tasks())))
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        assert wait_for_hit(sync_ns, 1) is not None and wait_for_hit(async_ns, 1) is not None  # warmed up
        subprocess.run([str(FIXTURE), "kill", str(rediss_dir)], check=True, capture_output=True, timeout=30)
        time.sleep(0.7)
        subprocess.run([str(FIXTURE), "revive", str(rediss_dir)], check=True, capture_output=True, timeout=30)
        resumed = {"sync": wait_for_hit(sync_ns, 3), "async": wait_for_hit(async_ns, 3)}
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    stats = {kind: HTTPCache.handle(ns).cache.stats() for kind, ns in (("sync", sync_ns), ("async", async_ns))}
    logged = {}
    for kind, ns in (("sync", sync_ns), ("async", async_ns)):
        logged[kind] = "".join(
            "W" if r.levelno == logging.WARNING else "B"
            for r in caplog.records
            if r.name == "httpcache" and repr(ns) in r.getMessage()
        )
    with capsys.disabled():
        for kind in ("sync", "async"):
            after = resumed[kind]
            print(
                f"\npython chaos over TLS ({kind}): {loads[kind].calls} calls, {len(loads[kind].failures)} failed; "
                f"hits resumed {None if after is None else round(1000 * after, 1)} ms after revive; "
                f"backend errors {stats[kind]['errors']}, breaker trips {stats[kind]['breaker_trips']}; "
                f"log {logged[kind]}",
                end="",
            )
        print()

    for kind, load in loads.items():
        assert load.calls > 200, (kind, load.calls)
        assert load.failures == [], (kind, load.failures[:5])
        assert resumed[kind] is not None and resumed[kind] <= 1.0, (kind, resumed)
        assert stats[kind]["breaker_trips"] >= 1, stats[kind]
        # Logged once when the outage starts and once when it is over (a loaded machine may see
        # a timeout of its own outside the outage: logged the same way, in pairs).
        assert re.fullmatch(r"(WB)+", logged[kind]), (kind, logged[kind])
