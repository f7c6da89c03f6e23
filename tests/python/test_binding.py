# SPDX-License-Identifier: MIT
"""The extension itself: the status-to-exception mapping and the handle's calls."""

from __future__ import annotations

import asyncio
import pathlib
import re
import socket
import time

import pytest

import httpcache
from httpcache import _httpcache as h


@pytest.fixture(params=["memory", "redis", "cluster"])
def raw_cache(request, namespace):
    url = "memory://" if request.param == "memory" else request.getfixturevalue(f"{request.param}_url")
    c = h.Cache(url, namespace, "Europe/London")
    yield c
    c.close()


def test_error_mapping(namespace):
    """Statuses become exceptions through real calls: ENOTFOUND -> CacheMiss (a KeyError and an
    httpcache.Error), EINVALID -> ValueError with the library's message; backend failures are
    covered by test_backend_errors_are_httpcache_errors."""
    c = h.Cache("memory://", namespace)
    with pytest.raises(h.CacheMiss) as info:
        c.get(b"missing")
    assert isinstance(info.value, KeyError) and isinstance(info.value, h.Error)
    assert info.value.code == h.ENOTFOUND and info.value.args == ("cache miss",)
    with pytest.raises(ValueError) as info:
        c.get(b"")
    assert not isinstance(info.value, h.Error) and "key" in str(info.value)
    with pytest.raises(ValueError) as info:
        h.Cache("nosuch://host", namespace)
    assert "nosuch" in str(info.value)
    with pytest.raises(ValueError):
        h.Cache("memory://", "no:colons")
    with pytest.raises(ValueError):
        h.Cache("memory://", namespace, "Not/AZone")
    c.close()
    assert not hasattr(h, "raise_for")  # tests only: not part of the module


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
    v, ttl_ms, outcome, failure = c.get_or_compute(b"g", h.Policy.end_of_day(), lambda: b"yes")
    assert (v, outcome, failure) == (b"yes", h.OUTCOME_STORED, None)
    assert c.get_or_compute(b"g", h.Policy.end_of_day(), lambda: b"other")[:3:2] == (b"yes", h.OUTCOME_HIT)
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
    # Fail open: get_or_compute computes and returns uncached, and says why.
    value, ttl_ms, outcome, failure = c.get_or_compute(b"k", h.Policy.seconds(5), lambda: b"v")
    assert (value, ttl_ms, outcome) == (b"v", 0, h.OUTCOME_UNCACHED)
    assert failure and ("connect" in failure or "circuit breaker" in failure), failure


def test_key_format():
    assert h.key_format(b"a.{}.b", [b"1"]) == b"a.1.b"
    assert h.key_format(b"{{literal}}", []) == b"{literal}"
    with pytest.raises(ValueError):
        h.key_format(b"a.{}", [])
    with pytest.raises(ValueError):
        h.key_format(b"a", [b"x"])
    many = [b"%d" % i for i in range(6)]  # more than the few held on the stack
    assert h.key_format(b"{}.{}.{}.{}.{}.{}", many) == b"0.1.2.3.4.5"
    for bad in [("a.{}", [b"x"]), (b"a.{}", ["x"]), (b"a.{}", b"x"), (b"a.{}",)]:
        with pytest.raises(TypeError):
            h.key_format(*bad)


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


HEADER = pathlib.Path(__file__).resolve().parents[2] / "include" / "httpcache.h"
TYPE_MAX = {"uint32_t": 2**32 - 1, "uint64_t": 2**64 - 1}


def c_options() -> list[tuple[str, str, str]]:
    """(name, type, comment) of each field of httpcache_options after `version`, from the header."""
    text = HEADER.read_text()
    body = text[text.index("typedef struct httpcache_options {") : text.index("} httpcache_options;")]
    fields = re.findall(r"^\s*((?:const\s+)?\w+(?:\s+int)?(?:\s*\*)?)\s*(\w+);\s*/\*\*<(.*?)\*/", body, re.M)
    assert fields[0][1] == "version"
    return fields[1:]


def documented_default(comment: str) -> int:
    if "0 (default)" in comment:
        return 0
    number, unit = re.search(r"default (\d+)( MiB)?", comment).groups()
    return int(number) << (20 if unit else 0)


