# SPDX-License-Identifier: MIT
"""Shared fixtures: the private redis-server of the CTest `redis` fixture, and a configured
HTTPCache per test on each backend (memory:// and Redis).

The Redis half never skips: without HTTPCACHE_TEST_REDIS_DIR (set by CTest) the tests fail
and say how to start the server by hand."""

from __future__ import annotations

import itertools
import logging
import os
import pathlib

import pytest
import redis as redis_py

import httpcache
from httpcache import HTTPCache, _httpcache

_counter = itertools.count()


def _redis_dir() -> pathlib.Path:
    d = os.environ.get("HTTPCACHE_TEST_REDIS_DIR")
    if not d or not (pathlib.Path(d) / "url").exists():
        pytest.fail(
            "HTTPCACHE_TEST_REDIS_DIR is not set or has no url file: run through ctest, or "
            "start one with tests/fixtures/redis_server.sh start DIR and export HTTPCACHE_TEST_REDIS_DIR=DIR",
            pytrace=False,
        )
    return pathlib.Path(d)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return (_redis_dir() / "url").read_text().strip()


@pytest.fixture(scope="session")
def redis_socket() -> str:
    return (_redis_dir() / "socket").read_text().strip()


@pytest.fixture(scope="session")
def redis_pid() -> int:
    return int((_redis_dir() / "pid").read_text().strip())


@pytest.fixture(scope="session")
def redis_client(redis_url):
    client = redis_py.Redis.from_url(redis_url)
    client.ping()
    return client


@pytest.fixture
def namespace() -> str:
    return f"t{os.getpid()}_{next(_counter)}"


@pytest.fixture(params=["memory", "redis"])
def backend(request) -> str:
    """The URL of each backend in turn."""
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("redis_url")


class Store:
    """Reads what the cache stored, through the C library (works on both backends), and for
    Redis also straight from the server with redis-py (the bytes any other client sees)."""

    def __init__(self, url: str, namespace: str, client) -> None:
        self.url = url
        self.namespace = namespace
        self.client = client if url.startswith("redis") else None

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
def store(backend, namespace, request) -> Store:
    """HTTPCache configured on `backend` with a fresh namespace; the stored entries."""
    HTTPCache.init(redis_url=backend, namespace=namespace, tz="UTC")
    client = request.getfixturevalue("redis_client") if backend.startswith("redis") else None
    yield Store(backend, namespace, client)
    HTTPCache.close()


@pytest.fixture
def warnings_log(caplog):
    """The httpcache logger's WARNING records of the test."""
    caplog.set_level(logging.WARNING, logger="httpcache")

    def records():
        return [r for r in caplog.records if r.name == "httpcache" and r.levelno == logging.WARNING]

    return records
