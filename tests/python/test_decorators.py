# SPDX-License-Identifier: MIT
"""@cache and @invalidate_cache on plain async and sync functions, on memory:// and Redis."""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import threading

import pytest
import starlette.requests  # noqa: F401 - the wrappers add Request and Response parameters only once Starlette is imported
import starlette.responses  # noqa: F401

import httpcache
from httpcache import HTTPCache, cache, invalidate_cache


class User:
    def __init__(self, id):
        self.id = id


# --- hits, misses and the stored bytes --------------------------------------------------------


async def test_async_function_runs_once_then_hits(store):
    calls = []

    @cache(key="cache.me", ttl_in_seconds=360)
    async def cache_me(x: int, invoke_count: int):
        calls.append(x)
        return [x * 2, invoke_count + 1]

    assert await cache_me(2, 0) == [4, 1]
    assert await cache_me(3, 5) == [4, 1]  # the key ignores arguments, as the seed's does
    assert calls == [2]
    assert store.get("cache.me") == b"[4,1]"


def test_sync_function_runs_once_then_hits(store):
    calls = []

    @cache(key="sync.me", ttl_in_seconds=360)
    def sync_me(x):
        calls.append(x)
        return {"double": x * 2, "name": "é"}

    assert sync_me(2) == {"double": 4, "name": "é"}
    assert sync_me(2) == {"double": 4, "name": "é"}
    assert calls == [2]
    assert store.get("sync.me") == json.dumps({"double": 4, "name": "é"}, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("value", [0, "", [], {}, False, None, 0.0])
async def test_falsy_results_are_hits_async(store, value):
    calls = []

    @cache(key="falsy", ttl_in_seconds=60)
    async def f():
        calls.append(1)
        return value

    first = await f()
    second = await f()
    assert first == value and second == value and type(second) is type(value)
    assert calls == [1]
    assert store.get("falsy") == json.dumps(value).encode()


@pytest.mark.parametrize("value", [0, "", [], False, None])
def test_falsy_results_are_hits_sync(store, value):
    calls = []

    @cache(key="falsy", ttl_in_seconds=60)
    def f():
        calls.append(1)
        return value

    assert f() == value and f() == value
    assert calls == [1]


NOT_JSON = [
    {1, 2},
    object(),
    (1, 2),  # would come back as a list
    {1: "a"},  # would come back with a str key
    math.nan,
    [math.inf],
    b"bytes",
]


@pytest.mark.parametrize("value", NOT_JSON, ids=lambda v: type(v).__name__)
async def test_non_json_result_returned_not_stored_one_warning_async(store, warnings_log, value):
    calls = []

    @cache(key="nojson", ttl_in_seconds=60)
    async def f():
        calls.append(1)
        return value

    assert await f() is value
    assert len(warnings_log()) == 1
    assert "not JSON" in warnings_log()[0].getMessage()
    assert store.get("nojson") is None
    assert await f() is value
    assert calls == [1, 1]
    assert len(warnings_log()) == 1  # once per function, not per call


@pytest.mark.parametrize("value", NOT_JSON, ids=lambda v: type(v).__name__)
def test_non_json_result_returned_not_stored_one_warning_sync(store, warnings_log, value):
    @cache(key="nojson", ttl_in_seconds=60)
    def f():
        return value

    assert f() is value
    assert len(warnings_log()) == 1
    assert store.get("nojson") is None


# --- exceptions -------------------------------------------------------------------------------


class Boom(Exception):
    pass


async def test_exception_propagates_unchanged_async(store):
    calls = []
    raised = Boom("no")

    @cache(key="boom", ttl_in_seconds=60)
    async def f():
        calls.append(1)
        raise raised

    with pytest.raises(Boom) as info:
        await f()
    assert info.value is raised
    assert calls == [1]
    assert store.get("boom") is None
    with pytest.raises(Boom):
        await f()
    assert calls == [1, 1]


def test_exception_propagates_unchanged_sync(store):
    calls = []
    raised = Boom("no")

    @cache(key="boom", ttl_in_seconds=60)
    def f():
        calls.append(1)
        raise raised

    with pytest.raises(Boom) as info:
        f()
    assert info.value is raised
    assert calls == [1]
    assert store.get("boom") is None
    # The traceback still reaches the function's own frame.
    assert any(tb.name == "f" for tb in info.traceback)


def test_keyboard_interrupt_like_exceptions_propagate_sync(store):
    @cache(key="exit", ttl_in_seconds=60)
    def f():
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        f()


# --- keys from objects ------------------------------------------------------------------------


async def test_obj_by_keyword_position_and_default(store):
    default_user = User("112358")
    calls = []

    @cache(key="b.logged_in.{}", obj="user", obj_attr="id", ttl_in_seconds=60)
    async def logged_in(request, response, user=default_user):
        calls.append(user.id)
        return {"user": user.id}

    assert await logged_in(None, None) == {"user": "112358"}  # default
    assert store.get("b.logged_in.112358") == b'{"user":"112358"}'
    assert await logged_in(None, None, User(7)) == {"user": 7}  # by position
    assert await logged_in(None, None, user=User(7)) == {"user": 7}  # by keyword: a hit
    assert await logged_in(None, None, User("112358")) == {"user": "112358"}  # a hit
    assert calls == ["112358", 7]
    assert store.get("b.logged_in.7") == b'{"user":7}'


def test_obj_keyword_only_sync(store):
    calls = []

    @cache(key="kw.{}", obj="user", obj_attr="id", ttl_in_seconds=60)
    def f(*, user):
        calls.append(user.id)
        return user.id

    assert f(user=User("a")) == "a" and f(user=User("a")) == "a"
    assert calls == ["a"]
    assert store.get("kw.a") == b'"a"'


@pytest.mark.parametrize("user", [None, User(None), User(""), object()], ids=["None", "attr None", "attr empty", "no attr"])
async def test_missing_obj_or_attribute_runs_uncached(store, user):
    calls = []

    @cache(key="u.{}", obj="user", obj_attr="id", ttl_in_seconds=60)
    async def f(user=None):
        calls.append(1)
        return len(calls)

    assert await f(user) == 1
    assert await f(user=user) == 2
    assert store.get("u.") is None and store.get("u.None") is None


def test_missing_obj_argument_runs_uncached_sync(store):
    calls = []

    @cache(key="u.{}", obj="user", obj_attr="id", ttl_in_seconds=60)
    def f(user):
        calls.append(1)
        return len(calls)

    with pytest.raises(TypeError):  # the function's own error for a missing argument
        f()
    assert f(None) == 1 and f(None) == 2


# --- bad decoration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"key": "a.{}"}, "'a.{}'"),  # {} without obj
        ({"key": "a.{}", "obj": "user"}, "'user'"),  # obj without obj_attr
        ({"key": "a", "obj": "user", "obj_attr": "id"}, "'a'"),  # obj without {}
        ({"key": "a.{}.{}", "obj": "user", "obj_attr": "id"}, "'a.{}.{}'"),
        ({"key": "a.{", "obj": "user", "obj_attr": "id"}, "'a.{'"),  # malformed template
        ({"key": "a", "obj_attr": "id"}, "'id'"),  # obj_attr without obj
        ({"key": ""}, "''"),
        ({"key": 5}, "5"),
        ({"key": "a", "ttl_in_seconds": 0}, "ttl_in_seconds=0"),
        ({"key": "a", "ttl_in_seconds": -5}, "ttl_in_seconds=-5"),
        ({"key": "a", "ttl_in_seconds": "60"}, "ttl_in_seconds='60'"),
        ({"key": "a", "ttl_in_seconds": True}, "ttl_in_seconds=True"),
        ({"key": "a", "ttl_func": 3600}, "ttl_func=3600"),
        ({"key": "a", "namespace": "bad:ns"}, "'bad:ns'"),
        ({"key": "a.{}", "obj": "nobody", "obj_attr": "id"}, "'nobody'"),  # not a parameter
    ],
)
def test_bad_decoration_is_a_value_error_naming_the_value(kwargs, needle):
    with pytest.raises(ValueError) as info:

        @cache(**kwargs)
        async def f(user=None):
            return 1

    assert needle in str(info.value)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({}, "give key, keys or tags"),
        ({"key": "a.{}"}, "'a.{}'"),
        ({"keys": ["a", "b.{}"], "obj": "user", "obj_attr": "id"}, "'a'"),
        ({"key": "a.{}", "obj": "user"}, "'user'"),
        ({"key": "a", "namespace": "white space"}, "'white space'"),
    ],
)
def test_bad_invalidate_decoration(kwargs, needle):
    with pytest.raises(ValueError) as info:

        @invalidate_cache(**kwargs)
        def f(user=None):
            return 1

    assert needle in str(info.value)


