# SPDX-License-Identifier: MIT
"""HTTP benchmark: the seed's FastAPI /b/home route under wrk, uncached and cached by each library.

    python bench_http.py --redis-url redis://127.0.0.1:PORT [--duration 10] [--runs 3]

Each variant (bench/python/apps/*.py) is its own uvicorn process: 1 worker, 127.0.0.1, a free
port, --no-access-log, --loop uvloop --http httptools (both pinned in requirements.txt, what
`uvicorn[standard]` installs). All variants are started first and checked (the second GET of a
cached variant must serve the first one's body, the uncached one must not); each gets a warm-up
(which also fills its cache); then `runs` rounds of `wrk -t2 -c32 -dDURATION --latency` go
round-robin over the variants so machine drift hits them alike. Reported: median requests/s,
p50 and p99 latency of the median run, the server's CPU time per request (utime+stime from
/proc, i.e. what the Python process itself spends), and the ratios of issue 6. Every server is
stopped by its pid at the end, also on errors and SIGTERM.

The near tier (issue 17) adds floors and variants, measured in the same rounds:
  floor-asgi          a bare ASGI app sending one prebuilt /b/home response (status, headers and
                      body made at import): the server's own cost per request, the most any app
                      on it can serve. HTTPCache.attach's early hit is held to >= 0.9x of it.
  floor-middleware    a FastAPI app whose router is that bare app: FastAPI's own middleware stack
                      (which attach's early hits run inside) and nothing else. No target: it
                      says how much of the ASGI floor an early hit on a FastAPI app can reach.
  floor-routing       the same FastAPI route returning a prebuilt JSONResponse: FastAPI's routing
                      floor, the most a cache behind the router (a decorator) can serve; the
                      decorator path is held to >= 0.97x of it.
  floor-routing-user  the same with a `Depends(current_user)` user: the floor of a per-user route.
  floor-routing-headers  the routing floor's response with the five headers a hit carries (Cache-Hit,
                      Cache-Control, Age, Expires, ETag): what sending them costs. No target.
  httpcache-near, httpcache-routed-near   the attach and decorator-only variants with
                      HTTPCache.init(..., near_cache=True): hits need no Redis round trip.
  httpcache-user-near the per-user route (Depends user, key from the user, decorator path), near
                      tier on; held to >= 0.97x floor-routing-user.
  cashews-near        cashews with `cache.setup(url, client_side=True)`, its local tier.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")

# name -> (module, label, cached)
VARIANTS: dict[str, tuple[str, str, bool]] = {
    "uncached": ("apps.uncached", "uncached (no cache)", False),
    "httpcache": ("apps.httpcache_app", "httpcache (Redis, HTTPCache.attach)", True),
    "httpcache-freeze": ("apps.httpcache_freeze_app", "httpcache (Redis, attach(freeze_gc=True))", True),
    "httpcache-routed": ("apps.httpcache_routed_app", "httpcache (Redis, decorator only)", True),
    "authx_extra": ("apps.authx_app", "authx_extra.cache (seed, Redis)", True),
    "fastapi-cache2": ("apps.fastapi_cache_app", "fastapi-cache2 (RedisBackend)", True),
    "cashews": ("apps.cashews_app", "cashews (redis)", True),
    # issue 17: the floors (a constant response: "cached" for the checks) and the near tier
    "floor-asgi": ("apps.floor_asgi", "floor: bare ASGI app, prebuilt response (server floor)", True),
    "floor-middleware": ("apps.floor_middleware", "floor: FastAPI's middleware stack around the bare app", True),
    "floor-routing": ("apps.floor_routing", "floor: FastAPI route returning a prebuilt Response (routing floor)", True),
    "floor-routing-user": ("apps.floor_routing_user", "floor: the same with a Depends user (per-user routing floor)", True),
    "floor-routing-headers": ("apps.floor_routing_headers",
                              "floor: the routing floor's response with a hit's five cache headers", True),
    "httpcache-near": ("apps.httpcache_near_app", "httpcache (Redis + near tier, HTTPCache.attach)", True),
    "httpcache-routed-near": ("apps.httpcache_routed_near_app", "httpcache (Redis + near tier, decorator only)", True),
    "httpcache-user-near": ("apps.httpcache_user_near_app",
                            "httpcache (Redis + near tier, decorator, per-user route with a Depends user)", True),
    "cashews-near": ("apps.cashews_near_app", "cashews (redis, client_side=True)", True),
}
PEERS = ["authx_extra", "fastapi-cache2", "cashews"]
# issue 17's targets: (variant, its floor, the least req/s ratio to that floor)
NEAR_TARGETS = [
    ("httpcache-near", "floor-asgi", 0.9),
    ("httpcache-routed-near", "floor-routing", 0.97),
    ("httpcache-user-near", "floor-routing-user", 0.97),
]
# shown beside them, no target: the same paths without the near tier, the peer's near tier
NEAR_CONTEXT = [
    ("floor-middleware", "floor-asgi"),
    ("httpcache-near", "floor-middleware"),
    ("httpcache", "floor-asgi"),
    ("httpcache-routed", "floor-routing"),
    ("floor-routing-headers", "floor-routing"),
    ("httpcache-routed-near", "floor-routing-headers"),
    ("httpcache-user-near", "floor-routing"),
    ("cashews-near", "floor-routing"),
    ("cashews", "floor-routing"),
    ("uncached", "floor-routing"),
]


def log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


class Server:
    def __init__(self, name: str, redis_url: str, workdir: str, gc_freeze: bool) -> None:
        self.name = name
        self.module, self.label, self.cached = VARIANTS[name]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/b/home"
        self.gc_log = os.path.join(workdir, f"gc-{name}.log")
        if os.path.exists(self.gc_log):
            os.unlink(self.gc_log)
        env = dict(os.environ, BENCH_REDIS_URL=redis_url, PYTHONPATH=HERE, BENCH_GC_LOG=self.gc_log,
                   BENCH_GC_FREEZE="1" if gc_freeze else "0")
        self.logfile = open(os.path.join(workdir, f"uvicorn-{name}.log"), "wb")
        cmd = [sys.executable, "-m", "uvicorn", f"{self.module}:app", "--host", "127.0.0.1", "--port",
               str(self.port), "--workers", "1", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
               "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=self.logfile, stderr=subprocess.STDOUT)
        self.runs: list[dict[str, Any]] = []
        self.rss: list[float] = []  # MB after the warm-up, then after each run

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name}: uvicorn exited with {self.proc.returncode} (see {self.logfile.name})")
            try:
                status, _ = get(self.url)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name}: not ready after {timeout} s (see {self.logfile.name})")

    def check(self) -> None:
        """A cached variant serves the first body again; the uncached one computes each time."""
        _, first = get(self.url)
        time.sleep(0.01)
        _, second = get(self.url)
        a, b = json.loads(first), json.loads(second)
        if a.get("page") != "home" or b.get("page") != "home":
            raise SystemExit(f"{self.name}: unexpected body {first!r} / {second!r}")
        if self.cached and a != b:
            raise SystemExit(f"{self.name}: second GET was not served from the cache ({a} vs {b})")
        if not self.cached and a == b:
            raise SystemExit(f"{self.name}: the uncached route returned the same datetime twice")

    def full_collections(self, t0: float, t1: float) -> list[float]:
        """Pauses (ms) of the full collections between t0 and t1 (unix time)."""
        try:
            with open(self.gc_log) as f:
                rows = [line.split() for line in f if line.strip()]
        except FileNotFoundError:
            return []
        return [float(ms) for t, ms in rows if t0 <= float(t) <= t1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logfile.close()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"cannot parse latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, duration: float, connections: int, threads: int) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "5s", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res: dict[str, Any] = {"raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise SystemExit(f"wrk printed no Requests/sec:\n{out}")
    res["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[f"p{pct}"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:\s+connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["sockerr"] = sum(int(x) for x in m.groups()) if m else 0
    return res


def run(args: argparse.Namespace) -> str:
    names = args.variants
    workdir = args.workdir
    os.makedirs(workdir, exist_ok=True)
    servers: list[Server] = []

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        for n in names:
            servers.append(Server(n, args.redis_url, workdir, args.gc_freeze))
        for s in servers:
            s.wait_ready()
            s.check()
            log(f"[http] {s.name}: pid {s.proc.pid}, {s.url}")
        for s in servers:
            log(f"[http] warm-up {s.name} ({args.warmup:g} s)")
            wrk(s.url, args.warmup, args.connections, args.threads)
            s.rss = [rss_mb(s.proc.pid)]
        for r in range(args.runs):
            for s in servers:
                cpu0, t0 = cpu_seconds(s.proc.pid), time.time()
                res = wrk(s.url, args.duration, args.connections, args.threads)
                res["cpu_us_per_req"] = (cpu_seconds(s.proc.pid) - cpu0) * 1e6 / max(res["requests"], 1)
                pauses = s.full_collections(t0, time.time())
                res["gc_per_s"] = len(pauses) / args.duration
                res["gc_ms"] = statistics.median(pauses) if pauses else 0.0
                s.runs.append(res)
                s.rss.append(rss_mb(s.proc.pid))
                log(f"[http] run {r + 1}/{args.runs} {s.name:15s} {res['rps']:9.0f} req/s  p50 {res['p50']:.2f} ms"
                    f"  p99 {res['p99']:.2f} ms  server CPU {res['cpu_us_per_req']:.0f} us/req"
                    f"  full GCs {res['gc_per_s']:.1f}/s of {res['gc_ms']:.1f} ms"
                    + (f"  NON-2XX {res['non2xx']}" if res["non2xx"] else "")
                    + (f"  socket errors {res['sockerr']}" if res["sockerr"] else ""))
                if res["non2xx"]:
                    raise SystemExit(f"{s.name}: {res['non2xx']} non-2xx responses under load")
        for s in servers:
            s.check()  # still served from the cache after the load
    finally:
        for s in servers:
            s.stop()
    return report(servers, args)


def report(servers: list[Server], args: argparse.Namespace) -> str:
    by = {s.name: s for s in servers}
    summary: dict[str, dict[str, Any]] = {}
    for s in servers:
        rps = [r["rps"] for r in s.runs]
        med = statistics.median(rps)
        mid = sorted(s.runs, key=lambda r: r["rps"])[len(s.runs) // 2]  # the median run
        summary[s.name] = dict(rps=med, runs=rps, p50=mid["p50"], p99=mid["p99"],
                               cpu=statistics.median(r["cpu_us_per_req"] for r in s.runs),
                               gc_per_s=statistics.median(r["gc_per_s"] for r in s.runs),
                               gc_ms=statistics.median(r["gc_ms"] for r in s.runs),
                               sockerr=sum(r["sockerr"] for r in s.runs),
                               requests=sum(r["requests"] for r in s.runs))
    base = summary.get("uncached")
    freeze = ", apps call gc.freeze() after import (--gc-freeze)" if args.gc_freeze else ""
    lines = [
        f"### HTTP: the seed's FastAPI /b/home under wrk (bench/python/bench_http.py{freeze})",
        "",
        f"uvicorn {uvicorn_version()}, 1 worker, --loop uvloop --http httptools, 127.0.0.1; wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration:g}s --latency after a {args.warmup:g} s warm-up; {args.runs} runs per "
        "variant, round-robin; median req/s, latency of the median run; all cached variants serve hits. "
        "server CPU = uvicorn process utime+stime per request; full GCs = CPython generation-2 collections "
        "during the run (per second, median pause); RSS = the server's resident memory after the warm-up and "
        "after the last run.",
        "",
        "| variant | req/s (median) | runs | p50 ms | p99 ms | p99/p50 | server CPU us/req | full GCs | RSS MB | req/s vs uncached |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for s in servers:
        v = summary[s.name]
        rel = f"{v['rps'] / base['rps']:.2f}x" if base else "-"
        err = f" ({v['sockerr']} socket errors)" if v["sockerr"] else ""
        lines.append(f"| {s.label}{err} | {v['rps']:.0f} | {' / '.join(f'{x:.0f}' for x in v['runs'])} | "
                     f"{v['p50']:.2f} | {v['p99']:.2f} | {v['p99'] / v['p50']:.2f} | {v['cpu']:.0f} | "
                     f"{v['gc_per_s']:.1f}/s, {v['gc_ms']:.1f} ms | {s.rss[0]:.1f} -> {s.rss[-1]:.1f} "
                     f"({v['requests']:,} req) | {rel} |")
    lines.append("")
    if "httpcache" in summary:
        ours = summary["httpcache"]
        lines += ["| target (bench_http.py) | measured | |", "|---|---:|---|"]
        peers = [p for p in PEERS if p in summary]
        if peers:
            best = max(peers, key=lambda p: summary[p]["rps"])
            r = ours["rps"] / summary[best]["rps"]
            lines.append(f"| httpcache req/s vs best peer ({by[best].label}) | {r:.2f}x (>= 1.5) | {ok(r >= 1.5)} |")
            for p in peers:
                if p != best:
                    r2 = ours["rps"] / summary[p]["rps"]
                    lines.append(f"| httpcache req/s vs {by[p].label} | {r2:.2f}x (> 1.0) | {ok(r2 > 1.0)} |")
        if base:
            r = ours["rps"] / base["rps"]
            lines.append(f"| httpcache req/s vs uncached route | {r:.2f}x (>= 0.6) | {ok(r >= 0.6)} |")
        r = ours["p99"] / ours["p50"]
        lines.append(f"| httpcache p99/p50 | {r:.2f} (< 3) | {ok(r < 3)} |")
        frozen = summary.get("httpcache-freeze")
        if frozen:
            r = frozen["p99"] / frozen["p50"]
            lines.append(f"| httpcache p99/p50 with attach(freeze_gc=True) | {r:.2f} (< 3) | {ok(r < 3)} |")
            if peers:
                r = frozen["rps"] / summary[best]["rps"]
                lines.append(f"| attach(freeze_gc=True): req/s vs best peer ({by[best].label}) | {r:.2f}x (>= 1.5) | {ok(r >= 1.5)} |")
        routed = summary.get("httpcache-routed")
        if routed and peers:
            r = routed["rps"] / summary[best]["rps"]
            lines.append(f"| decorator only (no attach): req/s vs best peer ({by[best].label}) | {r:.2f}x (> 1.0) | {ok(r > 1.0)} |")
        lines.append("")
    near = [(v, f, t) for v, f, t in NEAR_TARGETS if v in summary and f in summary]
    if near:
        lines += ["| target (issue 17, near tier: req/s vs its floor) | measured | |", "|---|---:|---|"]
        for v, f, t in near:
            r = summary[v]["rps"] / summary[f]["rps"]
            lines.append(f"| {by[v].label} vs {by[f].label} | {r:.2f}x (>= {t:g}) | {ok(r >= t)} |")
        for v, f in NEAR_CONTEXT:
            if v in summary and f in summary:
                r = summary[v]["rps"] / summary[f]["rps"]
                lines.append(f"| {by[v].label} vs {by[f].label} | {r:.2f}x | (no target) |")
        if "cashews-near" in summary:
            for v in ("httpcache-near", "httpcache-routed-near", "httpcache-user-near"):
                if v in summary:
                    r = summary[v]["rps"] / summary["cashews-near"]["rps"]
                    lines.append(f"| {by[v].label} vs {by['cashews-near'].label} | {r:.2f}x | (no target) |")
        lines.append("")
    return "\n".join(lines)


def ok(b: bool) -> str:
    return "met" if b else "**missed**"


def uvicorn_version() -> str:
    import uvicorn

    return uvicorn.__version__


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--gc-freeze", action="store_true",
                    help="apps call gc.freeze() after import (BENCH_GC_FREEZE=1): the p99 analysis")
    ap.add_argument("--workdir", default=os.path.join(HERE, "..", ".run", "python-http"))
    args = ap.parse_args()
    print(run(args))


if __name__ == "__main__":
    main()
