#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns Google Benchmark JSON (with repetitions) into a Markdown table of medians and the ratios
to the baselines measured in the same run: raw hiredis for Redis hits, the mutex-guarded map for
memory:// hits, one server for the cluster."""
import json
import sys

data = json.load(open(sys.argv[1]))
median = {}
for b in data["benchmarks"]:
    if b.get("aggregate_name") == "median":
        median[b["run_name"]] = b["real_time"] if b["time_unit"] == "ns" else b["real_time"] * 1000

def us(name):
    return median[name] / 1000.0

rows = []
def row(label, name, base=None, target=None):
    if name not in median:
        return
    ratio = f"{median[name] / median[base]:.2f}x" if base and base in median else ""
    rows.append(f"| {label} | {us(name):.2f} | {ratio} | {target or ''} |")

for t in ("threads:1", "threads:2"):
    n = t.split(":")[1]
    row(f"raw hiredis GET+PTTL ({n} thr)", f"BM_raw_hiredis_get_pttl/real_time/{t}")
    row(f"httpcache hit, Redis ({n} thr)", f"BM_redis_hit/real_time/{t}", f"BM_raw_hiredis_get_pttl/real_time/{t}", "<= 1.15x")
    row(f"httpcache hit, cluster ({n} thr)", f"BM_cluster_hit/real_time/{t}", f"BM_redis_hit/real_time/{t}", "vs one server")
    row(f"mutex+unordered_map copy ({n} thr)", f"BM_map_floor/real_time/{t}")
    row(f"httpcache hit, memory:// ({n} thr)", f"BM_memory_hit/real_time/{t}", f"BM_map_floor/real_time/{t}", "<= 4x")
row("miss + store, Redis", "BM_redis_miss_store/real_time", "BM_raw_hiredis_get_pttl/real_time/threads:1")
row("miss + store, memory://", "BM_memory_miss_store/real_time")
row("invalidate 1 key, Redis", "BM_redis_invalidate/1/real_time")
row("invalidate 10 keys, Redis", "BM_redis_invalidate/10/real_time", "BM_redis_invalidate/1/real_time")

print("| C benchmark (median of repetitions) | us/call | ratio to baseline | target |")
print("|---|---:|---:|---|")
print("\n".join(rows))
