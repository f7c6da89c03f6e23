"""Invalidations that reach browsers (issue 16), checked in a real browser: Debian's Chromium,
headless, loads browser_app.py from a real uvicorn and reports what its Resource Timing API saw.

- A route cached with max-age: the browser fetches it once (transferSize > 0) and answers the
  next fetches from its own cache (transferSize 0, the server sees one request), so after
  @invalidate_cache it keeps showing the old data for up to max-age.
- revalidate=True: every fetch revalidates (the server sees each one; the repeats are bodiless
  304s from httpcache), and the first fetch after the invalidation shows the new data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import httpx
import pytest

from nginx_support import tool_env
from uvicorn_support import running_uvicorn

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def served(tmp_path, namespace):
    env = {"HTTPCACHE_TEST_APP_URL": "memory://", "HTTPCACHE_TEST_APP_NAMESPACE": namespace, "HTTPCACHE_DISABLED": None}
    with running_uvicorn("browser_app:app", loop="asyncio", log_dir=tmp_path / "uvicorn", env=env) as url:
        yield url


def _browse(url: str, profile) -> dict:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run scripts/install-deps.sh (it installs Debian's chromium)",
                    pytrace=False)
    cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
           "--virtual-time-budget=15000", "--dump-dom", url + "/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=tool_env())
    found = re.search(r"RESULT (\{.*\})</pre>", out.stdout.replace("&quot;", '"'))
    assert found, f"no result in the page (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return json.loads(found.group(1))


def test_browser_keeps_max_age_copies_and_revalidates_with_revalidate(served, tmp_path):
    result = _browse(served, tmp_path / "profile")
    seen = httpx.get(served + "/seen", timeout=10, trust_env=False).json()
    kept, fresh = result["kept"], result["fresh"]
    # max-age: one request reached the server; the repeats came from the browser's cache, and
    # the fetch after the invalidation still showed the old version.
    assert seen.get("/data/kept") == 1, seen
    assert kept["timing"][0] > 0 and kept["timing"][1:] == [0, 0, 0], kept["timing"]
    assert [json.loads(b)["version"] for b in kept["bodies"]] == [1, 1, 1, 1]
    # revalidate=True: every fetch reached the server; the repeats were 304s (headers only), and
    # the first fetch after the invalidation showed the new version.
    assert seen.get("/data/fresh") == 4, seen
    assert all(t > 0 for t in fresh["timing"]), fresh["timing"]
    assert max(fresh["timing"][1:3]) < fresh["timing"][0] - 900, "the repeats were bodiless 304s"
    assert [json.loads(b)["version"] for b in fresh["bodies"]] == [1, 1, 1, 2]
