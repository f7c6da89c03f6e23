# SPDX-License-Identifier: MIT
"""Instructions per call of httpcache's Python hit paths on memory:// (sync and async decorated
functions), counted by callgrind: repeatable on a busy machine, where timings are not. Run by
bench/instructions.sh, which runs this twice per case (N and 2N calls) and takes the difference,
so interpreter start-up and warm-up cancel out.

    python instructions.py CASE CALLS        CASE: sync | async
"""

from __future__ import annotations

import asyncio
import sys

from httpcache import HTTPCache, cache

PAYLOAD = {"user": {"id": 112358, "name": "alice"}, "items": list(range(20)), "ok": True}


def main() -> None:
    case, calls = sys.argv[1], int(sys.argv[2])
    HTTPCache.init(redis_url="memory://", namespace="instr")

    @cache(key="instr.sync", ttl_in_seconds=600)
    def sync_hit() -> dict:
        return PAYLOAD

    @cache(key="instr.async", ttl_in_seconds=600)
    async def async_hit() -> dict:
        return PAYLOAD

    if case == "sync":
        sync_hit()
        for _ in range(calls):
            sync_hit()
    else:
        async def run() -> None:
            await async_hit()
            for _ in range(calls):
                await async_hit()

        asyncio.run(run())


if __name__ == "__main__":
    main()
