# SPDX-License-Identifier: MIT
"""A real uvicorn on loopback for the tests: what TestClient cannot show (a separate server
process, real HTTP over TCP, uvicorn's own choice of event loop) is what users deploy.

running_uvicorn() starts `python -m uvicorn MODULE:app --host 127.0.0.1 --port <free port>
--loop {asyncio|uvloop}` in a subprocess, with this environment passed through and PYTHONPATH
naming the httpcache package this test process imported (build/python under CTest) and
tests/python (where the app modules live); it waits until the server answers HTTP, yields the
base URL, and stops the server by its pid: SIGTERM, then SIGKILL after a timeout, also when the
test fails. uvicorn_server() makes a pytest fixture of it, parametrized by loop.

A server that dies, or does not answer in time, fails the test with the tail of its log."""

from __future__ import annotations

import contextlib
import inspect
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping

import httpx
import pytest

import httpcache

HERE = pathlib.Path(__file__).resolve().parent
LOOPS = ("asyncio", "uvloop")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (uvicorn binds it a moment later; a
    port taken in between makes the start fail, and running_uvicorn tries another)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pythonpath() -> str:
    # The directory holding the httpcache package this process imported, so the server runs the
    # same build (build/python) whatever the caller's PYTHONPATH says.
    package_root = pathlib.Path(httpcache.__file__).resolve().parent.parent
    parts = [str(package_root), str(HERE)]
    parts += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in parts]
    return os.pathsep.join(parts)


def _tail(log: pathlib.Path, lines: int = 40) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _stop(proc: subprocess.Popen, timeout: float) -> bool:
    """SIGTERM (uvicorn's graceful shutdown: lifespan shutdown, open connections closed), then
    SIGKILL if it has not exited within `timeout`. True when SIGTERM sufficed."""
    if proc.poll() is not None:
        return True
    proc.terminate()
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


@contextlib.contextmanager
def running_uvicorn(
    app: str,
    *,
    loop: str,
    log_dir: pathlib.Path,
    env: Mapping[str, str | None] | None = None,
    ready_path: str = "/__not_a_route__",
    start_timeout: float = 30.0,
    stop_timeout: float = 10.0,
    check_exit: bool = True,
) -> Iterator[str]:
    """Serves `app` ("module:attribute", found on tests/python) with uvicorn on `loop` ("asyncio"
    or "uvloop") and yields its base URL, http://127.0.0.1:PORT.

    `env` is added to this process's environment (a None value removes the variable). The
    server is ready when `ready_path` gets any HTTP answer (a 404 will do: uvicorn listens only
    once the app's lifespan start-up is done). With `check_exit`, a server that does not exit
    cleanly on SIGTERM within `stop_timeout` fails the test at teardown: a cache that
    hangs or crashes a server's shutdown is a bug users would meet on every deploy (uvicorn
    re-raises SIGTERM once it has shut down, so -SIGTERM after its last log line is clean too)."""
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, not {loop!r}")
    child_env = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            child_env.pop(name, None)
        else:
            child_env[name] = value
    child_env["PYTHONPATH"] = _pythonpath()
    log_dir.mkdir(parents=True, exist_ok=True)

    for attempt in range(3):
        port = free_port()
        log = log_dir / f"uvicorn-{loop}-{port}.log"
        cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
               "--loop", loop, "--workers", "1", "--no-access-log"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=HERE, env=child_env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                if proc.poll() is not None:
                    break
                try:
                    # trust_env=False: an HTTP(S)_PROXY of the environment must not see loopback.
                    httpx.get(url + ready_path, timeout=1.0, trust_env=False)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"uvicorn {app} (--loop {loop}) did not answer on {url} within "
                                    f"{start_timeout}s; its log:\n{_tail(log)}", pytrace=False)
                    time.sleep(0.05)
        except BaseException:
            _stop(proc, stop_timeout)
            raise
        if proc.returncode is None:
            break
        # Exited before answering: another process took the port in between, or a real failure.
        if "address already in use" in _tail(log).lower() and attempt < 2:
            continue
        pytest.fail(f"uvicorn {app} (--loop {loop}) exited with status {proc.returncode} before "
                    f"answering; its log:\n{_tail(log)}", pytrace=False)

    try:
        yield url
    finally:
        graceful = _stop(proc, stop_timeout)
    if check_exit and not (graceful and _clean_exit(proc.returncode, log)):
        how = f"exited with status {proc.returncode}" if graceful else f"was still running {stop_timeout}s after SIGTERM (killed)"
        pytest.fail(f"uvicorn {app} (--loop {loop}) {how}; its log:\n{_tail(log)}", pytrace=False)


def _clean_exit(returncode: int, log: pathlib.Path) -> bool:
    # uvicorn handles SIGTERM (lifespan shutdown, then "Finished server process") and then raises
    # the signal again with the default action, so a clean stop reads -SIGTERM, never 0. The log
    # line tells it from a death by SIGTERM before uvicorn's handler was in place.
    if returncode == 0:
        return True
    return returncode == -signal.SIGTERM and "Finished server process" in _tail(log, 5)


def uvicorn_server(
    app: str,
    *,
    env: Callable[..., Mapping[str, str | None]] | None = None,
    loops: tuple[str, ...] = LOOPS,
    **options,
):
    """A function-scoped pytest fixture serving `app` with a real uvicorn, once per loop of
    `loops` (ids "asyncio", "uvloop"); its value is the base URL. `env` gives the server's extra
    environment; its parameters name the fixtures it needs (the fixture requests them, so
    parametrized ones parametrize the server too). `options` go to running_uvicorn. In a test
    module::

        server = uvicorn_server("my_app:app", env=lambda redis_url: {"APP_REDIS_URL": redis_url})
    """
    needs = list(inspect.signature(env).parameters) if env is not None else []

    def fixture(request, tmp_path_factory, **values):
        extra = env(**values) if env is not None else {}
        with running_uvicorn(app, loop=request.param, log_dir=tmp_path_factory.mktemp("uvicorn"),
                             env=extra, **options) as url:
            yield url

    # pytest reads a fixture's dependencies from its signature: name env's fixtures there.
    keyword = inspect.Parameter.KEYWORD_ONLY
    fixture.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("request", "tmp_path_factory")]
        + [inspect.Parameter(n, keyword) for n in needs]
    )
    return pytest.fixture(params=loops)(fixture)
