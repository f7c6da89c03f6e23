#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns Google Benchmark JSON files (one per round, each with repetitions) into a Markdown table:
the median time per case over the rounds, and its ratio to the baseline measured in the same
round (raw hiredis for Redis hits, a raw OpenSSL client for TLS hits, the mutex-guarded map for memory:// hits, one server for the
cluster, the memory:// hit for the near tier's hit of issue 17 and lmdb://'s hit), the median over rounds, with each round's ratio shown. Rounds are run one after the
other, so drift of a noisy machine (a quiet minute for the baseline alone) moves one round's
ratio, not the median.

    report.py c-1.json [c-2.json ...]
"""
import json
import statistics
import sys

rounds = []
for path in sys.argv[1:]:
    median = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("aggregate_name") == "median":
            median[b["run_name"]] = b["real_time"] if b["time_unit"] == "ns" else b["real_time"] * 1000
    rounds.append(median)

rows = []
def row(label, name, base=None, target=None, limit=None):
    """limit: the target as a largest ratio; the target column then says whether the median met it."""
    times = [r[name] for r in rounds if name in r]
    if not times:
        return
    ratio = ""
    if base:
        ratios = [r[name] / r[base] for r in rounds if name in r and base in r]
        if ratios:
            ratio = f"{statistics.median(ratios):.2f}x"
            if limit is not None:
                target = f"{target}: {'met' if statistics.median(ratios) <= limit else '**missed**'}"
            if len(ratios) > 1:
                ratio += " (" + " / ".join(f"{x:.2f}" for x in ratios) + ")"
    rows.append(f"| {label} | {statistics.median(times) / 1000.0:.2f} | {ratio} | {target or ''} |")

for t in ("threads:1", "threads:2"):
    n = t.split(":")[1]
    row(f"raw hiredis GET+PTTL ({n} thr)", f"BM_raw_hiredis_get_pttl/real_time/{t}")
    row(f"httpcache hit, Redis ({n} thr)", f"BM_redis_hit/real_time/{t}", f"BM_raw_hiredis_get_pttl/real_time/{t}", "<= 1.15x")
    row(f"httpcache hit, cluster ({n} thr)", f"BM_cluster_hit/real_time/{t}", f"BM_redis_hit/real_time/{t}", "vs one server")
    row(f"mutex+unordered_map copy ({n} thr)", f"BM_map_floor/real_time/{t}")
    row(f"httpcache hit, memory:// ({n} thr)", f"BM_memory_hit/real_time/{t}", f"BM_map_floor/real_time/{t}", "<= 4x")
    row(f"httpcache near hit, Redis + near tier ({n} thr)", f"BM_near_hit/real_time/{t}", f"BM_memory_hit/real_time/{t}",
        "<= 2x (vs memory://)", limit=2.0)
    row(f"httpcache hit, lmdb:// ({n} thr)", f"BM_lmdb_hit/real_time/{t}", f"BM_memory_hit/real_time/{t}",
        "<= 2x (vs memory://)", limit=2.0)
row("raw OpenSSL GET+PTTL over TLS (1 thr)", "BM_raw_openssl_get_pttl/real_time/threads:1")
row("httpcache hit, Redis over TLS (1 thr)", "BM_tls_hit/real_time/threads:1", "BM_raw_openssl_get_pttl/real_time/threads:1", "vs raw TLS")
row("miss + store, Redis", "BM_redis_miss_store/real_time", "BM_raw_hiredis_get_pttl/real_time/threads:1")
row("miss + store, memory://", "BM_memory_miss_store/real_time")
row("miss + store, lmdb://", "BM_lmdb_miss_store/real_time", "BM_redis_miss_store/real_time", "vs Redis")
row("invalidate 1 key, Redis", "BM_redis_invalidate/1/real_time")
row("invalidate 10 keys, Redis", "BM_redis_invalidate/10/real_time", "BM_redis_invalidate/1/real_time")

print(f"| C benchmark (median of repetitions, {len(rounds)} round(s)) | us/call | ratio to baseline (per round) | target |")
print("|---|---:|---:|---|")
print("\n".join(rows))