def test_signature_and_kind_are_preserved():
    async def handler(request, response, user: User = None, *, q: int = 3) -> dict:
        """doc"""
        return {}

    def plain(a, b=2):
        return a

    wrapped = cache(key="x.{}", obj="user", obj_attr="id")(handler)
    # Plus keyword-only Response and Request parameters, for FastAPI to inject (see _injected),
    # which the handler never receives.
    params = list(inspect.signature(wrapped).parameters.values())
    assert [p.name for p in params[-2:]] == ["httpcache_response", "httpcache_request"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[-2:])
    assert inspect.signature(wrapped).replace(parameters=params[:-2]) == inspect.signature(handler)
    assert inspect.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "handler" and wrapped.__doc__ == "doc"
    inv = invalidate_cache(key="x")(plain)
    assert inspect.signature(inv) == inspect.signature(plain)
    assert not inspect.iscoroutinefunction(inv)
    assert not inspect.iscoroutinefunction(cache(key="y")(plain))


# --- TTLs --------------------------------------------------------------------------------------


async def _ttl_of(store, key, **kwargs) -> int:
    @cache(key=key, **kwargs)
    async def f():
        return 1

    await f()
    return store.ttl_ms(key)


async def test_ttl_precedence(store):
    async def ttl_async():
        return 100

    day = httpcache.seconds_until_end_of_day("UTC") * 1000
    week = httpcache.seconds_until_end_of_week("UTC") * 1000
    assert 99_000 < await _ttl_of(store, "a", ttl_func=ttl_async, ttl_in_seconds=1000, expire_end_of_week=True) <= 100_000
    assert 99_000 < await _ttl_of(store, "b", ttl_func=lambda: 100, ttl_in_seconds=1000) <= 100_000
    assert 999_000 < await _ttl_of(store, "c", ttl_in_seconds=1000, expire_end_of_week=True) <= 1_000_000
    assert abs(await _ttl_of(store, "d", expire_end_of_week=True) - week) < 3000
    assert abs(await _ttl_of(store, "e", end_of_week=True) - week) < 3000  # the seed's docs' alias
    assert abs(await _ttl_of(store, "f") - day) < 3000  # default: end of day
    assert abs(await _ttl_of(store, "g", end_of_day=True) - day) < 3000
    assert abs(await _ttl_of(store, "h", expire_end_of_day=False) - day) < 3000  # the fallback


