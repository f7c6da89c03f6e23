"""What the chaos tests (test_chaos.py, test_tls.py) share: waiting for a handle's next hit."""

from __future__ import annotations

import time

from httpcache import HTTPCache


def wait_for_hit(namespace: str, limit_s: float) -> float | None:
    """Seconds until the core counts a hit on `namespace`'s handle (a value read back from the
    revived or resumed server), or None if none comes within limit_s."""
    handle = HTTPCache.handle(namespace)
    before = handle.cache.stats()["hits"]
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if handle.cache.stats()["hits"] > before:
            return time.monotonic() - start
        time.sleep(0.005)
    return None
