# SPDX-License-Identifier: MIT
"""The app a real browser loads in tests/python/test_browser.py (issue 16): a page whose script
fetches two cached routes three times each, an edit that invalidates one, and a fourth fetch,
then writes what the Resource Timing API saw (transferSize per fetch) and the bodies into the
page, which headless Chromium dumps. /seen counts the requests that reached the app."""

from __future__ import annotations

import collections
import os

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from httpcache import HTTPCache, cache, invalidate_cache

HTTPCache.init(os.environ.get("HTTPCACHE_TEST_APP_URL", "memory://"), "UTC",
               os.environ.get("HTTPCACHE_TEST_APP_NAMESPACE", "browser"))
app = FastAPI()
seen: collections.Counter = collections.Counter()
versions = {"kept": 1, "fresh": 1}
PAD = "x" * 1000  # a body well above the headers, so a 304's transferSize shows it carried none

PAGE = """<!doctype html><html><body><pre id="out">running</pre><script>
async function load(path) {
  const r = await fetch(path);
  return {status: r.status, body: await r.text()};
}
(async () => {
  const out = {};
  for (const name of ["kept", "fresh"]) {
    const bodies = [];
    for (let i = 0; i < 3; i++) bodies.push((await load("/data/" + name)).body);
    await fetch("/edit/" + name, {method: "POST"});
    bodies.push((await load("/data/" + name)).body);
    const timing = performance.getEntriesByType("resource")
      .filter(e => e.name.endsWith("/data/" + name)).map(e => e.transferSize);
    out[name] = {bodies, timing};
  }
  document.getElementById("out").textContent = "RESULT " + JSON.stringify(out);
})();
</script></body></html>"""


@app.middleware("http")
async def count(request: Request, call_next):
    seen[request.url.path] += 1
    return await call_next(request)


@app.get("/", response_class=HTMLResponse)
async def page():
    return PAGE


@app.get("/data/kept")
@cache(key="br.kept", ttl_in_seconds=600)
async def kept():
    return {"name": "kept", "version": versions["kept"], "pad": PAD}


@app.get("/data/fresh")
@cache(key="br.fresh", ttl_in_seconds=600, revalidate=True)
async def fresh():
    return {"name": "fresh", "version": versions["fresh"], "pad": PAD}


@app.post("/edit/kept")
@invalidate_cache(key="br.kept")
async def edit_kept():
    versions["kept"] += 1
    return {"edited": "kept"}


@app.post("/edit/fresh")
@invalidate_cache(key="br.fresh")
async def edit_fresh():
    versions["fresh"] += 1
    return {"edited": "fresh"}


@app.get("/seen")
def seen_counts():
    return dict(seen)
