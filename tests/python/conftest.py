# SPDX-License-Identifier: MIT
"""Shared fixtures: the private redis-server of the CTest `redis` fixture, the local Redis Cluster
of the CTest `cluster` fixture, the TLS servers of the `redis_tls`, `redis_mtls` and `cluster_tls`
fixtures, the Sentinel deployments of the `sentinel` and `sentinel_tls` fixtures, and a configured
HTTPCache per test on each backend (memory://, one Redis server, the same over TLS, the cluster).

The Redis halves never skip: without HTTPCACHE_TEST_REDIS_DIR, HTTPCACHE_TEST_REDIS_TLS_DIR,
HTTPCACHE_TEST_CLUSTER_DIR (or, for the tests that use them, HTTPCACHE_TEST_REDIS_MTLS_DIR,
HTTPCACHE_TEST_CLUSTER_TLS_DIR, HTTPCACHE_TEST_SENTINEL_DIR, HTTPCACHE_TEST_SENTINEL_TLS_DIR), all
set by CTest, the tests fail and say how to start the server by hand.

HTTPCACHE_TEST_LOOP=uvloop (CTest's python_wheel_cp311) runs every test's event loop on uvloop, the
loop uvicorn picks whenever it is installed; unset or "asyncio", the default loop.

HTTPCACHE_TEST_SHARD=K/N (CTest's python_shard1 and python_shard2) runs every N-th test from the
K-th on: the shards together are the whole suite, each on a fixture set of its own."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pathlib

import pytest
import redis as redis_py
from redis.cluster import ClusterNode, RedisCluster

import httpcache
from httpcache import HTTPCache, _httpcache

_counter = itertools.count()


def _fixture_dir(variable: str, how: str) -> pathlib.Path:
    d = os.environ.get(variable)
    if not d or not (pathlib.Path(d) / "url").exists():
        pytest.fail(
            f"{variable} is not set or has no url file: run through ctest, or start one with "
            f"{how} and export {variable}=DIR",
            pytrace=False,
        )
    return pathlib.Path(d)


def _redis_dir() -> pathlib.Path:
    return _fixture_dir("HTTPCACHE_TEST_REDIS_DIR", "tests/fixtures/redis_server.sh start DIR")


def _cluster_dir() -> pathlib.Path:
    return _fixture_dir("HTTPCACHE_TEST_CLUSTER_DIR", "tests/fixtures/redis_cluster.sh start DIR 0")


def _redis_tls_dir() -> pathlib.Path:
    return _fixture_dir("HTTPCACHE_TEST_REDIS_TLS_DIR", "tests/fixtures/redis_server.sh start DIR tls")


def _redis_mtls_dir() -> pathlib.Path:
    return _fixture_dir("HTTPCACHE_TEST_REDIS_MTLS_DIR", "tests/fixtures/redis_server.sh start DIR mtls")


def _cluster_tls_dir() -> pathlib.Path:
    return _fixture_dir("HTTPCACHE_TEST_CLUSTER_TLS_DIR", "tests/fixtures/redis_cluster.sh start DIR 0 tls")


def _sentinel_dir() -> pathlib.Path:
    return _fixture_dir("HTTPCACHE_TEST_SENTINEL_DIR", "tests/fixtures/redis_sentinel.sh start DIR")


def _sentinel_tls_dir() -> pathlib.Path:
    return _fixture_dir("HTTPCACHE_TEST_SENTINEL_TLS_DIR", "tests/fixtures/redis_sentinel.sh start DIR tls")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return (_redis_dir() / "url").read_text().strip()


@pytest.fixture(scope="session")
def redis_socket() -> str:
    return (_redis_dir() / "socket").read_text().strip()


@pytest.fixture
def redis_pid() -> int:
    """The server's pid, read for each test: the chaos test revives the server (a new pid)."""
    return int((_redis_dir() / "pid").read_text().strip())


@pytest.fixture(scope="session")
def redis_dir() -> pathlib.Path:
    """The fixture's directory, for tests/fixtures/redis_server.sh kill|revive DIR."""
    return _redis_dir()


@pytest.fixture(scope="session")
def redis_auth_url() -> str:
    """redis://app:PASSWORD@host:port: an ACL user with a password and every permission."""
    return (_redis_dir() / "url_auth").read_text().strip()


@pytest.fixture(scope="session")
def redis_confined_url() -> str:
    """The ACL user `confined`: GET SET DEL PTTL (AUTH needs no permission; no SELECT) on
    keys `confined:*` only (README "Redis permissions"); use namespace "confined"."""
    return (_redis_dir() / "url_confined").read_text().strip()


