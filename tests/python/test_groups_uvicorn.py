"""Issue 16's tags, stale windows and variants over real HTTP: groups_app.py served by a real
uvicorn on loopback (on the default asyncio loop and on uvloop), caching in memory:// and in the
real Redis of the test fixture."""

from __future__ import annotations

import time

import httpx
import pytest

from uvicorn_support import uvicorn_server


@pytest.fixture(params=["memory", "redis"])
def app_url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


server = uvicorn_server(
    "groups_app:app",
    env=lambda app_url, namespace: {"HTTPCACHE_TEST_APP_URL": app_url, "HTTPCACHE_TEST_APP_NAMESPACE": namespace},
)


def test_tags_stale_and_variants_over_real_http(server):
    with httpx.Client(base_url=server, timeout=10, trust_env=False) as http:
        assert [http.get(f"/items/{i}").json()["run"] for i in (1, 2, 1, 2)] == [1, 1, 1, 1]
        http.put("/items/1")  # its tag only
        assert [http.get(f"/items/{i}").json()["run"] for i in (1, 2)] == [2, 1]

        first = http.get("/stale").json()
        time.sleep(1.2)
        http.post("/fail/1")
        answered = http.get("/stale")  # the handler raises: answered with the stale entry
        assert answered.status_code == 200 and answered.json() == first
        assert int(answered.headers["age"]) >= 1 and "warning" not in answered.headers
        http.post("/fail/0")
        refreshed = http.get("/stale").json()
        assert refreshed["run"] > first["run"]
        assert http.get("/stale").json() == refreshed

        langs = ["en", "fr", "en", "fr"]
        got = [http.get("/greeting", headers={"accept-language": lang}).json() for lang in langs]
        assert [g["lang"] for g in got] == langs and [g["run"] for g in got] == [1, 1, 1, 1]
