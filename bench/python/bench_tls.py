#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hits over TLS, one caller at a time: httpcache's @cache over rediss:// beside redis-py over TLS
(with its hiredis parser, as production installs it), async and sync, in one process and run,
round-robin repetitions (bench_calls.py's machinery and payload). The plain-TCP tables are
bench_calls.py's.

    bench_tls.py --redis-url 'rediss://127.0.0.1:PORT?ssl_ca_certs=/path/ca.crt' [--reps N]
"""
import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_calls as bc  # noqa: E402


async def main_async(args: argparse.Namespace) -> str:
    raw = bc.build_redispy(args.redis_url)
    ours = bc.build_httpcache(args.redis_url)
    out = []
    a = await bc.measure_table("async hit over TLS, one caller", [
        bc.Case("redis-py asyncio GET over TLS (hiredis parser)", "ahit", raw["aget"]),
        bc.Case("httpcache @cache async def over TLS", "ahit", *ours["ahit"]),
    ], args.reps, args.rep_seconds)
    out.append(bc.table("Async hit over TLS, one caller at a time", a, a[0]))
    s = await bc.measure_table("sync hit over TLS", [
        bc.Case("redis-py GET over TLS (hiredis parser)", "shit", raw["sget"]),
        bc.Case("httpcache @cache def over TLS", "shit", *ours["shit"]),
    ], args.reps, args.rep_seconds)
    out.append(bc.table("Sync hit over TLS", s, s[0]))
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--rep-seconds", type=float, default=0.25)
    args = p.parse_args()
    print(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