@pytest.fixture(scope="session")
def redis_confined_lock_url() -> str:
    """The ACL user `confined_lock`: `confined`'s rights plus EVAL and `httpcache-lock!confined:*`."""
    return (_redis_dir() / "url_confined_lock").read_text().strip()


@pytest.fixture(scope="session")
def redis_confined_tags_url() -> str:
    """The ACL user `confined_tags`: `confined`'s rights plus MGET and the tag and refresh keys."""
    return (_redis_dir() / "url_confined_tags").read_text().strip()


@pytest.fixture(scope="session")
def redis_confined_near_url() -> str:
    """The ACL user `confined_near`: `confined_tags`' rights plus the near tier's report links."""
    return (_redis_dir() / "url_confined_near").read_text().strip()


@pytest.fixture(scope="session")
def redis_client(redis_url):
    client = redis_py.Redis.from_url(redis_url)
    client.ping()
    return client


@pytest.fixture(scope="session")
def rediss_dir() -> pathlib.Path:
    """The TLS server's directory (redis_server.sh kill|revive DIR keep TLS); its certificates are
    in DIR/tls: ca.crt, server.crt (SAN DNS:redis.test, IP:127.0.0.1, not localhost), client.crt
    and .key, other-ca.crt, other-client.crt and .key, capath/."""
    return _redis_tls_dir()


@pytest.fixture(scope="session")
def rediss_url() -> str:
    """rediss://127.0.0.1:PORT?ssl_ca_certs=DIR/tls/ca.crt: the TLS-only server."""
    return (_redis_tls_dir() / "url").read_text().strip()


@pytest.fixture(scope="session")
def rediss_client(rediss_url):
    """redis-py on the TLS server (it takes the URL's ssl_ca_certs as written)."""
    client = redis_py.Redis.from_url(rediss_url)
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_mtls_dir() -> pathlib.Path:
    """The mutual-TLS server's directory (DIR/url names the client certificate, DIR/tls)."""
    return _redis_mtls_dir()


@pytest.fixture(scope="session")
def cluster_tls_dir() -> pathlib.Path:
    """The TLS cluster's directory (DIR/url: rediss+cluster://...?ssl_ca_certs=..., DIR/ports)."""
    return _cluster_tls_dir()


@pytest.fixture(scope="session")
def sentinel_dir() -> pathlib.Path:
    """The Sentinel deployment's directory (DIR/url redis+sentinel://.../mymaster, DIR/master_port;
    redis_sentinel.sh kill-master|wait-failover|revive DIR)."""
    return _sentinel_dir()


@pytest.fixture(scope="session")
def sentinel_tls_dir() -> pathlib.Path:
    """The same over TLS only (DIR/url rediss+sentinel://...?ssl_ca_certs=..., DIR/tls)."""
    return _sentinel_tls_dir()


@pytest.fixture(scope="session")
def cluster_url() -> str:
    """redis+cluster://host:port,host:port (seed nodes of the 3-master cluster)."""
    return (_cluster_dir() / "url").read_text().strip()


@pytest.fixture(scope="session")
def cluster_client(cluster_url):
    """A cluster-aware redis-py client (routes each key to its slot's master)."""
    ports = (_cluster_dir() / "ports").read_text().split()
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", int(p)) for p in ports])
    client.ping()
    yield client
    client.close()


@pytest.fixture
def namespace() -> str:
    return f"t{os.getpid()}_{next(_counter)}"


@pytest.fixture(params=["memory", "redis", "rediss", "cluster"])
def backend(request) -> str:
    """The URL of each backend in turn: memory://, one Redis server, the same over TLS
    (rediss://), the Redis Cluster."""
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(params=["redis", "rediss", "cluster"])
def redis_backend(request) -> str:
    """The URL of each Redis backend in turn: one server, the same over TLS, then the cluster."""
    return request.getfixturevalue(f"{request.param}_url")


def client_for(request, url: str):
    """The redis-py client that reads what the cache stored under `url`: cluster-aware for a
    redis+cluster:// URL, over TLS for a rediss:// one, None for memory://."""
    if url.startswith("redis+cluster://"):
        return request.getfixturevalue("cluster_client")
    if url.startswith("rediss://"):
        return request.getfixturevalue("rediss_client")
    if url.startswith(("redis://", "unix://")):
        return request.getfixturevalue("redis_client")
    return None