def test_ttl_func_sync_and_async_on_sync_function(store):
    async def ttl_async():
        return 200

    @cache(key="s1", ttl_func=lambda: 100)
    def f():
        return 1

    @cache(key="s2", ttl_func=ttl_async)
    def g():
        return 2

    assert f() == 1 and g() == 2
    assert 99_000 < store.ttl_ms("s1") <= 100_000
    assert 199_000 < store.ttl_ms("s2") <= 200_000


def test_end_of_day_uses_init_zone(backend, namespace, request):
    HTTPCache.init(redis_url=backend, namespace=namespace, tz="Pacific/Kiritimati")  # UTC+14
    request.addfinalizer(HTTPCache.close)

    @cache(key="z")
    def f():
        return 1

    f()
    _, ttl = HTTPCache.handle().cache.get(b"z")
    assert abs(ttl - httpcache.seconds_until_end_of_day("Pacific/Kiritimati") * 1000) < 3000


@pytest.mark.parametrize("bad", [0, -1, 1.5, "60", None])
async def test_bad_ttl_func_result_returns_uncached(store, warnings_log, bad):
    @cache(key="badttl", ttl_func=lambda: bad)
    async def f():
        return 1

    @cache(key="badttl_sync", ttl_func=lambda: bad)
    def g():
        return 2

    assert await f() == 1 and g() == 2
    assert store.get("badttl") is None and store.get("badttl_sync") is None
    assert len(warnings_log()) == 2


