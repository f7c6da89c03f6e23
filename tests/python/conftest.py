# SPDX-License-Identifier: MIT
"""Shared fixtures: the private redis-server of the CTest `redis` fixture, the local Redis Cluster
of the CTest `cluster` fixture, and a configured HTTPCache per test on each backend (memory://,
one Redis server, the cluster).

The Redis halves never skip: without HTTPCACHE_TEST_REDIS_DIR or HTTPCACHE_TEST_CLUSTER_DIR (set
by CTest) the tests fail and say how to start the server or the cluster by hand."""

from __future__ import annotations

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
def redis_client(redis_url):
    client = redis_py.Redis.from_url(redis_url)
    client.ping()
    return client


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


@pytest.fixture(params=["memory", "redis", "cluster"])
def backend(request) -> str:
    """The URL of each backend in turn: memory://, one Redis server, the Redis Cluster."""
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(params=["redis", "cluster"])
def redis_backend(request) -> str:
    """The URL of each Redis backend in turn: one server, then the cluster."""
    return request.getfixturevalue(f"{request.param}_url")


def client_for(request, url: str):
    """The redis-py client that reads what the cache stored under `url`: cluster-aware for a
    redis+cluster:// URL, None for memory://."""
    if url.startswith("redis+cluster://"):
        return request.getfixturevalue("cluster_client")
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
