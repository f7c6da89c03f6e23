# SPDX-License-Identifier: MIT
"""lmdb://DIR from Python: the store every process of a host shares by opening one directory.

- The issue's reproduction: a real ``uvicorn --workers 2`` (lmdb_app.py) caching in lmdb://, on
  a def and an async def route: after a POST through @invalidate_cache, no worker serves the old
  item, and each version is computed once across both workers; the same under HTTPCache.attach()
  (whose early GET gives its lease back before a def route computes: test_early_hits checks
  that on its own).
  The control: the same app on memory:// does serve the old item (each worker has its own
  store), which is what lmdb:// is for.
- @cache / @invalidate_cache on ``def`` and ``async def`` functions (hit, miss, a 1 s TTL that
  lapses, invalidation, stats), FastAPI routes caching a Response and a pydantic model (still
  served after the store was closed and opened again), and the seed's HTTPCacheBackend.
- Namespaces on one directory are apart; processes (spawn) on one directory see each other's
  entries and invalidations (keys and tags) at once; lock_ttl_ms computes a cold key once across
  processes.
- Bad URLs and a max_bytes other than the store's are ValueErrors saying what is wrong;
  HTTPCache.redis_client is None (there is no server).

Every store lives in pytest's tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel

import stampede_worker
from httpcache import HTTPCache, HTTPCacheBackend, _httpcache, cache, invalidate_cache
from uvicorn_support import HERE, _pythonpath, _stop, _tail, free_port

MiB = 1 << 20


@pytest.fixture
def lmdb_url(tmp_path) -> str:
    """A store of its own (the directory does not exist yet: the first opener creates it)."""
    return f"lmdb://{tmp_path}/store"


@pytest.fixture
def lmdb_cache(lmdb_url, namespace) -> Iterator[str]:
    """HTTPCache on lmdb_url with a fresh namespace; yields the URL."""
    HTTPCache.init(redis_url=lmdb_url, namespace=namespace)
    yield lmdb_url
    HTTPCache.close()


def stored(url: str, namespace: str, key: str) -> tuple[bytes, int] | None:
    """What the directory holds under `key`, read through a handle of its own (not HTTPCache's)."""
    try:
        return _httpcache.Cache(url, namespace).get(key.encode())
    except _httpcache.CacheMiss:
        return None


def counts(*names: str) -> dict[str, int]:
    st = HTTPCache.stats()
    return {name: st[name] for name in names}


# ---- 1. the issue: uvicorn --workers 2, an invalidation, and no stale response ----------------


@contextlib.contextmanager
def two_workers(url: str, tmp_path: pathlib.Path, namespace: str, attach: bool = False) -> Iterator[str]:
    """lmdb_app.py served by ``uvicorn --workers 2`` caching in `url`; yields the base URL once
    both workers answer. uvicorn_support.running_uvicorn starts one worker only, and its readiness
    (any answer) would let the test begin before the second worker is up: this waits for both."""
    state = tmp_path / "app-state"
    state.mkdir()
    (state / "version").write_text("0")
    env = dict(os.environ)
    env.pop("HTTPCACHE_DISABLED", None)  # the caller's would turn the app's cache off
    env.update(PYTHONPATH=_pythonpath(), HTTPCACHE_TEST_APP_URL=url, HTTPCACHE_TEST_APP_NAMESPACE=namespace,
               HTTPCACHE_TEST_APP_STATE=str(state), HTTPCACHE_TEST_APP_ATTACH="1" if attach else "0")
    for attempt in range(3):
        port = free_port()
        log = tmp_path / f"uvicorn-{port}.log"
        cmd = [sys.executable, "-m", "uvicorn", "lmdb_app:app", "--host", "127.0.0.1", "--port", str(port),
               "--loop", "asyncio", "--workers", "2", "--no-access-log"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            pids = _wait_for_both_workers(proc, base, log)
        except BaseException:
            _stop(proc, 10)
            raise
        if pids is not None:
            break
        if "address already in use" not in _tail(log).lower() or attempt == 2:
            pytest.fail(f"uvicorn --workers 2 exited with status {proc.returncode}; its log:\n{_tail(log)}",
                        pytrace=False)
    try:
        yield base
    finally:
        graceful = _stop(proc, 10)
        if not graceful:  # the supervisor was killed: its workers would outlive it
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    if not graceful or proc.returncode != 0:
        pytest.fail(f"uvicorn --workers 2 did not stop cleanly (status {proc.returncode}); its log:\n{_tail(log)}",
                    pytrace=False)


def _wait_for_both_workers(proc: subprocess.Popen, base: str, log: pathlib.Path) -> set[int] | None:
    """The two workers' pids once each answered GET /pid (a connection per request, so the
    kernel hands them to either worker), or None when the server exited first."""
    pids: set[int] = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2:
        if proc.poll() is not None:
            return None
        if time.monotonic() > deadline:
            pytest.fail(f"uvicorn --workers 2: {len(pids)} worker(s) answered within 30 s; its log:\n{_tail(log)}",
                        pytrace=False)
        try:
            pids.add(httpx.get(base + "/pid", timeout=2, trust_env=False).json()["pid"])
        except httpx.TransportError:
            time.sleep(0.05)
    return pids


ROUTES = ("item", "item-async")  # lmdb_app.py's def route and async def route


def _one_connection_each() -> httpx.Client:
    """A client that opens a connection per request (none kept alive): either worker may take
    each one, as it may a new browser's."""
    return httpx.Client(timeout=10, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))


def _gets(client: httpx.Client, base: str, at_least: int) -> dict[str, list[tuple[int, dict]]]:
    """Per route, (serving worker's pid, body) of `at_least` GETs, and more (up to 300 in all)
    until both workers have served the route: how the kernel spreads connections is not the
    test's subject, and a phase one worker alone served would prove nothing. The routes take
    turns."""
    served: dict[str, list[tuple[int, dict]]] = {route: [] for route in ROUTES}

    def done(route: str) -> bool:
        got = served[route]
        return len(got) >= at_least and (len(_pids(got)) == 2 or len(got) >= 300)

    while not all(done(route) for route in ROUTES):
        for route in ROUTES:
            r = client.get(f"{base}/{route}")
            assert r.status_code == 200, r.text
            served[route].append((int(r.headers["x-worker-pid"]), r.json()))
    return served


def _scenario(url: str, tmp_path: pathlib.Path, namespace: str, attach: bool = False) -> dict:
    """The issue's steps on two workers, on both routes: 30 GETs, a POST (version 0 -> 1), 60
    GETs. What each phase served per route, who ran the POST, and each route's computations
    (the computing pids, in order)."""
    with two_workers(url, tmp_path, namespace, attach) as base, _one_connection_each() as client:
        before = _gets(client, base, 30)
        posted = client.post(f"{base}/item")
        assert posted.status_code == 200 and posted.json() == {"version": 1}
        after = _gets(client, base, 60)
    lines = [line.split() for line in (tmp_path / "app-state" / "computations").read_text().splitlines()]
    return {"before": before, "post_pid": int(posted.headers["x-worker-pid"]), "after": after,
            "computations": {route: [int(pid) for r, pid in lines if r == route] for route in ROUTES}}


def _pids(served: list[tuple[int, dict]]) -> set[int]:
    return {pid for pid, _ in served}


def _stale(served: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """What was served after the POST with the old version."""
    return [(pid, body) for pid, body in served if body["version"] != 1]


def _assert_no_stale(run: dict, route: str) -> None:
    before, after = run["before"][route], run["after"][route]
    # Both workers served both phases (else nothing here would be about sharing).
    assert len(_pids(before)) == 2 and len(_pids(after)) == 2, (route, _pids(before), _pids(after))
    stale = _stale(after)
    assert stale == [], f"/{route}: {len(stale)} of {len(after)} GETs after the POST served the old item"


def _assert_computed_once(run: dict, route: str) -> None:
    """Once per version across both workers: before the POST both workers served the one
    computation (same computing pid and number), after it the one recomputation."""
    before, after = run["before"][route], run["after"][route]
    first, second = before[0][1], after[0][1]
    assert first == {"version": 0, "computed_by": first["computed_by"], "computation": 1}, first
    assert [body for _, body in before] == [first] * len(before), f"/{route} before the POST"
    assert second == {"version": 1, "computed_by": second["computed_by"], "computation": 2}, second
    assert [body for _, body in after] == [second] * len(after), f"/{route} after the POST"
    assert run["computations"][route] == [first["computed_by"], second["computed_by"]]


def test_two_uvicorn_workers_on_lmdb_serve_no_stale_item_after_an_invalidation(tmp_path, namespace):
    run = _scenario(f"lmdb://{tmp_path}/store", tmp_path, namespace)
    for route in ROUTES:
        _assert_no_stale(run, route)
        _assert_computed_once(run, route)


def test_two_uvicorn_workers_on_lmdb_with_attach_serve_no_stale_item(tmp_path, namespace):
    """The same under HTTPCache.attach(app), whose early hits are a hit path of their own."""
    run = _scenario(f"lmdb://{tmp_path}/store", tmp_path, namespace, attach=True)
    for route in ROUTES:
        _assert_no_stale(run, route)
    _assert_computed_once(run, "item-async")
    _assert_computed_once(run, "item")


def test_two_uvicorn_workers_on_memory_serve_the_stale_item(tmp_path, namespace):
    """The control: the same steps on memory://, where each worker has a store of its own. The
    worker that did not run the POST keeps its copy of version 0 and serves it."""
    run = _scenario("memory://", tmp_path, namespace)
    for route in ROUTES:
        before, after = run["before"][route], run["after"][route]
        pids = _pids(before)
        assert len(pids) == 2 and _pids(after) == pids
        (other,) = pids - {run["post_pid"]}
        stale = _stale(after)
        assert stale and _pids(stale) == {other}, (route, stale)
        # Every GET the other worker served after the POST was stale; each worker computed version 0.
        assert len(stale) == sum(1 for pid, _ in after if pid == other)
        assert sorted(run["computations"][route][:2]) == sorted(pids)


# ---- 2. the decorators on lmdb:// -----------------------------------------------------------


def test_def_function_hit_miss_ttl_lapse_invalidation_and_stats(lmdb_cache, namespace):
    runs = []

    @cache(key="lm.def.{x}", ttl_in_seconds=1)
    def f(x: int) -> dict:
        runs.append(x)
        return {"x": x, "run": len(runs)}

    @invalidate_cache(key="lm.def.{x}")
    def drop(x: int) -> None:
        pass

    assert f(1) == {"x": 1, "run": 1} and f(1) == {"x": 1, "run": 1}  # a miss, then a hit
    assert f(2) == {"x": 2, "run": 2}  # another key: a miss
    value, ttl_ms = stored(lmdb_cache, namespace, "lm.def.1")
    assert value == b'{"x":1,"run":1}' and 0 < ttl_ms <= 1000  # in the directory, with its TTL
    drop(1)
    assert stored(lmdb_cache, namespace, "lm.def.1") is None
    assert f(1) == {"x": 1, "run": 3} and f(2) == {"x": 2, "run": 2}  # only 1 was invalidated
    time.sleep(1.1)
    assert stored(lmdb_cache, namespace, "lm.def.1") is None  # lapsed
    assert f(1) == {"x": 1, "run": 4} and f(1) == {"x": 1, "run": 4}
    assert runs == [1, 2, 1, 1]
    assert counts("hits", "misses", "stores", "errors", "uncached") == {
        "hits": 3, "misses": 4, "stores": 4, "errors": 0, "uncached": 0}


async def test_async_function_hit_miss_ttl_lapse_invalidation_and_stats(lmdb_cache, namespace):
    runs = []

    @cache(key="lm.async.{x}", ttl_in_seconds=1)
    async def f(x: int) -> dict:
        runs.append(x)
        return {"x": x, "run": len(runs)}

    @invalidate_cache(key="lm.async.{x}")
    async def drop(x: int) -> None:
        pass

    assert await f(1) == {"x": 1, "run": 1} and await f(1) == {"x": 1, "run": 1}
    assert await f(2) == {"x": 2, "run": 2}
    value, ttl_ms = stored(lmdb_cache, namespace, "lm.async.1")
    assert value == b'{"x":1,"run":1}' and 0 < ttl_ms <= 1000
    await drop(1)
    assert stored(lmdb_cache, namespace, "lm.async.1") is None
    assert await f(1) == {"x": 1, "run": 3} and await f(2) == {"x": 2, "run": 2}
    await asyncio.sleep(1.1)
    assert await f(1) == {"x": 1, "run": 4} and await f(1) == {"x": 1, "run": 4}
    assert runs == [1, 2, 1, 1]
    assert counts("hits", "misses", "stores", "errors", "uncached") == {
        "hits": 3, "misses": 4, "stores": 4, "errors": 0, "uncached": 0}


class Item(BaseModel):
    id: int
    name: str
    run: int


def test_fastapi_routes_cache_a_response_and_a_model(lmdb_cache, namespace):
    runs = {"text": 0, "model": 0}
    app = FastAPI()

    @app.get("/text")
    @cache(key="lm.text", ttl_in_seconds=60)
    def text():
        runs["text"] += 1
        return Response(f"plain {runs['text']}", media_type="text/csv", headers={"x-made": "here"})

    @app.get("/items/{item_id}", response_model=Item)
    @cache(key="lm.item.{item_id}", ttl_in_seconds=60)
    async def item(item_id: int):
        runs["model"] += 1
        return Item(id=item_id, name="widget", run=runs["model"])

    def two_gets(client: TestClient, path: str) -> tuple[httpx.Response, httpx.Response]:
        return client.get(path), client.get(path)

    with TestClient(app) as client:
        first, hit = two_gets(client, "/text")
        assert first.text == hit.text == "plain 1" and hit.headers["cache-hit"] == "true"
        assert hit.headers["content-type"].startswith("text/csv") and hit.headers["x-made"] == "here"
        first, hit = two_gets(client, "/items/7")
        assert first.json() == hit.json() == {"id": 7, "name": "widget", "run": 1}
        assert hit.headers["cache-hit"] == "true" and "cache-hit" not in first.headers
    assert runs == {"text": 1, "model": 1}
    assert stored(lmdb_cache, namespace, "lm.item.7") is not None

    # The entries are the directory's, not the handles': a new init() (new handles, the store
    # closed and opened again) still serves them.
    HTTPCache.close()
    gc.collect()
    HTTPCache.init(redis_url=lmdb_cache, namespace=namespace)
    with TestClient(app) as client:
        assert client.get("/text").headers["cache-hit"] == "true"
        assert client.get("/items/7").json()["run"] == 1
    assert runs == {"text": 1, "model": 1}


def test_namespaces_on_one_directory_are_apart(lmdb_cache, namespace):
    other = namespace + "_other"
    runs = []

    def compute(tag: str) -> str:
        runs.append(tag)
        return f"{tag}-{len(runs)}"

    @cache(key="shared.key", ttl_in_seconds=60)
    def mine() -> str:
        return compute("mine")

    @cache(key="shared.key", ttl_in_seconds=60, namespace=other)
    def theirs() -> str:
        return compute("theirs")

    @invalidate_cache(key="shared.key")
    def drop_mine() -> None:
        pass

    assert mine() == "mine-1" and theirs() == "theirs-2"  # one key name, two entries
    assert mine() == "mine-1" and theirs() == "theirs-2"
    drop_mine()
    assert theirs() == "theirs-2" and mine() == "mine-3"  # the other namespace's entry stayed
    # Two bare handles on the directory: each sees only its namespace's entry.
    assert stored(lmdb_cache, namespace, "shared.key")[0] == b'"mine-3"'
    assert stored(lmdb_cache, other, "shared.key")[0] == b'"theirs-2"'
    assert stored(lmdb_cache, namespace + "_third", "shared.key") is None


async def test_the_seeds_backend_api_reads_and_writes_the_decorators_entries(lmdb_cache, namespace):
    backend = HTTPCacheBackend(namespace=namespace)
    runs = []

    @cache(key="lm.seed", ttl_in_seconds=60)
    async def seeded() -> dict:
        runs.append(1)
        return {"computed": True}

    assert await backend.set("lm.seed", {"set": "by the backend"}, ttl_in_seconds=60) is True
    assert await seeded() == {"set": "by the backend"} and runs == []
    assert await backend.get(f"{namespace}:lm.seed") == (60, {"set": "by the backend"})
    # invalidate says whether the key held a live entry (the store's delete count).
    assert await backend.invalidate("lm.seed") is True
    assert await backend.invalidate("lm.seed") is False
    assert await backend.get("lm.seed") == (-2, None)
    assert await seeded() == {"computed": True} and runs == [1]


# ---- 3. processes sharing a directory ---------------------------------------------------------

SHARED_KEY = "lm.shared"
SHARED_TAG = "lm-tag"


def _shared_functions(runs: list[str]):
    """The @cache function both processes call (what it returns names the computing process and
    its count there), and its @invalidate_cache."""

    @cache(key=SHARED_KEY, ttl_in_seconds=60, tags=[SHARED_TAG])
    def shared() -> str:
        runs.append("run")
        return f"{os.getpid()}-{len(runs)}"

    @invalidate_cache(key=SHARED_KEY)
    def drop() -> None:
        pass

    return shared, drop


def _peer(url: str, namespace: str, conn) -> None:
    """The other process (spawned: module level). Answers "call" with (what shared() returned,
    its computations so far), "drop" and "drop_tag" with None once done; "stop" ends it."""
    HTTPCache.init(redis_url=url, namespace=namespace)
    runs: list[str] = []
    shared, drop = _shared_functions(runs)
    actions = {"call": lambda: (shared(), len(runs)), "drop": drop,
               "drop_tag": lambda: HTTPCache.invalidate_tags(SHARED_TAG)}
    conn.send("ready")
    while (command := conn.recv()) != "stop":
        conn.send(actions[command]())


def test_processes_on_one_directory_see_each_others_entries_and_invalidations(lmdb_cache, namespace):
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    peer = ctx.Process(target=_peer, args=(lmdb_cache, namespace, there), daemon=True)
    peer.start()
    try:
        assert here.poll(60) and here.recv() == "ready"

        def ask(command: str):
            here.send(command)
            assert here.poll(30), f"the peer did not answer {command!r}"
            return here.recv()

        runs: list[str] = []
        shared, drop = _shared_functions(runs)
        me, them = os.getpid(), peer.pid
        assert ask("call") == (f"{them}-1", 1)
        assert shared() == f"{them}-1" and runs == []  # its entry, served here
        drop()
        assert ask("call") == (f"{them}-2", 2)  # my invalidation, seen by its next call
        assert shared() == f"{them}-2" and runs == []
        ask("drop")
        assert shared() == f"{me}-1"  # its invalidation, seen by my next call
        assert ask("call") == (f"{me}-1", 2)
        HTTPCache.invalidate_tags(SHARED_TAG)
        assert ask("call") == (f"{them}-3", 3)  # a tag invalidated here
        assert shared() == f"{them}-3"
        ask("drop_tag")
        assert shared() == f"{me}-2" and ask("call") == (f"{me}-2", 3)  # a tag invalidated there
        here.send("stop")
    finally:
        peer.join(10)
        if peer.is_alive():
            peer.kill()
            peer.join(5)
    assert peer.exitcode == 0


def test_lock_ttl_computes_a_cold_key_once_across_processes(lmdb_url, namespace):
    """stampede_worker.run (test_stampede.py's processes) on lmdb://: 3 processes x 10 threads."""
    processes, callers = 3, 10
    outcomes, computations, exits = stampede_worker.run_processes(lmdb_url, namespace, processes, callers, 0.3)
    assert exits == [0] * processes
    assert [v for values, _ in outcomes for v in values] == [{"answer": 42}] * (processes * callers)
    assert computations == 1
    assert sum(st["errors"] for _, st in outcomes) == 0
    assert stored(lmdb_url, namespace, "cold")[0] == b'{"answer":42}'


# ---- 4. URLs and settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, says",
    [
        ("lmdb://relative", "lmdb:// needs an absolute directory"),
        ("lmdb://", "lmdb:// needs an absolute directory"),
        ("lmdb:///", "not /"),
        ("lmdb:///x?max_bytes=1", "max_bytes must be a number from 1048576 to 1099511627776"),
        ("lmdb:///x?max_bytes", "'max_bytes' has no value"),
        ("lmdb:///x?nope=1", "unknown query parameter 'nope' (lmdb:// takes max_bytes)"),
    ],
)
def test_bad_urls_are_value_errors_saying_why(url, says, namespace):
    with pytest.raises(ValueError) as e:
        HTTPCache.init(redis_url=url, namespace=namespace)
    assert str(e.value).startswith(f"invalid redis_url {url!r}: ") and says in str(e.value), str(e.value)
    assert not os.path.exists("/x")  # refused before anything was created


def test_a_directory_that_cannot_be_made_is_an_error_at_init(tmp_path, namespace):
    with pytest.raises(_httpcache.Error, match="cannot create the directory"):
        HTTPCache.init(redis_url=f"lmdb://{tmp_path}/missing/store", namespace=namespace)


def test_another_max_bytes_is_a_value_error_naming_both(tmp_path, namespace):
    url = f"lmdb://{tmp_path}/store"
    HTTPCache.init(redis_url=f"{url}?max_bytes={2 * MiB}", namespace=namespace)
    try:
        # While this process has the store open...
        with pytest.raises(ValueError, match=f"max_bytes={2 * MiB}, not {4 * MiB}"):
            HTTPCache.init(redis_url=f"{url}?max_bytes={4 * MiB}", namespace=namespace)
        # ... and from another process, which opens the files themselves.
        code = ("import sys; from httpcache import HTTPCache\n"
                "try: HTTPCache.init(redis_url=sys.argv[1], namespace='n')\n"
                "except ValueError as e: print(e)\n")
        env = {**os.environ, "PYTHONPATH": _pythonpath()}
        said = subprocess.run([sys.executable, "-c", code, f"{url}?max_bytes={4 * MiB}"], env=env,
                              capture_output=True, text=True, timeout=60).stdout
        assert f"was created with max_bytes={2 * MiB}, not {4 * MiB}" in said, said
        # The default (256 MiB) is a value too.
        with pytest.raises(ValueError, match=f"max_bytes={2 * MiB}, not {256 * MiB}"):
            HTTPCache.init(redis_url=url, namespace=namespace)
        HTTPCache.init(redis_url=f"{url}?max_bytes={2 * MiB}", namespace=namespace + "_2")  # the same: fine
    finally:
        HTTPCache.close()


def test_redis_client_is_none(lmdb_cache):
    assert HTTPCache.redis_client is None
