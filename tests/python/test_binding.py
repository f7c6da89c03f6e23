# SPDX-License-Identifier: MIT
"""The extension itself: the status-to-exception mapping and the handle's calls."""

from __future__ import annotations

import asyncio
import socket

import pytest

import httpcache
from httpcache import _httpcache as h


@pytest.fixture(params=["memory", "redis", "cluster"])
def raw_cache(request, namespace):
    url = "memory://" if request.param == "memory" else request.getfixturevalue(f"{request.param}_url")
    c = h.Cache(url, namespace, "Europe/London")
    yield c
    c.close()


def test_error_mapping():
    with pytest.raises(httpcache.CacheMiss) as info:
        h.raise_for(h.ENOTFOUND)
    assert isinstance(info.value, KeyError) and info.value.code == h.ENOTFOUND
    with pytest.raises(ValueError):
        h.raise_for(h.EINVALID)
    with pytest.raises(MemoryError):
        h.raise_for(h.ENOMEM)
    for code in (h.ERROR, h.EBACKEND, h.ETIMEOUT, h.EVERSION, h.ECANCELED, h.EUSER, h.EBUFS):
        with pytest.raises(httpcache.Error) as info:
            h.raise_for(code)
        assert info.value.code == code
        assert not isinstance(info.value, (KeyError, ValueError))
        assert str(info.value) == h.strerror(code)
    h.raise_for(h.OK)


def test_calls(raw_cache):
    c = raw_cache
    assert c.full_key(b"k") == c.namespace.encode() + b":k"
    with pytest.raises(httpcache.CacheMiss) as info:
        c.get(b"missing")
    assert info.value.code == h.ENOTFOUND and "miss" in str(info.value)
    assert c.set(b"k", b"\x00bin\xff", h.Policy.seconds(30)) == 30
    value, ttl_ms = c.get(b"k")
    assert value == b"\x00bin\xff" and 28_000 < ttl_ms <= 30_000
    assert c.invalidate([b"k", b"nothing"]) == 1
    assert c.get_or_compute(b"g", h.Policy.end_of_week(), lambda: (b"no", False))[2] == h.OUTCOME_UNCACHED
    v, ttl_ms, outcome = c.get_or_compute(b"g", h.Policy.end_of_day(), lambda: b"yes")
    assert (v, outcome) == (b"yes", h.OUTCOME_STORED)
    assert c.get_or_compute(b"g", h.Policy.end_of_day(), lambda: b"other")[::2] == (b"yes", h.OUTCOME_HIT)
    assert c.ttl(h.Policy.seconds(5)) == 5
    assert c.ttl(h.Policy.callback(lambda: 77)) == 77
    stats = c.stats()
    assert stats["hits"] >= 2 and stats["stores"] >= 2


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda c: c.get(b""), "key"),
        (lambda c: c.set(b"k" * 5000, b"v", h.Policy.seconds(1)), "key"),
        (lambda c: c.set(b"k", b"v", h.Policy.seconds(0)), "TTL"),
        (lambda c: c.set(b"k", b"v", h.Policy.callback(lambda: -1)), "TTL"),
        (lambda c: c.invalidate([]), "key"),
        (lambda c: c.ttl(h.Policy.seconds(-3)), "TTL"),
    ],
)
def test_invalid_arguments_are_value_errors_with_the_library_message(raw_cache, call, needle):
    with pytest.raises(ValueError) as info:
        call(raw_cache)
    assert needle in str(info.value)


def test_compute_exception_comes_back_unchanged(raw_cache):
    err = LookupError("mine")
    with pytest.raises(LookupError) as info:
        raw_cache.get_or_compute(b"e", h.Policy.seconds(5), lambda: (_ for _ in ()).throw(err))
    assert info.value is err
    with pytest.raises(TypeError):
        raw_cache.get_or_compute(b"e", h.Policy.seconds(5), lambda: "not bytes")
    with pytest.raises(httpcache.CacheMiss):
        raw_cache.get(b"e")


def test_closed_handle(namespace):
    c = h.Cache("memory://", namespace)
    c.close()
    assert c.closed
    with pytest.raises(ValueError):
        c.get(b"k")
    with h.Cache("memory://", namespace) as c2:
        assert not c2.closed
    assert c2.closed


def test_backend_errors_are_httpcache_errors(namespace):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = h.Cache(f"redis://127.0.0.1:{port}", namespace, connect_timeout_ms=200)
    with pytest.raises(httpcache.Error) as info:
        c.get(b"k")
    assert info.value.code in (h.EBACKEND, h.ETIMEOUT)
    assert not isinstance(info.value, KeyError)
    # Fail open: get_or_compute computes and returns uncached.
    assert c.get_or_compute(b"k", h.Policy.seconds(5), lambda: b"v") == (b"v", 0, h.OUTCOME_UNCACHED)


def test_key_format():
    assert h.key_format(b"a.{}.b", [b"1"]) == b"a.1.b"
    assert h.key_format(b"{{literal}}", []) == b"{literal}"
    with pytest.raises(ValueError):
        h.key_format(b"a.{}", [])
    with pytest.raises(ValueError):
        h.key_format(b"a", [b"x"])


async def test_async_context_start_errors_leave_the_future_alone(raw_cache):
    loop = asyncio.get_running_loop()
    ctx = h.AsyncContext(raw_cache, lambda fd, ev: None)
    fut = loop.create_future()
    with pytest.raises(ValueError):
        ctx.get(b"", fut)
    with pytest.raises(ValueError):
        ctx.set(b"k", b"v", h.Policy.seconds(0), fut)
    with pytest.raises(ValueError):
        ctx.invalidate([], fut)
    assert not fut.done()
    ctx.close()
    assert ctx.closed
    with pytest.raises(ValueError):
        ctx.get(b"k", fut)
    ctx.process(h.EV_READ)  # a queued reader callback after close is harmless


async def test_async_context_close_cancels_pending(redis_backend, namespace):
    c = h.Cache(redis_backend, namespace)
    watched = []
    loop = asyncio.get_running_loop()
    ctx = h.AsyncContext(c, lambda fd, ev: watched.append((fd, ev)))
    fut = loop.create_future()
    ctx.get(b"k", fut)  # connecting: nobody drives the loop for this context
    assert ctx.pending() == 1 and ctx.timeout_ms() >= 0
    assert watched and watched[-1][1] != 0
    ctx.close()
    assert fut.done() and fut.result()[0] == h.ECANCELED
    assert watched[-1][1] == 0  # told to stop watching
    c.close()
