# SPDX-License-Identifier: MIT
"""``HTTPCacheBackend``: the seed's (``authx_extra.cache``) async get/set/invalidate API, over
this package's own handles instead of a redis-py client.

Why over the handles: an entry written here is the one ``@cache`` reads, under the same key,
TTL rules and value format, and the other way round, on every backend the cache supports
(memory://, lmdb://, Redis, Cluster, Sentinel, TLS); and the seed's code that used it keeps working.

Why get and set run the blocking calls on the loop's executor rather than through the loop's
non-blocking context (``_asyncio.LoopAdapter``), which the decorators use: that context fences
stores with leases for single-flight (a miss there takes the key's lease, and a store from it can
be refused), which is right for a computation and wrong for an explicit ``set``, and a plain
``get`` must not leave a lease behind for other processes to trip on. The blocking calls are a
plain ``GET``+``PTTL`` and a plain ``SET ... PX``, as the seed's were. Invalidations do go
through the loop's context, as ``@invalidate_cache``'s do, so that they also void the
computations of those keys in flight on this loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from typing import Any, Callable, Iterable

from . import _httpcache
from ._codec import RECORD
from ._config import HTTPCache, Handle, check_namespace
from ._ttl import TtlChoice

_OK = _httpcache.OK


class HTTPCacheBackend:
    """The seed's cache backend: ``await backend.set(key, value, ...)``, ``await
    backend.get(key)``, ``await backend.invalidate(key)``, ``await backend.invalidate_all(keys)``.

    ``redis`` is accepted for compatibility with the seed's ``HTTPCacheBackend(redis=...,
    namespace=...)`` and ignored: entries go through the handle HTTPCache.init() configured (see
    the module docstring), so pass nothing, or ``HTTPCache.redis_client`` as the seed's code did.
    ``namespace``: the entries' namespace; None means init()'s, read at each call (so a backend
    made before init() follows it), as the decorators read it.

    Keys are the decorators' keys: ``"b.home"``, or a template's key once filled in
    (``"b.logged_in.112358"``; a filled-in value is percent-encoded outside ``[A-Za-z0-9_-]``,
    see the README). The backend key is ``<namespace>:<key>``; a key given with that prefix, as
    the seed's full keys were, is accepted too: the prefix is stripped.

    Values: bytes are stored as given; anything else as its JSON text (compact, the bytes
    ``@cache`` stores for the same value). ``get`` gives the JSON-decoded value; for a response
    ``@cache`` stored for a route (a response record), the JSON-decoded body, as the seed
    stored bodies; a value or body that is not JSON comes back as its bytes.

    Errors, as the seed's users met them: bad arguments raise ValueError or TypeError (a key
    that is not a str or bytes, an empty or oversized key, a value JSON cannot encode or over
    max_value_bytes, a bad TTL); an exception of ``ttl_func`` propagates. A backend outage
    (unreachable, timeout, refused, the circuit breaker open) raises ``httpcache.Error`` (its
    ``.code`` is ``EBACKEND`` or ``ETIMEOUT``), as the seed raised redis-py's errors: an explicit
    call, above all an invalidation, must not fail silently. It is logged once per outage, like
    the decorators' failures. With caching turned off (``init(enabled=False)``,
    ``HTTPCACHE_DISABLED=1``) nothing is read, stored or deleted: ``get`` misses, ``set`` and
    ``invalidate`` return False.
    """

    def __init__(self, redis: Any = None, namespace: str | None = None) -> None:
        if namespace is not None:
            check_namespace(namespace)
        self.redis = redis  # unused: see the class docstring
        self._namespace = namespace

    @property
    def namespace(self) -> str:
        return self._namespace or HTTPCache.namespace

    async def set(
        self,
        key: str | bytes,
        value: Any,
        ttl_in_seconds: int | None = None,
        ttl_func: Callable[[], Any] | None = None,
        end_of_day: bool = False,
        end_of_week: bool = False,
    ) -> bool:
        """Stores `value` under `key`; True when stored (False only with caching turned off).

        TTL precedence, as ``@cache``'s: ``ttl_func`` (sync or async, no arguments, returns
        seconds; awaited here) > ``ttl_in_seconds`` > ``end_of_week`` > end of the local day in
        init()'s zone (``end_of_day``, also what nothing given means)."""
        what = f"HTTPCacheBackend.set(key={key!r})"
        choice = TtlChoice(what, ttl_in_seconds, end_of_week, ttl_func)
        full = self._key(key)
        data = _encoded(value)
        if not HTTPCache.enabled:
            return False
        policy = choice.fixed if ttl_func is None else _httpcache.Policy.seconds(await _ttl_of(ttl_func, what))
        handle = HTTPCache.handle(self._namespace)
        await _blocking(handle, "set", handle.cache.set, full, data, policy)
        return True

    async def get(self, key: str | bytes) -> tuple[int, Any]:
        """(remaining TTL in seconds, the value), as the seed's ``(redis TTL, json.loads(value))``:
        on a miss ``(-2, None)``, as Redis's TTL says of a missing key (-1: a key without expiry,
        which only another client can write)."""
        full = self._key(key)
        if not HTTPCache.enabled:
            return -2, None
        handle = HTTPCache.handle(self._namespace)
        try:
            value, ttl_ms = await _blocking(handle, "get", handle.cache.get, full)
        except _httpcache.CacheMiss:
            return -2, None
        # Redis's TTL rounds the remaining milliseconds to the nearest second.
        return (-1 if ttl_ms < 0 else (ttl_ms + 500) // 1000), _decoded(value)

    async def invalidate(self, key: str | bytes) -> bool:
        """Deletes `key`; True when it existed."""
        return (await self._delete([self._key(key)]))[0]

    async def invalidate_all(self, keys: Iterable[str | bytes]) -> list[bool]:
        """Deletes `keys`; for each, True when it existed (as the seed's pipeline of DELs said)."""
        if isinstance(keys, (str, bytes)):
            raise TypeError(f"HTTPCacheBackend.invalidate_all: keys must be a list of keys, got {keys!r}")
        return await self._delete([self._key(k) for k in keys])

    async def _delete(self, keys: list[bytes]) -> list[bool]:
        if not keys or not HTTPCache.enabled:
            return [False] * len(keys)
        handle: Handle = HTTPCache.handle(self._namespace)
        loop = asyncio.get_running_loop()
        adapter = handle.adapter(loop)
        ticket = handle.ticket()
        # One DEL per key, pipelined on the loop's connection: the seed answered per key.
        replies = await asyncio.gather(*(adapter.invalidate(loop, [k]) for k in keys))
        for status, deleted_or_message in replies:
            if status != _OK:
                handle.backend_failed(ticket, "invalidate", status, deleted_or_message)
                raise _error(status, deleted_or_message)
        handle.backend_ok(ticket)
        return [deleted > 0 for _, deleted in replies]

    def _key(self, key: Any) -> bytes:
        if isinstance(key, str):
            data = key.encode("utf-8")
        elif isinstance(key, (bytes, bytearray, memoryview)):
            data = bytes(key)
        else:
            raise TypeError(f"HTTPCacheBackend: key must be a str or bytes, got {type(key).__name__}")
        prefix = f"{self.namespace}:".encode()
        if data.startswith(prefix):
            data = data[len(prefix):]
        if not data:
            raise ValueError(f"HTTPCacheBackend: empty key {key!r}")
        return data


async def _blocking(handle: Handle, what: str, call: Callable[..., Any], *args: Any) -> Any:
    """call(*args), a blocking call of the handle (the GIL released while it waits), on the
    loop's default executor; a backend failure is recorded in the handle's health and raised."""
    loop = asyncio.get_running_loop()
    ticket = handle.ticket()
    try:
        result = await loop.run_in_executor(None, functools.partial(call, *args))
    except _httpcache.CacheMiss:
        handle.backend_ok(ticket)
        raise
    except _httpcache.Error as e:
        handle.backend_failed(ticket, what, e.code, str(e))
        raise
    handle.backend_ok(ticket)
    return result


def _error(status: int, message: Any) -> _httpcache.Error:
    e = _httpcache.Error(message if isinstance(message, str) and message else _httpcache.strerror(status))
    e.code = status
    return e


async def _ttl_of(ttl_func: Callable[[], Any], what: str) -> int:
    ttl = ttl_func()
    if inspect.isawaitable(ttl):
        ttl = await ttl
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= _httpcache.MAX_TTL_SECONDS:
        raise ValueError(f"{what}: ttl_func returned {ttl!r}: must be an int in 1..{_httpcache.MAX_TTL_SECONDS}")
    return ttl


def _encoded(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as e:
        raise ValueError(f"HTTPCacheBackend.set: the value is not JSON: {e}") from None


def _decoded(value: bytes) -> Any:
    """A stored value as the seed's get gave it: JSON-decoded; a response record's body."""
    if value.startswith(RECORD):
        try:
            value = _httpcache.response_decode(value)[3]
        except ValueError:
            pass  # not a well-formed record: given back as its bytes
    if not value:
        return None
    try:
        return json.loads(value)
    except (ValueError, UnicodeError):
        return value
