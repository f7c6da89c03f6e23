# SPDX-License-Identifier: MIT
"""AUTH and least privilege, end to end, against the fixture's ACL users
(tests/fixtures/redis_server.sh): `app` (a password, every permission), `confined` (GET SET DEL
PTTL EVAL on keys `confined:*`, nothing else; AUTH needs no permission), `confined_lock`
(the same plus `httpcache-lock!confined:*` for lock_ttl_ms), `confined_tags` (plus MGET and
the tag and refresh keys) and `confined_near` (plus the near tier's report links). The ACL lines
are those of
README.md's "Redis permissions"."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from urllib.parse import urlsplit

import pytest
import redis as redis_py

import httpcache
from httpcache import HTTPCache, cache, invalidate_cache

_n = itertools.count()


def _key(prefix: str) -> str:
    """A key unique to this process and call (the confined namespace is fixed: `confined`)."""
    return f"{prefix}-{os.getpid()}-{next(_n)}"


@pytest.fixture(autouse=True)
def _reset():
    yield
    HTTPCache.close()


@pytest.fixture
def all_logs(caplog):
    """Every record of the `httpcache` logger, DEBUG and up, formatted."""
    caplog.set_level(logging.DEBUG, logger="httpcache")
    return lambda: [r.getMessage() for r in caplog.records if r.name.startswith("httpcache")]


def test_user_and_password_work(redis_auth_url, redis_client, namespace):
    HTTPCache.init(redis_url=redis_auth_url, namespace=namespace)
    calls = []

    @cache(key="a", ttl_in_seconds=60)
    def f():
        calls.append(1)
        return "v"

    assert f() == "v" and f() == "v"
    assert len(calls) == 1
    assert redis_client.get(f"{namespace}:a") == b'"v"'  # stored, as the default user sees it
    assert HTTPCache.stats()["errors"] == 0


def _wrong_password_url(url: str) -> tuple[str, str]:
    """(url with a wrong password that contains the real one, the real password)."""
    real = urlsplit(url).password
    return url.replace(f":{real}@", f":Wrong-{real}@"), real


def test_wrong_password_fails_open_and_never_shows_the_password(redis_auth_url, namespace, all_logs):
    bad_url, real = _wrong_password_url(redis_auth_url)
    HTTPCache.init(redis_url=bad_url, namespace=namespace)
    calls = []

    @cache(key="w", ttl_in_seconds=60)
    def f():
        calls.append(1)
        return "computed"

    assert f() == "computed" and f() == "computed"
    assert len(calls) == 2  # never cached
    stats = HTTPCache.stats()
    assert stats["errors"] >= 2 and stats["stores"] == 0 and stats["hits"] == 0, stats

    with pytest.raises(httpcache.Error) as raised:
        HTTPCache.handle().cache.get(b"w")
    message = str(raised.value)
    assert "WRONGPASS" in message and "invalid username-password pair" in message  # authentication failed
    assert "***" in message

    logs = all_logs()
    # One WARNING for the outage, saying authentication failed; never a "back".
    outages = [line for line in logs if "unavailable" in line]
    assert len(outages) == 1 and "redis://app:***@" in outages[0] and "WRONGPASS" in outages[0], logs
    assert not any(" back " in line for line in logs), logs
    for text in logs + [message, repr(raised.value)]:
        assert real not in text, text


def test_wrong_password_async_fails_open(redis_auth_url, redis_client, namespace, all_logs):
    """Requests pipelined behind a refused AUTH would run as the server's default user (here
    without a password): they are held until AUTH succeeds, and fail when it does not."""
    bad_url, real = _wrong_password_url(redis_auth_url)
    HTTPCache.init(redis_url=bad_url, namespace=namespace)
    calls = []

    @cache(key="wa", ttl_in_seconds=60)
    async def g():
        calls.append(1)
        return "computed"

    async def run():
        for _ in range(6):
            assert await g() == "computed"

    asyncio.run(run())
    logs = all_logs()
    for text in logs:
        assert real not in text, text
    outages = [line for line in logs if "unavailable" in line]
    assert len(outages) == 1 and "WRONGPASS" in outages[0], logs
    assert not any(" back " in line for line in logs), logs
    assert redis_client.get(f"{namespace}:wa") is None  # nothing ran as the default user
    stats = HTTPCache.stats()
    assert len(calls) == 6 and stats["stores"] == 0 and stats["hits"] == 0 and stats["misses"] == 0, stats


def _confined_paths(url: str) -> None:
    """get/set/invalidate/get_or_compute through the decorators, sync and async (the non-blocking
    API), with no backend error."""
    HTTPCache.init(redis_url=url, namespace="confined")
    k_sync, k_async = _key("py"), _key("pya")
    calls = []

    @cache(key=k_sync, ttl_in_seconds=60)
    def f():
        calls.append("f")
        return "sync"

    @invalidate_cache(key=k_sync)
    def drop():
        return None

    @cache(key=k_async, ttl_in_seconds=60)
    async def g():
        calls.append("g")
        return "async"

    @invalidate_cache(key=k_async)
    async def adrop():
        return None

    assert f() == "sync" and f() == "sync"
    assert calls == ["f"]
    drop()
    assert f() == "sync" and calls == ["f", "f"]

    async def run():
        assert await g() == "async" and await g() == "async"
        await adrop()
        assert await g() == "async"

    asyncio.run(run())
    assert calls == ["f", "f", "g", "g"]
    stats = HTTPCache.stats()
    assert stats["errors"] == 0, stats
    assert stats["stores"] >= 3 and stats["hits"] >= 2, stats


def test_confined_user_core_paths(redis_confined_url, redis_client):
    _confined_paths(redis_confined_url)
    # The raw value is there for any client, under confined:.
    assert any(k.startswith(b"confined:py-") for k in redis_client.scan_iter(match="confined:py-*"))


def test_confined_user_outside_its_namespace_is_refused(redis_confined_url, redis_client):
    HTTPCache.init(redis_url=redis_confined_url, namespace="elsewhere")
    with pytest.raises(httpcache.Error) as raised:
        HTTPCache.handle().cache.set(b"k", b"v", httpcache._httpcache.Policy.seconds(60))
    assert "NOPERM" in str(raised.value)
    assert redis_client.get("elsewhere:k") is None
    # And redis-py as the same user is refused the same way: the server enforces it.
    url = urlsplit(redis_confined_url)
    client = redis_py.Redis(host=url.hostname, port=url.port, username=url.username, password=url.password)
    with pytest.raises(redis_py.exceptions.NoPermissionError):
        client.set("elsewhere:k", "v")
    client.close()


def test_stampede_lock_needs_eval_and_the_lock_keys(redis_confined_url, redis_confined_lock_url):
    key = _key("lock")
    calls = []

    def compute():
        calls.append(1)
        return "v"

    # `confined`: the lock's SET NX PX on httpcache-lock!confined:... is refused: computed, not stored.
    HTTPCache.init(redis_url=redis_confined_url, namespace="confined", lock_ttl_ms=2000, breaker_failures=100)
    f = cache(key=key, ttl_in_seconds=60)(compute)
    assert f() == "v" and f() == "v"
    assert len(calls) == 2 and HTTPCache.stats()["stores"] == 0 and HTTPCache.stats()["errors"] >= 2
    # `confined_lock`: stores once, releases with EVAL, no error.
    HTTPCache.init(redis_url=redis_confined_lock_url, namespace="confined", lock_ttl_ms=2000)
    f = cache(key=key, ttl_in_seconds=60)(compute)
    assert f() == "v" and f() == "v"
    assert len(calls) == 3
    assert HTTPCache.stats()["errors"] == 0 and HTTPCache.stats()["stores"] == 1


def test_confined_lock_user_core_paths(redis_confined_lock_url):
    _confined_paths(redis_confined_lock_url)


def test_tags_and_stale_windows_need_their_keys(redis_confined_url, redis_confined_tags_url):
    """The README's rule for tags and stale windows: `confined` (no tag keys) computes tagged
    calls without storing (NOPERM, counted as errors); `confined_tags` stores, invalidates by tag
    and refreshes a stale entry, with no error."""
    import time

    key = _key("tags")
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    HTTPCache.init(redis_url=redis_confined_url, namespace="confined", breaker_failures=100)
    f = cache(key=key, ttl_in_seconds=60, tags=["t1"])(compute)
    assert f() == 1 and f() == 2 and HTTPCache.stats()["stores"] == 0 and HTTPCache.stats()["errors"] >= 2

    HTTPCache.init(redis_url=redis_confined_tags_url, namespace="confined")
    f = cache(key=key, ttl_in_seconds=1, tags=["t1"], stale_while_revalidate=30)(compute)
    assert f() == 3 and f() == 3
    HTTPCache.invalidate_tags("t1")
    assert f() == 4 and f() == 4
    time.sleep(1.2)
    assert f() == 5 and f() == 5  # the refresh took httpcache-refresh!confined:... and stored
    assert HTTPCache.stats()["errors"] == 0


def test_near_tier_needs_its_link_rights(redis_confined_tags_url, redis_confined_near_url):
    """The README's rule for near_cache: `confined_tags` (no CLIENT/SUBSCRIBE) still caches, every
    hit from Redis (the tier stays empty, no error counted: the link fails on its own);
    `confined_near` gets near hits, tagged ones included, and sees an invalidation at once."""
    import time

    key = _key("near")
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    def hits_after_warm_up(f) -> int:
        for _ in range(100):  # the link subscribes in the background
            f()
            time.sleep(0.01)
        return HTTPCache.stats()["near_hits"]

    HTTPCache.init(redis_url=redis_confined_tags_url, namespace="confined", near_cache=True)
    f = cache(key=key, ttl_in_seconds=60, tags=["t2"])(compute)
    assert hits_after_warm_up(f) == 0 and HTTPCache.stats()["errors"] == 0 and calls == [1]

    HTTPCache.init(redis_url=redis_confined_near_url, namespace="confined", near_cache=True)
    f = cache(key=key + ".2", ttl_in_seconds=60, tags=["t2"])(compute)
    assert hits_after_warm_up(f) > 50 and len(calls) == 2
    HTTPCache.invalidate_tags("t2")
    assert f() == 3 and HTTPCache.stats()["errors"] == 0
