"""Tags (issue 16): ``@cache(tags=[...])``, ``@invalidate_cache(tags=[...])`` and
``HTTPCache.invalidate_tags`` against real FastAPI apps (TestClient) on memory://, Redis and the
cluster, sync and async handlers:

- invalidating a tag makes exactly the entries stored under it miss, in O(1) per tag: the
  Redis keys touched by an invalidation are the tag keys, never the entries (no KEYS/SCAN);
- a tag key that disappears (eviction, expiry) makes its entries miss, never brings back an
  entry that an earlier invalidation made stale;
- a model-based property (hypothesis): over any sequence of reads, writes to the "database"
  and tag invalidations, a read never returns a value older than the last invalidation of any
  of its tags."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpcache import HTTPCache, cache, invalidate_cache


@pytest.fixture(params=["memory", "redis", "cluster"])
def url(request) -> str:
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("redis_url" if request.param == "redis" else "cluster_url")


def make_app(calls: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    @cache(key="tg.item.{item_id}", ttl_in_seconds=60, tags=["catalog", "item:{item_id}"])
    async def item(item_id: int):
        calls.append(f"item{item_id}")
        return {"item": item_id, "version": len(calls)}

    @app.get("/sync/{item_id}")
    @cache(key="tg.sync.{item_id}", ttl_in_seconds=60, tags=["catalog", "item:{item_id}"])
    def sync_item(item_id: int):
        calls.append(f"sync{item_id}")
        return {"item": item_id, "version": len(calls)}

    @app.get("/about")
    @cache(key="tg.about", ttl_in_seconds=60, tags=["pages"])
    async def about():
        calls.append("about")
        return {"version": len(calls)}

    @app.put("/items/{item_id}")
    @invalidate_cache(tags=["item:{item_id}"])
    async def update(item_id: int):
        return {"updated": item_id}

    @app.put("/sync/{item_id}")
    @invalidate_cache(tags=["item:{item_id}"])
    def sync_update(item_id: int):
        return {"updated": item_id}

    return app


@pytest.mark.parametrize("prefix", ["/items", "/sync"])
def test_a_tag_invalidates_its_entries_only(url, namespace, prefix):
    HTTPCache.init(url, namespace=namespace)
    calls: list[str] = []
    client = TestClient(make_app(calls))
    first = {i: client.get(f"{prefix}/{i}").json() for i in (1, 2)}
    about = client.get("/about").json()
    assert [client.get(f"{prefix}/{i}").json() for i in (1, 2)] == [first[1], first[2]]
    assert len(calls) == 3

    client.put(f"{prefix}/1")  # item:1 only
    assert client.get(f"{prefix}/1").json() != first[1]
    assert client.get(f"{prefix}/2").json() == first[2]
    assert client.get("/about").json() == about
    assert len(calls) == 4

    HTTPCache.invalidate_tags("catalog")  # both items, not the page
    assert client.get(f"{prefix}/1").json()["version"] == 5
    assert client.get(f"{prefix}/2").json()["version"] == 6
    assert client.get("/about").json() == about
    assert client.get(f"{prefix}/1").json()["version"] == 5  # and the new entries hit


def test_async_invalidation_and_namespaces(url, namespace):
    HTTPCache.init(url, namespace=namespace)
    calls: list[str] = []

    @cache(key="tg.other", ttl_in_seconds=60, tags=["catalog"], namespace=namespace + "b")
    async def other() -> int:
        calls.append("other")
        return len(calls)

    @cache(key="tg.mine", ttl_in_seconds=60, tags=["catalog"])
    async def mine() -> int:
        calls.append("mine")
        return len(calls)

    async def scenario() -> None:
        assert (await other(), await mine()) == (1, 2)
        await HTTPCache.ainvalidate_tags("catalog")  # this namespace's tag only
        assert (await other(), await mine()) == (1, 3)
        await HTTPCache.ainvalidate_tags("catalog", namespace=namespace + "b")
        assert (await other(), await mine()) == (4, 3)

    asyncio.run(scenario())


def test_invalidation_touches_tag_keys_only(redis_url, redis_client, namespace):
    """O(1) per tag: MONITOR-free check through the keyspace: the entries are still stored
    after the invalidation (nothing deleted or scanned), and only the tag key changed."""
    HTTPCache.init(redis_url, namespace=namespace)
    calls: list[str] = []
    client = TestClient(make_app(calls))
    for i in range(50):
        client.get(f"/items/{i}")
    entries = sorted(redis_client.keys(f"{namespace}:*"))
    before = redis_client.get(f"httpcache-tag!{namespace}:catalog")
    assert len(entries) == 50 and before is not None
    HTTPCache.invalidate_tags("catalog")
    assert sorted(redis_client.keys(f"{namespace}:*")) == entries  # no entry touched
    assert redis_client.get(f"httpcache-tag!{namespace}:catalog") not in (None, before)
    assert client.get("/items/7").json()["version"] == 51


def test_a_lost_tag_key_never_brings_back_stale_entries(redis_url, redis_client, namespace):
    HTTPCache.init(redis_url, namespace=namespace)
    calls: list[str] = []
    client = TestClient(make_app(calls))
    stale = client.get("/items/1").json()
    redis_client.set(f"{namespace}:keep", b"x")
    HTTPCache.invalidate_tags("item:1")
    fresh = client.get("/items/1").json()
    assert fresh != stale
    redis_client.delete(f"httpcache-tag!{namespace}:item:1")  # evicted, or expired
    again = client.get("/items/1").json()
    assert again not in (stale, fresh)  # a miss under a new generation, never the stale one
    assert client.get("/items/1").json() == again


def test_bad_tags_are_refused_at_decoration():
    with pytest.raises(TypeError):
        cache(key="k", tags="catalog")
    with pytest.raises(ValueError):
        cache(key="k", tags=[])(lambda: 1)
    with pytest.raises(ValueError):
        cache(key="k", tags=[f"t{i}" for i in range(33)])(lambda: 1)
    with pytest.raises(ValueError):
        cache(key="k", tags=["user:{missing}"])(lambda user_id: 1)
    with pytest.raises(ValueError):
        invalidate_cache()
    with pytest.raises(TypeError):
        HTTPCache.invalidate_tags(42)
    with pytest.raises(ValueError):
        HTTPCache.invalidate_tags()


def test_a_missing_tag_field_runs_uncached(namespace):
    HTTPCache.init("memory://", namespace=namespace)
    calls: list[int] = []

    @cache(key="tg.u.{user_id}", ttl_in_seconds=60, tags=["org:{org}"])
    def for_user(user_id: int, org: str | None = None) -> int:
        calls.append(user_id)
        return len(calls)

    assert for_user(1, None) == 1 and for_user(1, None) == 2  # no tag, no entry
    assert for_user(1, "acme") == 3 and for_user(1, "acme") == 3


# ---- the property ----

TAGS = ["a", "b", "c"]
KEYS = {f"k{i}": [t for j, t in enumerate(TAGS) if (i >> j) & 1] or ["a"] for i in range(8)}

operations = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.sampled_from(sorted(KEYS))),
        st.tuples(st.just("write"), st.sampled_from(TAGS)),
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.parametrize("kind", ["memory", "redis"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_no_read_older_than_an_invalidation_of_its_tags(kind, redis_url, ops):
    """A "database" of one version per tag; a write bumps a tag's version and invalidates the tag
    (as @invalidate_cache(tags=...) around an update would). Every read must see, for each of
    its tags, the version current at the read."""
    import itertools

    namespace = f"prop{os.getpid()}_{time.time_ns()}_{next(_names)}"  # unique across runs: entries live 60 s
    HTTPCache.init("memory://" if kind == "memory" else redis_url, namespace=namespace)
    db = dict.fromkeys(TAGS, 0)
    readers = {}
    for key, tags in KEYS.items():

        def make(key=key, tags=tags):
            @cache(key=f"p.{key}", ttl_in_seconds=60, tags=tags)
            def read() -> dict:
                return {t: db[t] for t in tags}

            return read

        readers[key] = make()
    for op, arg in ops:
        if op == "write":
            db[arg] += 1
            HTTPCache.invalidate_tags(arg)
        else:
            assert readers[arg]() == {t: db[t] for t in KEYS[arg]}


_names = __import__("itertools").count()


@pytest.mark.parametrize("kind", ["redis", "cluster"])
def test_an_async_flight_is_not_shared_across_a_tag_invalidation(kind, namespace, request):
    """A tag invalidated by another process while a flight of this loop computes: a caller
    arriving after it computes its own value instead of sharing the flight's."""
    from httpcache import _httpcache

    url = request.getfixturevalue("redis_url" if kind == "redis" else "cluster_url")
    HTTPCache.init(url, namespace=namespace)
    elsewhere = _httpcache.Cache(url, namespace)  # another process's handle, as far as flights know
    started = asyncio.Event()
    versions = iter(["before", "after"])

    @cache(key="tg.flight", ttl_in_seconds=60, tags=["t"])
    async def slow() -> str:
        value = next(versions)
        if value == "before":
            started.set()
            await asyncio.sleep(0.3)
        return value

    async def scenario() -> tuple[str, str]:
        leader = asyncio.create_task(slow())
        await started.wait()
        elsewhere.invalidate_tags([b"t"])
        late = await slow()
        return await leader, late

    assert asyncio.run(scenario()) == ("before", "after")
    elsewhere.close()
