# SPDX-License-Identifier: MIT
"""The one-call hit path of fixed-key @cache functions (``_httpcache.HitPath``, armed by the
normal path with the version of the value it served): what it answers must be exactly what the
normal path would answer, and it must step aside whenever the normal path has work to do.

Whether a call took it is observed from outside: ``CachedCall.call_sync``/``call_async`` (the
normal path) are wrapped to count their calls, so "served by the one-call path" is "the function
did not run and the normal path was not entered". Backends: memory:// (the embedded store) and the
near tier on the real redis-server of the CTest fixtures; lmdb:// gives no versions, so there it
must never arm and every hit takes the normal path."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from httpcache import HTTPCache, _cached_call, _httpcache, cache, invalidate_cache


@pytest.fixture(params=["memory", "near"])
def url(request, redis_url):
    if request.param == "memory":
        return "memory://"
    return redis_url


@pytest.fixture
def normal_calls(monkeypatch):
    """How many calls entered the normal path (sync and async)."""
    count = {"n": 0}
    sync, async_ = _cached_call.CachedCall.call_sync, _cached_call.CachedCall.call_async

    def counted_sync(self, *args):
        count["n"] += 1
        return sync(self, *args)

    async def counted_async(self, *args):
        count["n"] += 1
        return await async_(self, *args)

    monkeypatch.setattr(_cached_call.CachedCall, "call_sync", counted_sync)
    monkeypatch.setattr(_cached_call.CachedCall, "call_async", counted_async)
    return count


class _Store:
    """Writes through the namespace's handle (the blocking binding), as another caller would."""

    def __init__(self, namespace: str) -> None:
        self.cache = HTTPCache.handle(namespace).cache

    def set(self, key: str, value: bytes, seconds: int) -> None:
        self.cache.set(key.encode(), value, _httpcache.Policy.seconds(seconds))

    def invalidate(self, key: str) -> None:
        self.cache.invalidate([key.encode()])


def _init(url: str, namespace: str, **options) -> None:
    HTTPCache.init(url, namespace=namespace, near_cache=url != "memory://", **options)


