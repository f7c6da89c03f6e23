# SPDX-License-Identifier: MIT
"""HTTPCache: the process-wide configuration, and one C handle per namespace.

The C handle carries one namespace, and a decorator may name its own, so each namespace gets its
own handle (opened lazily, with init()'s URL, zone and options). On ``memory://`` the embedded
store is per handle, which is harmless: keys are namespaced anyway, and every decorator naming a
namespace shares that namespace's handle.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import weakref
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import _httpcache

logger = logging.getLogger("httpcache")

DEFAULT_MAX_VALUE_BYTES = 8 << 20  # httpcache_options.max_value_bytes' default

_OPTION_NAMES = (
    "connect_timeout_ms",
    "command_timeout_ms",
    "pool_size",
    "memory_max_entries",
    "memory_max_bytes",
    "max_value_bytes",
    "breaker_failures",
    "breaker_cooldown_ms",
    "singleflight_wait_ms",
)
_OPTION_LIMITS = {
    "connect_timeout_ms": 2**32 - 1,
    "command_timeout_ms": 2**32 - 1,
    "pool_size": 2**32 - 1,
    "memory_max_entries": 2**64 - 1,
    "memory_max_bytes": 2**64 - 1,
    "max_value_bytes": 2**64 - 1,
    "breaker_failures": 2**32 - 1,
    "breaker_cooldown_ms": 2**32 - 1,
    "singleflight_wait_ms": 2**32 - 1,
}


def redact_url(url: str | None) -> str | None:
    """The URL with any password replaced by ``***`` (for messages)."""
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def zone_name(tz: Any) -> str:
    """The IANA name of a zone given as a name, a ``zoneinfo.ZoneInfo``, a pytz zone,
    ``datetime.timezone.utc`` or a whole-hour fixed offset. Not validated here (the core does)."""
    if tz is None:
        return "UTC"
    if isinstance(tz, str):
        if not tz:
            raise ValueError("unknown time zone '': give an IANA name such as 'Europe/London'")
        return tz
    key = getattr(tz, "key", None)  # zoneinfo.ZoneInfo
    if isinstance(key, str) and key:
        return key
    zone = getattr(tz, "zone", None)  # pytz
    if isinstance(zone, str) and zone:
        return zone
    if isinstance(tz, _dt.tzinfo):
        offset = tz.utcoffset(None)
        if offset is not None and offset.total_seconds() % 3600 == 0:
            hours = int(offset.total_seconds() // 3600)
            # POSIX-style Etc/GMT names have the sign inverted: UTC+1 is Etc/GMT-1.
            return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
    raise ValueError(f"unsupported time zone {tz!r}: give an IANA name such as 'Europe/London'")


def check_zone(tz: Any) -> str:
    """zone_name(tz), checked by the core: ValueError naming tz when unknown."""
    name = zone_name(tz)
    try:
        _httpcache.ttl_compute(_httpcache.Policy.end_of_day(), name, 0)
    except ValueError:
        raise ValueError(f"unknown time zone {tz!r}") from None
    return name


def check_namespace(namespace: Any) -> str:
    if not isinstance(namespace, str):
        raise ValueError(f"invalid namespace {namespace!r}: must be a str")
    try:
        _httpcache.Cache("memory://", namespace).close()
    except ValueError as e:
        raise ValueError(f"invalid namespace {namespace!r}: {e}") from None
    return namespace


class Handle:
    """One C cache handle (one namespace) and its per-event-loop async contexts."""

    __slots__ = ("cache", "namespace", "private_ok", "_adapters", "_lock", "_down", "__weakref__")

    def __init__(self, cache: _httpcache.Cache, namespace: str) -> None:
        self.cache = cache
        self.namespace = namespace
        self._adapters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._down = False

    def adapter(self, loop: Any):
        """The async adapter of this handle for `loop` (created on first use)."""
        a = self._adapters.get(loop)
        if a is None:
            from ._asyncio import LoopAdapter

            with self._lock:
                a = self._adapters.get(loop)
                if a is None:
                    a = LoopAdapter(self.cache, loop)
                    self._adapters[loop] = a
        return a

    # Backend failures are logged once per outage (the first failure after a success), so an
    # unreachable Redis does not flood the log; decorated calls then run uncached.
    def backend_failed(self, what: str, status: int | None = None, message: str | None = None) -> None:
        if not self._down:
            self._down = True
            detail = message or (_httpcache.strerror(status) if status is not None else "backend error")
            logger.warning("httpcache: %s failed (%s); serving uncached until the backend recovers", what, detail)

    def max_value_bytes(self) -> int:
        return HTTPCache._options.get("max_value_bytes") or DEFAULT_MAX_VALUE_BYTES

    def backend_ok(self) -> None:
        if self._down:
            self._down = False
            logger.info("httpcache: backend reachable again")


class HTTPCache:
    """Process-wide cache configuration (a drop-in for ``authx_extra.cache.HTTPCache``).

    ``HTTPCache.init(redis_url=None, namespace="httpcache", tz="UTC", **options)``: ``redis_url``
    None or ``memory://`` uses the embedded store; ``redis://`` and ``unix://`` URLs use Redis
    (connected lazily: an unreachable server never stops the application, decorated calls then
    run uncached). ``tz`` is an IANA name, a pytz zone or a ``zoneinfo.ZoneInfo``. ``options``
    are the C library's (httpcache_options): connect_timeout_ms, command_timeout_ms, pool_size,
    memory_max_entries, memory_max_bytes, max_value_bytes, breaker_failures,
    breaker_cooldown_ms, singleflight_wait_ms (0 or absent: the library default).
    """

    redis_url: str | None = None
    namespace: str = "httpcache"
    tz: Any = "UTC"

    _url: str = "memory://"
    _tz_name: str = "UTC"
    _options: dict[str, int] = {}
    _handles: dict[str, Handle] = {}
    _lock = threading.Lock()

    @classmethod
    def init(cls, redis_url: str | None = None, namespace: str = "httpcache", tz: Any = "UTC", **options: int):
        url = "memory://" if redis_url in (None, "", "memory://") else redis_url
        if not isinstance(url, str):
            raise ValueError(f"invalid redis_url {redis_url!r}: must be a str or None")
        tz_name = check_zone(tz)
        namespace = check_namespace(namespace)
        for name, value in options.items():
            if name not in _OPTION_NAMES:
                raise TypeError(f"HTTPCache.init() got an unknown option {name!r}; known: {', '.join(_OPTION_NAMES)}")
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _OPTION_LIMITS[name]:
                raise ValueError(f"invalid {name}={value!r}: must be a non-negative int")
        try:
            handle = Handle(_httpcache.Cache(url, namespace, tz_name, **options), namespace)
        except ValueError as e:
            raise ValueError(f"invalid redis_url {redact_url(url)!r}: {e}") from None
        with cls._lock:
            cls.redis_url = redis_url
            cls.namespace = namespace
            cls.tz = tz
            cls._url = url
            cls._tz_name = tz_name
            cls._options = dict(options)
            # Old handles are dropped, not closed: calls in flight keep theirs until they return.
            cls._handles = {namespace: handle}
        return cls

    @classmethod
    def handle(cls, namespace: str | None = None) -> Handle:
        """The handle of `namespace` (init()'s when None), opened on first use."""
        ns = namespace or cls.namespace
        h = cls._handles.get(ns)
        if h is None:
            with cls._lock:
                h = cls._handles.get(ns)
                if h is None:
                    h = Handle(_httpcache.Cache(cls._url, ns, cls._tz_name, **cls._options), ns)
                    handles = dict(cls._handles)
                    handles[ns] = h
                    cls._handles = handles
        return h

    @classmethod
    def close(cls) -> None:
        """Forgets every handle (they close when the last call using them returns)."""
        with cls._lock:
            cls._handles = {}