async def test_ttl_func_exception_is_logged_and_result_served(store, caplog):
    def ttl():
        raise RuntimeError("ttl down")

    @cache(key="ttlboom", ttl_func=ttl)
    async def f():
        return 1

    assert await f() == 1
    assert store.get("ttlboom") is None
    assert "ttl_func" in caplog.text


# --- namespaces --------------------------------------------------------------------------------


async def test_decorator_namespace_overrides_init(store):
    other = store.namespace + "_other"

    @cache(key="k", namespace=other, ttl_in_seconds=60)
    async def f():
        return "other"

    @invalidate_cache(key="k", namespace=other)
    async def clear():
        return None

    assert await f() == "other"
    assert store.get("k", namespace=other) == b'"other"'
    assert store.get("k") is None
    await clear()
    assert store.get("k", namespace=other) is None


def test_namespace_resolved_at_call_time(backend, namespace, request):
    # Decorated before init(), as happens when a module is imported before the app configures.
    @cache(key="late", ttl_in_seconds=60)
    def f():
        return 1

    HTTPCache.init(redis_url=backend, namespace=namespace)
    request.addfinalizer(HTTPCache.close)
    f()
    value, _ = HTTPCache.handle(namespace).cache.get(b"late")
    assert value == b"1"


# --- invalidation ------------------------------------------------------------------------------


async def test_invalidate_key_and_keys_with_obj(store):
    for k in ["b.logged_in.112358", "b.profile.112358", "b.logged_in.1", "other"]:
        store.put(k, b"1")

    @invalidate_cache(keys=["b.logged_in.{}", "b.profile.{}"], obj="user", obj_attr="id", namespace=store.namespace)
    async def post(request, response, user=User("112358")):
        return "done"

    assert await post(None, None) == "done"
    assert store.get("b.logged_in.112358") is None and store.get("b.profile.112358") is None
    assert store.get("b.logged_in.1") == b"1" and store.get("other") == b"1"

    @invalidate_cache(key="other")
    def clear_sync():
        return "ok"

    assert clear_sync() == "ok"
    assert store.get("other") is None


async def test_invalidation_wins_over_a_reader_that_recaches_during_the_call(store):
    calls = []

    @cache(key="page", ttl_in_seconds=60)
    async def read():
        calls.append(1)
        return len(calls)

    @invalidate_cache(key="page")
    async def write():
        # A concurrent reader re-caches while the write is in progress.
        assert await read() == 2
        assert store.get("page") == b"2"
        await asyncio.sleep(0)
        return "written"

    assert await read() == 1
    assert await write() == "written"
    assert store.get("page") is None
    assert await read() == 3


def test_invalidation_wins_over_a_reader_thread_sync(store):
    calls = []

    @cache(key="page", ttl_in_seconds=60)
    def read():
        calls.append(1)
        return len(calls)

    @invalidate_cache(key="page")
    def write():
        t = threading.Thread(target=read)
        t.start()
        t.join()
        assert store.get("page") is not None
        return "written"

    assert read() == 1
    assert write() == "written"
    assert store.get("page") is None


async def test_invalidation_runs_even_when_the_call_raises(store):
    store.put("k", b"1")

    @invalidate_cache(key="k")
    async def fail():
        store.put("k", b"2")  # re-cached during the call
        raise Boom()

    with pytest.raises(Boom):
        await fail()
    assert store.get("k") is None


async def test_invalidate_with_missing_obj_deletes_nothing(store):
    store.put("u.1", b"1")

    @invalidate_cache(key="u.{}", obj="user", obj_attr="id")
    async def f(user=None):
        return "ran"

    assert await f() == "ran"
    assert await f(User(None)) == "ran"
    assert store.get("u.1") == b"1"


# --- threads -----------------------------------------------------------------------------------


def test_sync_cached_function_from_many_threads(store):
    calls = []
    lock = threading.Lock()

    @cache(key="t.{}", obj="n", obj_attr="real", ttl_in_seconds=60)
    def f(n):
        with lock:
            calls.append(n)
        return n * 10

    results = []

    def work():
        for i in range(50):
            results.append(f(i % 5))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted([n * 10 for n in range(5)] * 40)
    # Concurrent first misses of one key are single-flight within the handle: the others wait
    # for the computing thread (or arrive later and hit), so each key is computed exactly once.
    assert sorted(calls) == [0, 1, 2, 3, 4], calls


