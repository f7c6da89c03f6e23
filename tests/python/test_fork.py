# SPDX-License-Identifier: MIT
"""fork() after the cache was used: gunicorn --preload, a warm-up at import, multiprocessing's fork
start method. A child must never use a connection it inherited (it would read replies meant for
the parent or a sibling: other users' values), and the parent must be unaffected.

Two shapes, on one Redis server and on the cluster:
- os.fork after warming HTTPCache (sync and async calls done, a thread still calling while the
  parent forks): 4 children x 2,000 calls of a cached `def` function and 2,000 of an `async def`
  one, on distinct keys, every value checked; the parent keeps calling meanwhile.
- a pre-forking server: the parent creates a FastAPI app, warms the cache through it, then forks
  4 workers that serve 2,000 requests each (sync and async routes, per-user keys) through the
  ASGI app, every body checked.

Each child reports its counts through a pipe and exits with 0 only if none is wrong; a child that
hangs (on a lock, or freeing the handle) is killed at a deadline and counted."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest
from fastapi import Depends, FastAPI

from httpcache import HTTPCache, cache

CHILDREN = 4
CALLS = int(os.environ.get("HTTPCACHE_TEST_FORK_CALLS", "2000"))
WARM = 50
DEADLINE_S = 120


class User:
    def __init__(self, id: str) -> None:
        self.id = id


def value_of(uid: str) -> dict:
    return {"id": uid, "value": f"value-of-{uid}", "pad": uid * 3}


# Under the ASan stage (libasan preloaded), a thread of ours pauses at this gate while a child is
# forked: Debian 12's libasan (GCC 12) does not hold its allocator's locks across fork() (LLVM's
# runtime does since version 18), so a child forked while another thread is inside malloc can
# deadlock in the sanitizer itself. Uninstrumented runs fork with the thread running.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
fork_gate = threading.Lock()


def _quiesce_for_asan() -> None:
    """Under ASan, waits for the threads other than ours (gated ones excepted) to end first:
    Starlette's thread pool stops its workers when the event loop that used them closes, and a
    thread exiting (or starting) runs the sanitizer's own allocator too."""
    for t in threading.enumerate():
        if t is not threading.current_thread() and not getattr(t, "gated", False):
            t.join(timeout=10)
    time.sleep(0.05)  # join returns before the OS thread's last steps inside the sanitizer


def _fork_children(body) -> list[dict]:
    """Forks CHILDREN children running body(i) -> counts dict; returns the children's reports
    (with their exit status) once all have exited or the deadline passed (then killed)."""
    children = []
    if UNDER_ASAN:
        _quiesce_for_asan()
    for i in range(CHILDREN):
        r, w = os.pipe()
        if UNDER_ASAN:
            with fork_gate:
                pid = os.fork()
        else:
            pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 3
            signal.alarm(DEADLINE_S + 30)  # never outlives a killed parent for long
            try:
                os.close(r)
                counts = body(i)
                os.write(w, json.dumps(counts).encode())
                os.close(w)
                bad = counts["wrong"] + counts["missing"] + counts["failed"]
                HTTPCache.close()  # frees the inherited handles: must not wait on anything
                import gc

                gc.collect()
                code = 1 if bad else 0
            except BaseException as e:  # noqa: BLE001 - report anything, never unwind into pytest
                try:
                    os.write(w, json.dumps({"error": repr(e)}).encode())
                except OSError:
                    pass
            finally:
                os._exit(code)
        os.close(w)
        children.append((pid, r))
    return children


