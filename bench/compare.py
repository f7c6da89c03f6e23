#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The tables of bench/compare.sh: per case, the old and new medians and new/old, the median of
the per-round ratios (each round ran old then new within minutes), with every round's ratio.

    compare.py RUN_DIR      (c-old-1.json, c-new-1.json, py-old-1.md, py-new-1.md, ...)
"""
import json
import pathlib
import re
import statistics
import sys

run = pathlib.Path(sys.argv[1])


def c_medians(path: pathlib.Path) -> dict[str, float]:
    out = {}
    for b in json.loads(path.read_text())["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[b["run_name"]] = b["real_time"] if b["time_unit"] == "ns" else b["real_time"] * 1000
    return {k: v / 1000.0 for k, v in out.items()}  # us


def py_medians(path: pathlib.Path) -> dict[str, float]:
    out, section = {}, ""
    for line in path.read_text().splitlines():
        if line.startswith("#### "):
            section = line[5:].split("(")[0].strip()
        m = re.match(r"\| (.+?) \| ([0-9.]+) \| [0-9.]+\.\.[0-9.]+ \|", line)
        if m:
            out[f"{section}: {m.group(1).replace(' (baseline)', '')}"] = float(m.group(2))
    return out


def table(title: str, kind: str, read) -> None:
    rounds = sorted({int(p.stem.rsplit("-", 1)[1]) for p in run.glob(f"{kind}-old-*")})
    pairs = [(read(next(run.glob(f"{kind}-old-{r}.*"))), read(next(run.glob(f"{kind}-new-{r}.*")))) for r in rounds]
    print(f"| {title} ({len(pairs)} rounds) | old us | new us | new/old (per round) |")
    print("|---|---:|---:|---:|")
    for name in pairs[0][0]:
        olds = [o[name] for o, n in pairs if name in o and name in n]
        news = [n[name] for o, n in pairs if name in o and name in n]
        if not olds:
            continue
        ratios = [b / a for a, b in zip(olds, news)]
        each = " / ".join(f"{x:.2f}" for x in ratios)
        print(f"| {name} | {statistics.median(olds):.2f} | {statistics.median(news):.2f} | "
              f"{statistics.median(ratios):.2f}x ({each}) |")
    print()


table("C benchmark", "c", c_medians)
table("Python call benchmark", "py", py_medians)