# --- single-flight (async) ---------------------------------------------------------------------


async def test_concurrent_misses_share_one_computation(store):
    calls = []

    @cache(key="sf", ttl_in_seconds=60)
    async def f(i):
        calls.append(i)
        await asyncio.sleep(0.05)
        return {"by": i}

    results = await asyncio.gather(*[f(i) for i in range(20)])
    assert calls == [0]
    assert results == [{"by": 0}] * 20
    assert store.get("sf") == b'{"by":0}'


async def test_failed_leader_fails_its_waiters_with_the_same_exception(store):
    """Go's singleflight: the callers that waited for a computation that raised get the same
    exception object; the function ran once (50 callers used to run it 50 times)."""
    calls = []

    @cache(key="sf.fail", ttl_in_seconds=60)
    async def f(i):
        calls.append(i)
        await asyncio.sleep(0.02)
        raise Boom(f"leader {i}")

    results = await asyncio.gather(*[f(i) for i in range(50)], return_exceptions=True)
    assert calls == [0]
    assert all(r is results[0] for r in results) and isinstance(results[0], Boom)
    # The next call computes anew (a failure is never cached), and its lease was given back.
    with pytest.raises(Boom):
        await f(99)
    assert calls == [0, 99]


async def test_cancelled_leader_lets_waiters_compute(store):
    calls = []

    @cache(key="sf.cancel", ttl_in_seconds=60)
    async def f(i):
        calls.append(i)
        await asyncio.sleep(0.05)
        return i

    leader = asyncio.create_task(f(0))
    await asyncio.sleep(0.01)
    waiters = [asyncio.create_task(f(i)) for i in (1, 2)]
    await asyncio.sleep(0.01)
    leader.cancel()
    results = await asyncio.gather(*waiters)
    assert results == [1, 2]  # each waiter computed its own after the leader was cancelled
    assert calls == [0, 1, 2]


def test_oversized_values_are_served_uncached(backend, namespace, warnings_log, request):
    HTTPCache.init(redis_url=backend, namespace=namespace, max_value_bytes=100)
    request.addfinalizer(HTTPCache.close)
    calls = []

    @cache(key="big", ttl_in_seconds=60)
    def f():
        calls.append(1)
        return "x" * 200

    @cache(key="abig", ttl_in_seconds=60)
    async def g():
        calls.append(1)
        return "x" * 200

    assert f() == "x" * 200 and f() == "x" * 200
    assert asyncio.run(g()) == "x" * 200
    assert len(calls) == 3
    assert all("max_value_bytes" in r.getMessage() for r in warnings_log())
    assert len(warnings_log()) == 3
    stats = HTTPCache.stats()  # counted, on both paths
    assert stats["oversized"] == 3 and stats["uncached"] == 3 and stats["stores"] == 0


@pytest.mark.parametrize(
    "stored, expected",
    [
        (b'{"a":[1,2.5,"x",true,null]}', {"a": [1, 2.5, "x", True, None]}),
        (b' {"a": 1}\n', {"a": 1}),  # whitespace around the text (another program's): json.loads' verdict
        (b'"caf\xc3\xa9"', "caf\u00e9"),
        (b"[]", []),
    ],
)
def test_decode_is_json_loads_of_the_utf8_text(stored, expected):
    from httpcache._codec import decode_json

    assert decode_json(stored) == expected == json.loads(stored)
    assert decode_json(stored) is not decode_json(stored) or not isinstance(expected, (dict, list))


@pytest.mark.parametrize(
    "stored",
    [
        b'{"a": 1} x',
        b'{"a":1}{"a":2}',
        b'"caf\xe9"',
        b"",
        b"[1,",
        b"\xff",
        # Stricter than json.loads(bytes), which also reads these: stored values are UTF-8 JSON
        # text, so such a foreign value is a miss (recomputed and overwritten once).
        "[1]".encode("utf-16"),
        b"\xef\xbb\xbf[1]",
    ],
)
def test_decode_refuses_what_json_loads_refuses(stored):
    from httpcache._codec import MISS, decode_json

    assert decode_json(stored) is MISS