@pytest.fixture
def backend_client(backend, request):
    """redis-py's view of `backend` (None on memory://)."""
    return client_for(request, backend)


@pytest.fixture
def redis_backend_client(redis_backend, request):
    """redis-py's view of `redis_backend`."""
    return client_for(request, redis_backend)


class Store:
    """Reads what the cache stored, through the C library (works on both backends), and for
    Redis also straight from the server with redis-py (the bytes any other client sees)."""

    def __init__(self, url: str, namespace: str, client) -> None:
        self.url = url
        self.namespace = namespace
        self.client = client

    def get(self, key: str, namespace: str | None = None) -> bytes | None:
        ns = namespace or self.namespace
        try:
            value, _ = HTTPCache.handle(ns).cache.get(key.encode())
        except httpcache.CacheMiss:
            value = None
        if self.client is not None:
            assert self.client.get(f"{ns}:{key}") == value
        return value

    def ttl_ms(self, key: str, namespace: str | None = None) -> int:
        ns = namespace or self.namespace
        _, ttl = HTTPCache.handle(ns).cache.get(key.encode())
        if self.client is not None:
            assert abs(self.client.pttl(f"{ns}:{key}") - ttl) < 1000
        return ttl

    def put(self, key: str, value: bytes, namespace: str | None = None) -> None:
        ns = namespace or self.namespace
        HTTPCache.handle(ns).cache.set(key.encode(), value, _httpcache.Policy.seconds(60))


@pytest.fixture
def store(backend, backend_client, namespace) -> Store:
    """HTTPCache configured on `backend` with a fresh namespace; the stored entries."""
    HTTPCache.init(redis_url=backend, namespace=namespace, tz="UTC")
    yield Store(backend, namespace, backend_client)
    HTTPCache.close()


@pytest.fixture
def warnings_log(caplog):
    """The httpcache logger's WARNING records of the test."""
    caplog.set_level(logging.WARNING, logger="httpcache")

    def records():
        return [r for r in caplog.records if r.name == "httpcache" and r.levelno == logging.WARNING]

    return records


@pytest.fixture
def client(app):
    """FastAPI's TestClient (lifespan included) on the module's own `app` fixture."""
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


# The event loop of the run (HTTPCACHE_TEST_LOOP). Two mechanisms, because tests make loops two ways:
# - pytest-asyncio's tests and fixtures: its pytest_asyncio_loop_factories hook, the supported way
#   in 1.x (overriding the event_loop_policy fixture is deprecated there). Defined only under the
#   switch: with one factory the test ids stay unchanged, and without the switch there is none.
# - asyncio.run() and asyncio.new_event_loop() in sync tests, and the loop FastAPI's TestClient
#   runs the app on (anyio's portal thread): they take the global policy, set for the session.
TEST_LOOPS = ("asyncio", "uvloop")
TEST_LOOP = os.environ.get("HTTPCACHE_TEST_LOOP") or "asyncio"
_policy_before_session = None


def pytest_configure(config):
    global _policy_before_session
    if TEST_LOOP not in TEST_LOOPS:
        raise pytest.UsageError(f"HTTPCACHE_TEST_LOOP={TEST_LOOP!r}: must be one of {', '.join(TEST_LOOPS)}")
    if TEST_LOOP == "uvloop":
        import uvloop

        _policy_before_session = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def pytest_unconfigure(config):
    if _policy_before_session is not None:
        asyncio.set_event_loop_policy(_policy_before_session)


def pytest_report_header(config):
    return f"httpcache test loop: {TEST_LOOP} (HTTPCACHE_TEST_LOOP)"


def _shard() -> tuple[int, int] | None:
    spec = os.environ.get("HTTPCACHE_TEST_SHARD")
    if not spec:
        return None
    k, _, n = spec.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise pytest.UsageError(f"HTTPCACHE_TEST_SHARD={spec!r}: must be K/N with 1 <= K <= N")
    return int(k), int(n)


def pytest_collection_modifyitems(config, items):
    # Interleaved rather than cut in halves: neighbouring tests (one file, its parameters) cost
    # alike, so each shard gets about half of every file's time.
    shard = _shard()
    if shard is None:
        return
    k, n = shard
    kept = [item for i, item in enumerate(items) if i % n == k - 1]
    config.hook.pytest_deselected(items=[item for i, item in enumerate(items) if i % n != k - 1])
    items[:] = kept


if TEST_LOOP == "uvloop":

    def pytest_asyncio_loop_factories(config, item):
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