def _print_stacks(pid: int) -> None:
    """Prints every thread's stack of a hung child (with gdb, when the machine has it), so a hang
    in CI says where it waits."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return
    try:
        out = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                             capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:  # the child is killed next either way
        print(f"hung child {pid}: gdb gave no stacks within 60 s")
        return
    print(f"hung child {pid}:\n{out.stdout[-20000:]}")


def _collect(children, keep_busy=None) -> list[dict]:
    reports = []
    deadline = time.monotonic() + DEADLINE_S
    pending = dict(children)
    status = {}
    while pending:
        if keep_busy is not None:
            keep_busy()
        else:
            time.sleep(0.01)
        for pid in list(pending):
            done, st = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                status[pid] = os.waitstatus_to_exitcode(st)
                del pending[pid]
            elif time.monotonic() > deadline:
                _print_stacks(pid)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status[pid] = "hung (killed)"
                del pending[pid]
    for pid, r in children:
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        report = json.loads(data) if data else {}
        report["exit"] = status[pid]
        reports.append(report)
    return reports


def _check(reports, parent) -> None:
    print("children:", reports, "parent:", parent)
    for rep in reports:
        assert rep["exit"] == 0, reports
        assert rep["wrong"] == 0 and rep["missing"] == 0 and rep["failed"] == 0, reports
    assert parent["wrong"] == 0 and parent["failed"] == 0, parent


def _new_counts() -> dict:
    return {"calls": 0, "wrong": 0, "missing": 0, "failed": 0}


def test_os_fork_children_get_only_their_own_values(redis_backend, namespace):
    HTTPCache.init(redis_url=redis_backend, namespace=namespace, tz="UTC", command_timeout_ms=10000,
                   connect_timeout_ms=10000, breaker_failures=1000000)
    computed = []

    @cache(key="fork_sync.{}", obj="user", obj_attr="id", ttl_in_seconds=120)
    def sync_value(user):
        computed.append(user.id)
        return value_of(user.id)

    @cache(key="fork_async.{}", obj="user", obj_attr="id", ttl_in_seconds=120)
    async def async_value(user):
        computed.append(user.id)
        return value_of(user.id)

    def check(counts, uid, got):
        counts["calls"] += 1
        if got != value_of(uid):
            counts["wrong"] += 1

    # Warm: stored values, pooled connections, an async context with requests done.
    for n in range(WARM):
        sync_value(User(f"warm{n}"))

    async def warm_async():
        await asyncio.gather(*(async_value(User(f"awarm{n}")) for n in range(WARM)))

    asyncio.run(warm_async())

    # A thread keeps calling while the parent forks (its pool connections are mid-use then).
    parent = _new_counts()
    stop = threading.Event()

    def parent_thread():
        n = 0
        while not stop.is_set():
            uid = f"parent-t{n % 300}"
            if UNDER_ASAN:
                with fork_gate:
                    check(parent, uid, sync_value(User(uid)))
            else:
                check(parent, uid, sync_value(User(uid)))
            n += 1

    t = threading.Thread(target=parent_thread)
    t.gated = True  # it pauses at fork_gate under ASan
    t.start()
    time.sleep(0.05)

    def child(i: int) -> dict:
        counts = _new_counts()
        computed.clear()
        for n in range(CALLS // 2):  # each key twice: a miss (computed, stored), then a hit
            uid = f"c{i}-{n}"
            check(counts, uid, sync_value(User(uid)))
            check(counts, uid, sync_value(User(uid)))
            if n % 10 == 0:
                w = f"warm{n % WARM}"
                check(counts, w, sync_value(User(w)))
        if len([c for c in computed if c.startswith("warm")]) != 0:
            counts["missing"] += 1  # a warm key the parent stored was not found

        async def run_async():
            for start in range(0, CALLS // 2, 50):  # 50 concurrent callers at a time
                uids = [f"a{i}-{n}" for n in range(start, min(start + 50, CALLS // 2))]
                for _ in range(2):
                    got = await asyncio.gather(*(async_value(User(u)) for u in uids))
                    for u, g in zip(uids, got):
                        check(counts, u, g)
                w = f"awarm{start % WARM}"
                check(counts, w, await async_value(User(w)))

        asyncio.run(run_async())
        return counts

    children = _fork_children(child)

    loop = asyncio.new_event_loop()
    busy = {"n": 0}

    def keep_busy():  # the parent's own async calls while the children run
        async def some():
            uids = [f"parent-a{(busy['n'] + k) % 300}" for k in range(20)]
            got = await asyncio.gather(*(async_value(User(u)) for u in uids))
            for u, g in zip(uids, got):
                check(parent, u, g)

        loop.run_until_complete(some())
        busy["n"] += 20

    try:
        reports = _collect(children, keep_busy)
    finally:
        stop.set()
        t.join()
        loop.close()
    stats = HTTPCache.stats()
    parent["failed"] += stats["errors"]
    HTTPCache.close()
    _check(reports, parent)


def _asgi_get(app, path: str):
    """One GET through the ASGI app, as a server would run it; returns (status, body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent = {"status": None, "body": b""}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")

    async def run():
        await app(scope, receive, send)
        return sent["status"], sent["body"]

    return run()


def test_prefork_server_workers_serve_only_their_own_values(redis_backend, namespace):
    """A pre-forking server (gunicorn --preload's shape): the app and the cache are made and warmed
    in the parent, then 4 workers serve requests on distinct per-user keys."""
    HTTPCache.init(redis_url=redis_backend, namespace=namespace, tz="UTC", command_timeout_ms=10000,
                   connect_timeout_ms=10000, breaker_failures=1000000)
    app = FastAPI()

    def current_user(uid: str) -> User:  # as an auth dependency hands the user over
        return User(uid)

    @app.get("/a/{uid}")
    @cache(key="route-a.{}", obj="user", obj_attr="id", ttl_in_seconds=120)
    async def route_async(user: User = Depends(current_user)):
        return value_of(user.id)

    @app.get("/s/{uid}")
    @cache(key="route-s.{}", obj="user", obj_attr="id", ttl_in_seconds=120)
    def route_sync(user: User = Depends(current_user)):
        return value_of(user.id)

    def check(counts, uid, status_body):
        status, body = status_body
        counts["calls"] += 1
        if status != 200:
            counts["failed"] += 1
        elif json.loads(body) != value_of(uid):
            counts["wrong"] += 1

    async def warm():
        for n in range(WARM):
            for kind in ("a", "s"):
                await _asgi_get(app, f"/{kind}/warm{n}")

    asyncio.run(warm())

    def worker(i: int) -> dict:
        counts = _new_counts()

        async def serve():
            for start in range(0, CALLS // 2, 25):  # 25 requests in flight at a time
                uids = [f"w{i}-{n}" for n in range(start, min(start + 25, CALLS // 2))]
                paths = [(kind, u) for u in uids for kind in ("a", "s")]
                got = await asyncio.gather(*(_asgi_get(app, f"/{kind}/{u}") for kind, u in paths))
                for (kind, u), sb in zip(paths, got):
                    check(counts, u, sb)
                w = f"warm{start % WARM}"
                check(counts, w, await _asgi_get(app, f"/a/{w}"))
                check(counts, w, await _asgi_get(app, f"/s/{w}"))

        asyncio.run(serve())
        return counts

    children = _fork_children(worker)
    parent = _new_counts()
    loop = asyncio.new_event_loop()
    busy = {"n": 0}

    def keep_busy():
        async def some():
            for k in range(10):
                u = f"parent-{(busy['n'] + k) % 200}"
                check(parent, u, await _asgi_get(app, f"/a/{u}"))
                check(parent, u, await _asgi_get(app, f"/s/{u}"))

        loop.run_until_complete(some())
        busy["n"] += 10

    try:
        reports = _collect(children, keep_busy)
    finally:
        loop.close()
    stats = HTTPCache.stats()
    parent["failed"] += stats["errors"]
    HTTPCache.close()
    _check(reports, parent)