def test_options_table_is_the_c_struct():
    # Version 1's numeric options, the TLS settings (version 2), which Cache() takes as keywords
    # too, then version 3's numeric options (the near tier).
    fields = c_options()
    tls = [f for f in fields if f[1].startswith("ssl_")]
    numeric = [f for f in fields if not f[1].startswith("ssl_")]
    assert fields == numeric[:10] + tls + numeric[10:]
    assert [name for name, _, _ in h.OPTIONS] == [name for _, name, _ in numeric]
    assert sorted(h.TLS_OPTIONS) == sorted(name for _, name, _ in tls)
    for (name, default, maximum), (ctype, _, comment) in zip(h.OPTIONS, numeric):
        assert maximum == (2 if name == "near_cache" else TYPE_MAX[ctype]), name  # ON 1, OFF 2
        assert default == documented_default(comment), name  # the header's words are the core's values
    defaults = {name: default for name, default, _ in h.OPTIONS}
    assert defaults["connect_timeout_ms"] == defaults["command_timeout_ms"] == 1000
    assert defaults["max_value_bytes"] == 8 << 20 and defaults["lock_ttl_ms"] == 0


@pytest.mark.parametrize("explicit", [{}, {"max_value_bytes": 0}])
def test_max_value_bytes_default_is_the_one_applied(namespace, explicit):
    limit = dict((name, default) for name, default, _ in h.OPTIONS)["max_value_bytes"]
    with h.Cache("memory://", namespace, **explicit) as c:
        assert c.set(b"at", b"x" * limit, h.Policy.seconds(5)) == 5
        with pytest.raises(ValueError) as info:
            c.set(b"over", b"x" * (limit + 1), h.Policy.seconds(5))
        assert "max_value_bytes" in str(info.value) and str(limit) in str(info.value)
    with h.Cache("memory://", namespace, max_value_bytes=limit + 1) as c:
        assert c.set(b"over", b"x" * (limit + 1), h.Policy.seconds(5)) == 5


def test_command_timeout_default_is_the_one_applied(namespace):
    """A server that accepts and never answers: a lookup fails after command_timeout_ms."""
    default_ms = dict((name, default) for name, default, _ in h.OPTIONS)["command_timeout_ms"]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshake; nobody reads or replies
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}"

        def timed_get(**options) -> float:
            with h.Cache(url, namespace, **options) as c:
                start = time.monotonic()
                with pytest.raises(h.Error) as info:
                    c.get(b"k")
                assert info.value.code == h.ETIMEOUT
                return (time.monotonic() - start) * 1000

        assert 0.9 * default_ms <= timed_get() < default_ms + 1000
        assert timed_get(command_timeout_ms=150) < 0.6 * default_ms


def test_cache_options_are_checked(namespace):
    names = [name for name, _, _ in h.OPTIONS]
    with pytest.raises(TypeError) as info:
        h.Cache("memory://", namespace, pool_sise=1)
    assert "pool_sise" in str(info.value) and all(n in str(info.value) for n in names)
    for bad in (True, -1, 2**32, 1.0, "5", None):
        with pytest.raises(ValueError) as info:
            h.Cache("memory://", namespace, pool_size=bad)
        assert "pool_size" in str(info.value)
    with pytest.raises(ValueError):
        h.Cache("memory://", namespace, memory_max_bytes=2**64)
    with pytest.raises(ValueError) as info:  # ON 1, OFF 2, nothing else
        h.Cache("memory://", namespace, near_cache=3)
    assert "near_cache" in str(info.value)
    with pytest.raises(TypeError):
        h.Cache("memory://", namespace, "UTC", 5)  # options are keywords only
    # Every option takes 0 (the default) and its maximum.
    h.Cache("memory://", namespace, **{name: 0 for name in names}).close()
    h.Cache("memory://", namespace, **{name: maximum for name, _, maximum in h.OPTIONS}).close()


def test_hit_path_refuses_bad_input(raw_cache):
    from httpcache._codec import MISS

    with pytest.raises(TypeError):
        h.HitPath(MISS, "not a ContextVar")
    for bad in (0, -1, 4097):
        with pytest.raises(ValueError):
            h.HitPath(MISS, max_keys=bad)
    path = h.HitPath(MISS, max_keys=4)
    epoch = h.HitPath.epoch()
    with pytest.raises(ValueError):  # version 0 names no value
        path.arm_value(epoch, raw_cache, b"k", 0, {}, None, None, False)
    with pytest.raises(TypeError):  # not a Cache
        path.arm_value(epoch, object(), b"k", 1, {}, None, None, False)
    with pytest.raises(TypeError):  # a str key
        path.arm_value(epoch, raw_cache, "k", 1, {}, None, None, False)
    for args in [("k", {}), (b"k",), (b"k", {}, 1)]:
        with pytest.raises(TypeError):
            path.hit_key(*args)
    assert path.hit_key(b"k", {}) is MISS and path.hit({}) is MISS and path.armed == 0