def _until_quiet(call, normal_calls, within_s: float = 3.0):
    """Calls call() until one whole call needs no normal path (the near tier's link must first be
    subscribed, and the normal path arms the one-call path on a hit); the last result."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        before = normal_calls["n"]
        result = call()
        if normal_calls["n"] == before:
            return result
        time.sleep(0.01)
    pytest.fail("the one-call path never answered")


def test_every_change_is_seen_at_once_by_the_process_that_made_it(url, namespace, normal_calls):
    """A looped property: 300 random changes through this process (a new value, the same bytes
    stored again, an invalidation, @invalidate_cache); after each, the next call returns exactly
    the value stored (or recomputes), never the one before, while the calls in between are
    served by the one-call path."""
    _init(url, namespace)
    current = {"v": 0, "runs": 0}

    @cache(key="hp.value", ttl_in_seconds=60)
    def read() -> dict:
        current["runs"] += 1
        return {"v": current["v"], "items": [current["v"]]}

    @invalidate_cache(key="hp.value")
    def change() -> None:
        current["v"] += 1

    backend = _Store(namespace)
    rng = random.Random(17)
    fast_answers = 0
    for _ in range(300):
        what = rng.randrange(4)
        if what == 0:
            current["v"] += 1
            backend.set("hp.value", ('{"v":%d,"items":[%d]}' % (current["v"], current["v"])).encode(), 60)
        elif what == 1:  # the same bytes again: a new version with an equal value
            backend.set("hp.value", ('{"v":%d,"items":[%d]}' % (current["v"], current["v"])).encode(), 60)
        elif what == 2:
            backend.invalidate("hp.value")
        else:
            change()
        assert read() == {"v": current["v"], "items": [current["v"]]}
        for _ in range(3):
            before = normal_calls["n"]
            assert read() == {"v": current["v"], "items": [current["v"]]}
            fast_answers += normal_calls["n"] == before
    # The one-call path answered: after a change, a normal hit arms it again (on the near tier
    # after the read that fills the tier), so about half of the 900 reads or more.
    assert fast_answers > 300


def test_each_caller_gets_its_own_value_and_response(url, namespace, normal_calls):
    _init(url, namespace)

    @cache(key="hp.mutable", ttl_in_seconds=60)
    def value() -> dict:
        return {"a": [1, {"b": 2}]}

    @cache(key="hp.response", ttl_in_seconds=60)
    def response() -> JSONResponse:
        return JSONResponse({"x": 1}, headers={"x-mine": "1"})

    value()
    mine = _until_quiet(value, normal_calls)
    mine["a"][1]["b"] = 99
    mine["a"].append("mutated")
    assert value() == {"a": [1, {"b": 2}]}
    response()
    first = _until_quiet(response, normal_calls)
    first.headers["x-added"] = "by one caller"
    first.status_code = 418
    second = response()
    assert second is not first and second.status_code == 200 and "x-added" not in second.headers
    assert second.headers["x-mine"] == "1" and second.headers["cache-hit"] == "true"
    assert second.body == b'{"x":1}'


def test_a_setting_changed_takes_the_normal_path(url, namespace, normal_calls):
    """HTTPCache.enabled = False, init() elsewhere: an armed path never answers for the old
    settings."""
    _init(url, namespace)
    runs = {"n": 0}

    @cache(key="hp.settings", ttl_in_seconds=60)
    def read() -> int:
        runs["n"] += 1
        return runs["n"]

    read()
    assert _until_quiet(read, normal_calls) == 1
    HTTPCache.enabled = False
    try:
        assert [read(), read()] == [2, 3]  # uncached: the function runs each time
    finally:
        HTTPCache.enabled = True
    _init("memory://", namespace + "-other")  # another store: nothing there yet
    assert read() == 4


def test_lmdb_never_arms_and_still_serves(tmp_path, namespace, normal_calls):
    _init(f"lmdb://{tmp_path}", namespace)
    runs = {"n": 0}

    @cache(key="hp.lmdb", ttl_in_seconds=60)
    def read() -> dict:
        runs["n"] += 1
        return {"n": runs["n"]}

    before = normal_calls["n"]
    assert [read() for _ in range(5)] == [{"n": 1}] * 5
    assert normal_calls["n"] - before == 5 and runs["n"] == 1


def test_threads_arming_while_values_change(url, namespace):
    """Readers on 4 threads arm and use the path while the main thread stores 200 new values:
    each reader only ever sees values in the order they were stored, and once a store has
    returned, the next read of any thread gives that value or a later one."""
    _init(url, namespace)
    backend = _Store(namespace)
    backend.set("hp.threads", b"0", 60)
    stored = {"v": 0}
    errors: list[str] = []
    stop = threading.Event()

    @cache(key="hp.threads", ttl_in_seconds=60)
    def read() -> int:
        return -1  # never computed: the entry is always there

    def reader() -> None:
        last = -1
        while not stop.is_set():
            floor = stored["v"]
            got = read()
            if got < last or got < floor:
                errors.append(f"read {got} after {last}, stored {floor}")
                return
            last = got

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for v in range(1, 201):
        backend.set("hp.threads", b"%d" % v, 60)
        stored["v"] = v
        time.sleep(0.001)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []


def _route_app(namespace: str, **decorator) -> tuple[FastAPI, dict]:
    app = FastAPI()
    runs = {"n": 0}

    def set_header(response: Response) -> None:
        response.headers["x-from-dependency"] = "yes"

    @app.get("/page", dependencies=[Depends(set_header)])
    @cache(key="hp.page", ttl_in_seconds=60, namespace=namespace, **decorator)
    async def page(request: Request, response: Response):
        runs["n"] += 1
        return {"runs": runs["n"]}

    return app, runs


def test_route_hits_keep_every_rule(url, namespace, normal_calls):
    """A route served by the one-call path: the stored body, its ETag, the hit's headers (Age
    moves on with time), the dependency's header; a conditional request gets its 304 from the
    normal path; Cache-Control: no-cache recomputes where it is honoured."""
    _init(url, namespace)
    app, runs = _route_app(namespace)
    with TestClient(app) as client:
        client.get("/page")
        first = _until_quiet(lambda: client.get("/page"), normal_calls)
        assert first.json() == {"runs": 1} and first.headers["cache-hit"] == "true"
        assert first.headers["x-from-dependency"] == "yes" and first.headers["etag"]
        age = int(first.headers["age"])
        time.sleep(1.1)
        later = client.get("/page")
        assert int(later.headers["age"]) > age and later.headers["cache-control"] == first.headers["cache-control"]
        before = normal_calls["n"]
        not_modified = client.get("/page", headers={"if-none-match": first.headers["etag"]})
        assert not_modified.status_code == 304 and normal_calls["n"] == before + 1
        client.get("/page", headers={"cache-control": "no-cache"})
        assert runs["n"] == 1  # ignored by default
    _init(url, namespace, request_no_cache="honor")
    app, runs = _route_app(namespace)
    with TestClient(app) as client:
        client.get("/page")
        _until_quiet(lambda: client.get("/page"), normal_calls)
        before = runs["n"]
        recomputed = client.get("/page", headers={"cache-control": "no-cache"})
        assert runs["n"] == before + 1 and recomputed.json() == {"runs": runs["n"]}


def test_a_dependency_s_status_reaches_a_hit(url, namespace, normal_calls):
    _init(url, namespace)
    app = FastAPI()

    def accepted(response: Response) -> None:
        response.status_code = 202

    @app.get("/status", dependencies=[Depends(accepted)])
    @cache(key="hp.status", ttl_in_seconds=60, namespace=namespace)
    def status(request: Request, response: Response):
        return {"ok": True}

    with TestClient(app) as client:
        client.get("/status")
        hit = _until_quiet(lambda: client.get("/status"), normal_calls)
        assert hit.status_code == 202 and hit.json() == {"ok": True}


def test_async_hits_take_the_path_too(url, namespace, normal_calls):
    _init(url, namespace)
    runs = {"n": 0}

    @cache(key="hp.async", ttl_in_seconds=60)
    async def read() -> list:
        runs["n"] += 1
        return [runs["n"]]

    async def scenario() -> None:
        await read()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            before = normal_calls["n"]
            assert await read() == [1]
            if normal_calls["n"] == before:
                break
            await asyncio.sleep(0.01)
        before = normal_calls["n"]
        results = [await read() for _ in range(50)]
        assert results == [[1]] * 50 and normal_calls["n"] == before
        results[0].append("mine")
        assert await read() == [1]

    asyncio.run(scenario())


class _User:
    def __init__(self, id: str) -> None:
        self.id = id


def test_keys_built_per_call_each_answer_their_own(url, namespace, normal_calls):
    """Per-user keys (obj/obj_attr): 100 users, each value served to its own user only, the last
    64 keys answered by the one-call path, and one user's invalidation seen at once by them and
    by no one else."""
    _init(url, namespace)
    version = {}

    @cache(key="hp.user.{}", obj="user", obj_attr="id", ttl_in_seconds=60)
    def profile(user: _User) -> dict:
        version[user.id] = version.get(user.id, 0) + 1
        return {"user": user.id, "version": version[user.id]}

    users = [_User(f"u{i}") for i in range(100)]
    for u in users:
        assert profile(u) == {"user": u.id, "version": 1}
    for u in users:  # the normal path's hits arm each key
        assert profile(u) == {"user": u.id, "version": 1}
    before = normal_calls["n"]
    for u in users[-64:]:
        assert profile(u) == {"user": u.id, "version": 1}
    assert normal_calls["n"] == before or url != "memory://"  # the near tier may still be filling
    _Store(namespace).invalidate("hp.user.u99")
    assert profile(users[-1]) == {"user": "u99", "version": 2}
    assert [profile(u) for u in users[:99]] == [{"user": u.id, "version": 1} for u in users[:99]]


def test_a_per_user_route_serves_each_user_their_own(url, namespace, normal_calls):
    _init(url, namespace)
    app = FastAPI()

    def current_user(request: Request) -> _User:
        return _User(request.headers.get("x-user", "anonymous"))

    @app.get("/me")
    @cache(key="hp.me.{}", obj="user", obj_attr="id", ttl_in_seconds=60, namespace=namespace)
    async def me(request: Request, response: Response, user: _User = Depends(current_user)):
        return {"me": user.id}

    with TestClient(app) as client:
        for name in ("alice", "bob"):
            client.get("/me", headers={"x-user": name})
        for name in ("alice", "bob"):
            hit = _until_quiet(lambda: client.get("/me", headers={"x-user": name}), normal_calls)
            assert hit.json() == {"me": name} and hit.headers["cache-hit"] == "true"
            assert "private" in hit.headers["cache-control"]
        rng = random.Random(3)
        for _ in range(200):
            name = rng.choice(("alice", "bob", "carol"))
            assert client.get("/me", headers={"x-user": name}).json() == {"me": name}


@pytest.mark.parametrize("change", ["disabled", "re-initialised"])
def test_settings_changed_while_a_hit_arms_the_path(url, namespace, normal_calls, monkeypatch, change):
    """Another thread changes HTTPCache's settings between the normal path reading them and the
    hit arming the one-call path (simulated inside _arm): nothing is armed for the old ones, so
    no later call is answered from the old handle or with caching off."""
    _init(url, namespace)
    runs = {"n": 0}

    @cache(key="hp.race", ttl_in_seconds=60)
    def read() -> int:
        runs["n"] += 1
        return runs["n"]

    read()
    _until_quiet(read, normal_calls)
    _httpcache.HitPath.disarm_all()  # the next call takes the normal path, whose hit arms again
    arm = _cached_call.CachedCall._arm

    def changing_then_arming(self, *args):
        if change == "disabled":
            HTTPCache.enabled = False
        else:
            _init("memory://", namespace)  # a new, empty store under the same namespace
        monkeypatch.setattr(_cached_call.CachedCall, "_arm", arm)
        return arm(self, *args)

    monkeypatch.setattr(_cached_call.CachedCall, "_arm", changing_then_arming)
    assert read() == 1  # a hit of the old settings, which armed nothing
    try:
        if change == "disabled":
            assert [read(), read()] == [2, 3]  # caching is off: the function runs
        else:
            assert read() == 2  # the new store is empty: computed, not the old handle's 1
            _Store(namespace).invalidate("hp.race")
            assert read() == 3
    finally:
        HTTPCache.enabled = True


def test_an_armed_path_keeps_no_handle_open(redis_url, namespace, normal_calls, redis_client):
    """A path armed on a near-tier handle does not keep it alive, nor does the thread that called:
    once HTTPCache drops it, its report link (a subscriber of __redis__:invalidate) closes."""
    import gc

    def subscribers() -> int:
        return dict(redis_client.pubsub_numsub("__redis__:invalidate"))[b"__redis__:invalidate"]

    def settled(want=None) -> int:
        # Handles of earlier tests may still be closing: wait until the count holds (or is `want`).
        deadline = time.monotonic() + 3
        last = subscribers()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = subscribers()
            if (want is None and now == last) or now == want:
                return now
            last = now
        return last

    HTTPCache.close()
    gc.collect()
    before = settled()
    _init(redis_url, namespace)

    @cache(key="hp.handle", ttl_in_seconds=60)
    def read() -> int:
        return 1

    read()
    _until_quiet(read, normal_calls)
    assert settled(before + 1) == before + 1  # this handle's link
    HTTPCache.close()
    gc.collect()
    assert settled(before) == before


def test_a_plain_function_taking_the_request_honours_no_cache(url, namespace, normal_calls):
    """A plain result (not a route's response) of a function that takes the request: a request
    asking to revalidate, where that is honoured, recomputes it even once the path is armed."""
    _init(url, namespace, request_no_cache="honor")
    runs = {"n": 0}
    app = FastAPI()

    @cache(key="hp.cfg", ttl_in_seconds=60)
    def settings(request: Request) -> dict:
        runs["n"] += 1
        return {"n": runs["n"]}

    @app.get("/cfg")
    def cfg(request: Request):
        return settings(request=request)

    with TestClient(app) as client:
        client.get("/cfg")
        _until_quiet(lambda: client.get("/cfg"), normal_calls)
        assert client.get("/cfg").json() == {"n": 1}
        assert client.get("/cfg", headers={"cache-control": "no-cache"}).json() == {"n": 2}
