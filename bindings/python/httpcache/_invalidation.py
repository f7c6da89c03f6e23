# SPDX-License-Identifier: MIT
"""Invalidating keys and tags through a handle, blocking or on an event loop's context. A
failure is an outage like any other: told to the handle's Health (logged once per outage),
never raised to the caller, whose write already happened."""

from __future__ import annotations

from typing import Any

from . import _httpcache

Handle = Any  # _config.Handle: not imported, since _config imports this module


def invalidate_sync(handle: Handle, keys: list[bytes] = (), tags: list[bytes] = ()) -> None:  # type: ignore[assignment]
    """Deletes keys (one round trip) and invalidates tags (one per tag), blocking."""
    for what, items, call in (("invalidate", keys, handle.cache.invalidate),
                              ("invalidate tags", tags, handle.cache.invalidate_tags)):
        if not items:
            continue
        ticket = handle.ticket()
        try:
            call(list(items))
            handle.backend_ok(ticket)
        except _httpcache.Error as e:
            handle.backend_failed(ticket, what, e.code, str(e))


async def invalidate_async(handle: Handle, loop: Any, keys: list[bytes] = (), tags: list[bytes] = ()) -> None:  # type: ignore[assignment]
    """The same on the loop's context, which also voids this loop's flights (and shared reads)
    that an invalidation makes stale."""
    adapter = handle.adapter(loop)
    for what, items, start in (("invalidate", keys, adapter.invalidate),
                               ("invalidate tags", tags, adapter.invalidate_tags)):
        if not items:
            continue
        ticket = handle.ticket()
        status, detail = await start(loop, list(items))  # detail: a count, or the error message
        if status == _httpcache.OK:
            handle.backend_ok(ticket)
        else:
            handle.backend_failed(ticket, what, status, detail)
