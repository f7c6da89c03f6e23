# SPDX-License-Identifier: MIT
"""Python memory soak: a million decorated calls (sync and async; hits, misses with stores,
invalidations, a failing function) must not grow the process. RSS and tracemalloc's view of
Python-level allocations are sampled after warm-up and at the end.

    python bench/python/soak.py [CALLS] [REDIS_URL]
Exits non-zero if RSS grows by more than 4 MiB or Python allocations by more than 1 MiB after
warm-up (the first 10% of the calls)."""
import asyncio
import sys
import tracemalloc

from httpcache import HTTPCache, cache, invalidate_cache


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def run(url: str, calls: int) -> tuple[int, int]:
    HTTPCache.init(redis_url=url, namespace="soak", tz="UTC", memory_max_entries=5000)

    @cache(key="sync.{}", obj="n", obj_attr="real", ttl_in_seconds=60)
    def sync_value(n):
        return {"n": n, "payload": "x" * 200}

    @cache(key="async.{}", obj="n", obj_attr="real", ttl_in_seconds=60)
    async def async_value(n):
        return [n, "y" * 200]

    @invalidate_cache(key="sync.{}", obj="n", obj_attr="real")
    def forget(n):
        return None

    @cache(key="failing", ttl_in_seconds=60)
    def failing():
        raise RuntimeError("expected")

    async def batch(start: int, count: int) -> None:
        for i in range(start, start + count):
            n = i % 20000
            if i % 10 == 9:
                forget(n)
            elif i % 100 == 42:
                try:
                    failing()
                except RuntimeError:
                    pass
            elif i % 2:
                sync_value(n)
            else:
                await async_value(n)

    warm = calls // 10
    asyncio.run(batch(0, warm))
    tracemalloc.start()
    rss0, py0 = rss_kb(), tracemalloc.get_traced_memory()[0]
    asyncio.run(batch(warm, calls - warm))
    rss1, py1 = rss_kb(), tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return rss1 - rss0, (py1 - py0) // 1024


def main() -> int:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    bad = 0
    for url in ["memory://"] + sys.argv[2:3]:
        n = calls if url == "memory://" else calls // 5
        rss, py = run(url, n)
        name = url.split("://")[0]
        print(f"python {name}: {n} mixed calls: RSS growth after warm-up {rss} kB, Python allocations {py} kB")
        bad |= rss > 4096 or py > 1024
    return bad


if __name__ == "__main__":
    sys.exit(main())
