# SPDX-License-Identifier: MIT
"""A real HTTP cache in front of the app: Debian's nginx with proxy_cache, on loopback, for
tests/python/test_proxy.py (issue 16). running_nginx() writes a config into a private directory
(its cache, temp paths, logs and pid file live there), starts `nginx -g 'daemon off;'` in a
subprocess on a free port, waits until it answers, yields its base URL and stops it by pid.

Two locations proxy the same upstream:
- /        honours the app's Cache-Control and Expires: what we say is shareable, for as long
           as we say (the usual deployment);
- /short/  keeps anything for one second and then revalidates it with the app (If-None-Match,
           proxy_cache_revalidate): how a proxy uses our validators and 304s.
Every response says what nginx did in X-Proxy-Cache ($upstream_cache_status)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from uvicorn_support import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def tool_env() -> dict:
    """This environment for a system tool (nginx, curl, a browser): without the sanitizer
    runtime the suite may preload for our own library under ASan, which such tools must not load."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}

_CONFIG = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
{user}
events {{ worker_connections 64; }}
http {{
  access_log {dir}/access.log;
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  proxy_cache_path {dir}/cache levels=1:2 keys_zone=httpcache_test:1m max_size=16m inactive=10m use_temp_path=off;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://{upstream};
      proxy_cache httpcache_test;
      proxy_cache_key $request_uri;
      proxy_cache_revalidate on;
      add_header X-Proxy-Cache $upstream_cache_status always;
    }}
    location /short/ {{
      proxy_pass http://{upstream}/;
      proxy_cache httpcache_test;
      proxy_cache_key short$request_uri;
      proxy_cache_revalidate on;
      proxy_ignore_headers Cache-Control Expires;
      proxy_cache_valid 200 1s;
      add_header X-Proxy-Cache $upstream_cache_status always;
    }}
  }}
}}
"""


@contextlib.contextmanager
def running_nginx(upstream: str, work: pathlib.Path, start_timeout: float = 15.0) -> Iterator[str]:
    """nginx with proxy_cache in front of `upstream` (http://host:port); yields its base URL."""
    if not os.access(NGINX, os.X_OK):
        pytest.fail("nginx is not installed: run scripts/install-deps.sh (it installs Debian's nginx)",
                    pytrace=False)
    for sub in ("cache", "tmp"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(work / "cache", 0o777)
    port = free_port()
    # As root, nginx's workers would run as "nobody" and could not write the cache here.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    conf.write_text(_CONFIG.format(dir=work, port=port, upstream=upstream.removeprefix("http://"), user=user))
    log = work / "nginx.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([NGINX, "-p", str(work), "-c", str(conf), "-e", str(work / "error.log"),
                                 "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT, env=tool_env())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"nginx exited ({proc.returncode}): {log.read_text(errors='replace')}"
                            f"{(work / 'error.log').read_text(errors='replace')[-2000:]}", pytrace=False)
            try:
                httpx.get(url + "/__nginx_ready__", timeout=1.0, trust_env=False)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nginx did not answer on {url}", pytrace=False)
                time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
