"""A real HTTP cache in front (issue 16): Debian's nginx with proxy_cache before a uvicorn app
using httpcache. nginx stores what we say is shareable for as long as we say, revalidates with
If-None-Match and gets our 304, never stores a private response, and curl through it sees Age,
Expires and max-age that agree."""

from __future__ import annotations

import email.utils
import subprocess
import time

import httpx
import pytest

from nginx_support import running_nginx, tool_env
from uvicorn_support import running_uvicorn


@pytest.fixture
def proxied(tmp_path, namespace):
    env = {"HTTPCACHE_TEST_APP_URL": "memory://", "HTTPCACHE_TEST_APP_NAMESPACE": namespace, "HTTPCACHE_DISABLED": None}
    with running_uvicorn("proxy_app:app", loop="asyncio", log_dir=tmp_path / "uvicorn", env=env) as upstream:
        with running_nginx(upstream, tmp_path / "nginx") as front:
            with httpx.Client(base_url=front, timeout=10, trust_env=False) as http:
                yield http, upstream


def _seen(upstream: str) -> dict:
    return httpx.get(upstream + "/seen", timeout=10, trust_env=False).json()


def test_nginx_stores_what_we_share_for_as_long_as_we_say(proxied):
    http, upstream = proxied
    first, second = http.get("/shared"), http.get("/shared")
    assert first.headers["x-proxy-cache"] == "MISS" and second.headers["x-proxy-cache"] == "HIT"
    assert first.content == second.content and _seen(upstream).get("/shared") == 1
    brief = http.get("/brief")
    assert brief.headers["x-proxy-cache"] == "MISS" and http.get("/brief").headers["x-proxy-cache"] == "HIT"
    time.sleep(3.2)  # past the 2 s we said (nginx counts whole seconds, and expires strictly after)
    again = http.get("/brief")
    assert again.headers["x-proxy-cache"] in ("EXPIRED", "REVALIDATED")
    assert _seen(upstream).get("/brief") == 2


def test_nginx_revalidates_with_our_etag_and_gets_our_304(proxied):
    http, upstream = proxied
    first = http.get("/short/shared")
    assert first.headers["x-proxy-cache"] == "MISS" and "etag" in first.headers
    time.sleep(2.2)  # nginx keeps /short/ one second (whole seconds, strictly after), then revalidates
    second = http.get("/short/shared")
    assert second.headers["x-proxy-cache"] == "REVALIDATED", second.headers
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert _seen(upstream).get("/shared") == 2  # the revalidation reached the app, answered 304


def test_nginx_never_stores_a_private_response(proxied):
    http, upstream = proxied
    for who in ("alice", "bob", "alice"):
        r = http.get("/mine", headers={"x-user": who})
        assert r.json() == {"user": who} and r.headers["x-proxy-cache"] == "MISS"
        assert r.headers["cache-control"].startswith("private")
    assert _seen(upstream).get("/mine") == 3


def test_curl_sees_consistent_age_expires_and_max_age(proxied):
    http, _ = proxied
    http.get("/shared")  # stored upstream (our miss) and in nginx
    time.sleep(1.2)
    for path in ("/shared", "/short/shared"):
        out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", str(http.base_url).rstrip("/") + path],
                             capture_output=True, text=True, timeout=10, check=True, env=tool_env()).stdout
        headers = dict(line.split(": ", 1) for line in out.splitlines()[1:] if ": " in line)
        headers = {k.lower(): v for k, v in headers.items()}
        max_age = int(headers["cache-control"].split("max-age=")[1].split(",")[0])
        age = int(headers.get("age", "0"))
        date = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
        expires = email.utils.parsedate_to_datetime(headers["expires"]).timestamp()
        assert abs((expires - date) - (max_age - age)) <= 2, headers
