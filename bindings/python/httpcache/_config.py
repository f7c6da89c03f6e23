# SPDX-License-Identifier: MIT
"""Configuration and handles: HTTPCache (the process-wide settings), one C handle per namespace
with the health of its backend, and ``HTTPCache.redis_client``, the seed's redis-py client for
init()'s URL (for code of the seed's users that talks to Redis itself).

The C handle carries one namespace, and a decorator may name its own, so each namespace gets its
own handle (opened lazily, with init()'s URL, zone and options). On ``memory://`` the embedded
store is per handle, which is harmless: keys are namespaced anyway, and every decorator naming a
namespace shares that namespace's handle. On ``lmdb://DIR`` the handles of one process share one
open store (the core keeps one LMDB environment per directory per process), and every process of
the host that opens DIR shares its entries.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import os
import threading
import weakref
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from . import _httpcache
from ._asyncio import LoopAdapter
from ._early_hits import attach as attach_early_hits
from ._invalidation import invalidate_async, invalidate_sync
from ._keys import recheck_default

logger = logging.getLogger("httpcache")

# The options of httpcache_options as the core declares them: name -> (default, maximum). 0 given
# to the core means its default; these defaults are what that 0 becomes.
OPTIONS: dict[str, tuple[int, int]] = {name: (default, maximum) for name, default, maximum in _httpcache.OPTIONS}
# TLS keywords (redis-py's names), checked by the binding: paths as str/PathLike, ssl_cert_reqs
# "required" | "none", ssl_check_hostname a bool.
TLS_OPTIONS: tuple[str, ...] = _httpcache.TLS_OPTIONS

# The counters of httpcache_stats, in the order HTTPCache.stats() reports them.
STAT_COUNTERS = (
    "hits",
    "misses",
    "stores",
    "errors",
    "breaker_trips",
    "breaker_skips",
    "uncached",
    "oversized",
    "coalesced",
    "near_hits",
    "near_invalidations",
    "near_flushes",
)


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


class Health:
    """Whether the backend is up, as the decorated calls see it, so that an outage is logged
    once (a WARNING at the first failure after a success) and its end once (an INFO "backend
    back" at the first success after it), however many calls fail or are skipped by the core's
    circuit breaker in between. One per handle, like the core's circuit breaker (handles
    sharing one Health would flap: one handle's breaker can still be open, skipping the backend,
    when another's has seen it back).

    Each call takes a ticket (the number of transitions so far) before it touches the backend,
    and its outcome may flip the state only if no transition happened meanwhile: a call that was
    already in flight when the backend went down (or came back) and finishes late cannot announce
    a recovery (or an outage) that is already over."""

    __slots__ = ("url", "namespace", "down", "_epoch", "_lock")

    def __init__(self, url: str, namespace: str) -> None:
        self.url = redact_url(url)
        self.namespace = namespace
        self.down = False
        self._epoch = 0
        self._lock = threading.Lock()

    def ticket(self) -> int:
        return self._epoch

    def failed(self, ticket: int, what: str, detail: str) -> None:
        if self.down or ticket != self._epoch:  # the common case, without the lock
            return
        with self._lock:
            if self.down or ticket != self._epoch:
                return
            self.down = True
            self._epoch += 1
        logger.warning(
            "httpcache: backend %s unavailable for namespace %r (%s failed: %s); serving uncached until it is back",
            self.url, self.namespace, what, detail,
        )

    def ok(self, ticket: int) -> None:
        if not self.down or ticket != self._epoch:
            return
        with self._lock:
            if not self.down or ticket != self._epoch:
                return
            self.down = False
            self._epoch += 1
        logger.info("httpcache: backend %s back for namespace %r: caching again", self.url, self.namespace)


_BACKEND_FAILURES = frozenset({_httpcache.EBACKEND, _httpcache.ETIMEOUT})


class Handle:
    """One C cache handle (one namespace), its per-event-loop async contexts, the Health
    of its backend, and the counters only the Python side sees (the async path's single-flight
    and uncached results: the core counts those of get_or_compute itself)."""

    __slots__ = ("cache", "namespace", "health", "py_counts", "_adapters", "_lock", "__weakref__")

    def __init__(self, cache: _httpcache.Cache, namespace: str, url: str) -> None:
        self.cache = cache
        self.namespace = namespace
        self.health = Health(url, namespace)
        self.py_counts = {"uncached": 0, "coalesced": 0}
        self._adapters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def adapter(self, loop: Any):
        """The async adapter of this handle for `loop` (created on first use)."""
        a = self._adapters.get(loop)
        if a is None:
            with self._lock:
                a = self._adapters.get(loop)
                if a is None:
                    a = LoopAdapter(self.cache, loop)
                    self._adapters[loop] = a
        return a

    def count(self, name: str) -> None:
        with self._lock:
            self.py_counts[name] += 1

    # Backend failures are logged once per outage (see Health), so an unreachable Redis does not
    # flood the log; decorated calls then run uncached.
    def ticket(self) -> int:
        return self.health.ticket()

    def backend_failed(self, ticket: int, what: str, status: int | None = None, message: str | None = None) -> None:
        if status is not None and status not in _BACKEND_FAILURES:
            return  # e.g. ECANCELED: the context closed with its loop, the backend is fine
        if self.health.down:
            return  # known already: not worth building the message
        detail = message or (_httpcache.strerror(status) if status is not None else self._failure_detail())
        self.health.failed(ticket, what, detail)

    def backend_ok(self, ticket: int) -> None:
        self.health.ok(ticket)

    def _failure_detail(self) -> str:
        # get_or_compute fails open and clears the error: say what the core's counters say.
        try:
            st = self.cache.stats()
        except ValueError:
            return "backend error"
        if st["breaker_open"]:
            return "circuit breaker open after repeated backend errors"
        return "backend error or timeout"

    def max_value_bytes(self) -> int:
        return HTTPCache.option("max_value_bytes")


def _tag_bytes(tags: tuple) -> list[bytes]:
    """Literal tags as the core takes them; TypeError/ValueError for anything else."""
    if not tags:
        raise ValueError("invalidate_tags: give at least one tag")
    for t in tags:
        if not isinstance(t, str) or not t:
            raise TypeError(f"invalidate_tags: a tag is a non-empty str, got {t!r}")
    encoded = [t.encode("utf-8") for t in tags]
    if len(encoded) > 32 or any(len(t) > 1024 for t in encoded):
        raise ValueError("invalidate_tags: at most 32 tags of at most 1024 bytes each")
    return encoded


def check_request_no_cache(value: Any, what: str) -> None:
    if value not in ("ignore", "honor"):
        raise ValueError(f"{what}: request_no_cache must be 'ignore' or 'honor', got {value!r}")


def _disabled_by_env() -> bool:
    """HTTPCACHE_DISABLED set to anything but "", "0", "false" or "no" turns caching off."""
    return os.environ.get("HTTPCACHE_DISABLED", "").strip().lower() not in ("", "0", "false", "no")


# HTTPCache's attributes whose change leaves every answer as it was (a client made on demand, the
# note that init() was called): setting them disarms nothing.
_NOT_SETTINGS = frozenset({"_redis_client", "_initialized"})


class _HTTPCacheType(type):
    """HTTPCache's metaclass, for one class-level property: ``HTTPCache.redis_client`` is read on
    the class (as the seed's users read it) and made on first access, not by init(), so that an
    application that never uses it needs no redis-py and opens no second connection. And any
    setting changed (init(), close(), ``HTTPCache.enabled = False``) disarms every decorator's
    one-call hit path (``_httpcache.HitPath``), which answers again once the normal path has
    served a hit under the new settings."""

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name not in _NOT_SETTINGS:
            _httpcache.HitPath.disarm_all()

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        _httpcache.HitPath.disarm_all()

    @property
    def redis_client(cls) -> Any:
        """A redis-py client connected where init()'s URL points (the same server, database,
        credentials and TLS settings as the cache), made on first access and kept until the next
        init() or close(); None on ``memory://`` and ``lmdb://`` (there is no server: the
        entries live in this process or in the directory). ``redis://``,
        ``rediss://`` and ``unix://`` give ``redis.Redis``, ``redis+cluster://`` and
        ``rediss+cluster://`` ``redis.cluster.RedisCluster`` (on every seed node; it connects
        when made, so a cluster that is down raises here), ``redis+sentinel://`` the master's
        client from ``redis.sentinel.Sentinel(...).master_for(service_name)``. Timeouts are
        init()'s connect_timeout_ms/command_timeout_ms when given, else redis-py's defaults.
        RuntimeError when redis-py is not installed (``pip install redis``), or for
        ``ssl_server_hostname``, which redis-py cannot honour."""
        return cls._redis_py_client()


class HTTPCache(metaclass=_HTTPCacheType):
    """Process-wide cache configuration (a drop-in for ``authx_extra.cache.HTTPCache``).

    ``HTTPCache.init(redis_url=None, tz="UTC", namespace="httpcache", *, enabled=True,
    **options)``, in the seed's positional order (``HTTPCache.init(url, timezone("Europe/Paris"),
    "app")`` works as with the seed): ``redis_url``
    None or ``memory://`` uses the embedded store of this process (one per worker: with several
    workers, an invalidation reaches only the worker that ran it, and the others keep serving
    their copies); ``lmdb:///abs/dir`` (``?max_bytes=N``: what its entries may occupy, default
    256 MiB, at least 1 MiB; a value over an eighth of it is not stored) a store in that
    directory shared by every process of the host that opens it (LMDB), so the workers of one
    server see each other's entries and invalidations at once; it is opened (DIR created, not
    its parents) by init(), which raises ``httpcache.Error`` when it cannot be, and ValueError
    naming both values when the store was created with another max_bytes (every process must
    give the same). ``redis://``, ``rediss://`` (TLS),
    ``redis+cluster://``, ``redis+sentinel://`` and ``unix://`` URLs use Redis (connected lazily:
    an unreachable server never stops the application, decorated calls then run uncached). ``tz`` is an IANA name, a pytz zone or a ``zoneinfo.ZoneInfo``. ``options``
    are the C library's (httpcache_options): connect_timeout_ms, command_timeout_ms, pool_size,
    memory_max_entries, memory_max_bytes, max_value_bytes, breaker_failures,
    breaker_cooldown_ms, singleflight_wait_ms, lock_ttl_ms (0 or absent: the library default);
    and for TLS URLs ssl_ca_certs, ssl_ca_path, ssl_certfile, ssl_keyfile, ssl_server_hostname,
    ssl_cert_reqs ("required" or "none") and ssl_check_hostname (a bool), which the URL's query
    overrides. Verification is on by default. ``enabled=False`` (or ``HTTPCACHE_DISABLED=1`` in
    the environment) turns caching off: decorated functions just run (for tests, for debugging).

    ``lock_ttl_ms`` (Redis and ``lmdb://``; default 0, off) turns on the core's cross-process
    stampede lock: a ``def`` function's cold key is then computed once across every process
    sharing the store, the others waiting (at most singleflight_wait_ms) for the stored value; a
    crashed holder blocks nobody past lock_ttl_ms. ``async def`` functions do not take that lock: their
    single-flight is per event loop.

    ``near_cache=True`` (Redis, Sentinel and Cluster URLs) keeps an in-process copy of the entries
    this process read, served with no round trip and kept coherent by Redis itself (CLIENT
    TRACKING): a change by any client, expiry or eviction drops the copy within milliseconds,
    and the copy is dropped whole while the server's reports cannot be heard. Finer settings:
    ``near_max_bytes`` (default 32 MiB) and ``near_max_age_ms`` (default 60000: the longest an
    entry is kept here, never past its TTL in Redis). ``HTTPCACHE_NEAR_CACHE=1`` in the
    environment turns it on by default.

    Logging goes to the ``httpcache`` logger (never print): a WARNING when the backend becomes
    unavailable (once per outage, not per call) and an INFO when it is back; a WARNING for each
    result not cached because it is not JSON or over max_value_bytes.

    ``HTTPCache.redis_client`` is the seed's redis-py client for the same URL (see
    ``_HTTPCacheType.redis_client``); ``httpcache.HTTPCacheBackend`` the seed's async get/set API
    over this cache's own handles.
    """

    redis_url: str | None = None
    namespace: str = "httpcache"
    tz: Any = "UTC"
    # False: every decorated call runs its function, nothing is read, stored or invalidated
    # (init(enabled=False), or HTTPCACHE_DISABLED=1 in the environment, which wins).
    enabled: bool = not _disabled_by_env()
    # What a request's Cache-Control: no-cache does where a decorator does not say (init()).
    request_no_cache: str = "ignore"

    _url: str = "memory://"
    _tz_name: str = "UTC"
    _options: dict[str, Any] = {}
    _handles: dict[str, Handle] = {}
    _lock = threading.Lock()
    _initialized = False  # init() was called; before it, the first handle says what is in force
    # redis_client: (the _generation it was made for, the client). init() and close() move the
    # generation on, so a client made from the previous settings is never handed out again.
    _generation = 0
    _redis_client: tuple[int, Any] | None = None
    _client_lock = threading.Lock()  # apart from _lock: making a cluster client does I/O

    @classmethod
    def init(
        cls, redis_url: str | None = None, tz: Any = "UTC", namespace: str = "httpcache", *, enabled: bool = True,
        request_no_cache: str = "ignore", **options: Any,
    ):
        """Configures the process's cache (see the class docstring); returns HTTPCache. The
        positional order is the seed's: ``init(redis_url, tz, namespace)``. `request_no_cache`:
        what a request's ``Cache-Control: no-cache`` / ``max-age=0`` does to decorators that do
        not say: "ignore" (the default: served from the cache, so no client can force
        recomputations, as CDNs do against cache-busting floods) or "honor" (the entry is
        invalidated and recomputed)."""
        check_request_no_cache(request_no_cache, "HTTPCache.init()")
        url = "memory://" if redis_url in (None, "", "memory://") else redis_url
        if not isinstance(url, str):
            raise ValueError(f"invalid redis_url {redis_url!r}: must be a str or None")
        tz_name = check_zone(tz)
        namespace = check_namespace(namespace)
        recheck_default(namespace)
        if isinstance(options.get("near_cache"), bool):  # True: on; False: off, whatever the environment says
            options["near_cache"] = 1 if options["near_cache"] else 2
        for name, value in options.items():
            if name in TLS_OPTIONS:
                continue
            if name not in OPTIONS:
                known = ", ".join((*OPTIONS, *TLS_OPTIONS))
                raise TypeError(f"HTTPCache.init() got an unknown option {name!r}; known: {known}")
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= OPTIONS[name][1]:
                raise ValueError(f"invalid {name}={value!r}: must be a non-negative int")
        try:
            handle = Handle(_httpcache.Cache(url, namespace, tz_name, **options), namespace, url)
        except ValueError as e:
            if any(str(e).startswith(p) for p in ("ssl_", "cannot use ssl_")) and not any(
                f"{name}=" in url for name in TLS_OPTIONS
            ):
                raise  # a keyword's error, not the URL's
            raise ValueError(f"invalid redis_url {redact_url(url)!r}: {e}") from None
        with cls._lock:
            cls.redis_url = redis_url
            cls.namespace = namespace
            cls.tz = tz
            cls._url = url
            cls._tz_name = tz_name
            cls._options = dict(options)
            cls._initialized = True
            cls.enabled = bool(enabled) and not _disabled_by_env()
            cls.request_no_cache = request_no_cache
            # Old handles are dropped, not closed: calls in flight keep theirs until they return.
            cls._handles = {namespace: handle}
            cls._generation += 1
            cls._redis_client = None  # dropped like the handles: its holders may still use it
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
                    if not cls._initialized:
                        cls._initialized = True  # said once per process
                        logger.warning(
                            "httpcache: HTTPCache.init() was not called: caching in this process's own "
                            "memory:// store (not shared with other workers, lost on restart)"
                        )
                    h = Handle(_httpcache.Cache(cls._url, ns, cls._tz_name, **cls._options), ns, cls._url)
                    handles = dict(cls._handles)
                    handles[ns] = h
                    cls._handles = handles
        return h

    @classmethod
    def option(cls, name: str) -> int:
        """The value of option `name` in force: init()'s, or the core's default."""
        return cls._options.get(name) or OPTIONS[name][0]

    @classmethod
    def attach(cls, app: Any, freeze_gc: bool = False) -> Any:
        """Lets httpcache answer hits of cached routes of `app` (FastAPI or Starlette) before the
        framework routes the request: the hit then skips routing, validation and the endpoint
        call, and costs about what the framework's middleware and the server cost.

        Only GET routes whose @cache key is fixed (no ``obj``) and that have no dependencies,
        security, header, cookie or body parameters are answered early, once a request with the
        same path and query string has been served or stored by the decorator; the response is
        the one the decorator would give (same status, headers and body). Every middleware and
        exception handler of the app still runs. Everything else takes the normal path. Returns
        `app`; calling it again is harmless.

        ``freeze_gc=True`` also calls ``gc.collect()`` then ``gc.freeze()`` once the app has
        started (at the end of its lifespan start-up, or at the first request under a server
        that runs no lifespan): what exists then is left out of CPython's full collections,
        whose pauses otherwise set the p99 of busy cached routes (the README has the measured
        effect). It affects the whole process, so it is off unless asked for; objects alive at
        start-up are then never collected."""
        attach_early_hits(app, freeze_gc, lambda namespace: cls.handle(namespace) if cls.enabled else None)
        return app

    @classmethod
    def invalidate_tags(cls, *tags: str, namespace: str | None = None) -> None:
        """Makes every entry stored under any of these tags miss, in every process: one command
        per tag (no key scan). Tags are as ``@cache(tags=...)`` filled them: a field's value is
        percent-encoded outside ``[A-Za-z0-9_-]`` (``user:{user.id}`` with id 42 is ``user:42``).
        Blocking (one round trip per tag); in ``async def`` code use ``ainvalidate_tags``. A
        backend failure is logged once per outage, never raised."""
        encoded = _tag_bytes(tags)
        if cls.enabled:
            invalidate_sync(cls.handle(namespace), tags=encoded)

    @classmethod
    async def ainvalidate_tags(cls, *tags: str, namespace: str | None = None) -> None:
        """``invalidate_tags`` without blocking the event loop (the tags' writes are pipelined)."""
        encoded = _tag_bytes(tags)
        if cls.enabled:
            await invalidate_async(cls.handle(namespace), asyncio.get_running_loop(), tags=encoded)

    @classmethod
    def stats(cls) -> dict[str, int | bool]:
        """The core's counters (httpcache_cache_stats), summed over the handles HTTPCache holds
        (one per namespace), since init(): hits, misses, stores, errors (backend failures),
        breaker_trips, breaker_skips, uncached, oversized, coalesced, near_hits (hits the near
        tier answered with no round trip, counted in hits too, or in misses for an entry whose tag
        was invalidated), near_invalidations (keys Redis reported changed), near_flushes (times
        the near tier was emptied), and breaker_open (True while any handle's circuit breaker is
        open).

        ``async def`` functions use the core's non-blocking get and set, so their results not
        stored and their callers served by another task's computation (single-flight per event
        loop) are counted here, in ``uncached`` and ``coalesced``, as the core counts those of
        ``def`` functions. A stored value that cannot be decoded counts as a hit in the core,
        and its recomputation as a store."""
        totals: dict[str, int | bool] = dict.fromkeys(STAT_COUNTERS, 0)
        breaker_open = False
        for handle in list(cls._handles.values()):
            st = handle.cache.stats()
            for name in STAT_COUNTERS:
                totals[name] += st[name]
            for name, n in handle.py_counts.items():
                totals[name] += n
            breaker_open = breaker_open or bool(st["breaker_open"])
        totals["breaker_open"] = breaker_open
        return totals

    @classmethod
    def close(cls) -> None:
        """Forgets every handle (they close when the last call using them returns) and the
        redis_client made so far."""
        with cls._lock:
            cls._handles = {}
            cls._generation += 1
            cls._redis_client = None

    @classmethod
    def _redis_py_client(cls) -> Any:
        """HTTPCache.redis_client: the client of the current settings, made once per generation."""
        made = cls._redis_client
        if made is not None and made[0] == cls._generation:
            return made[1]
        with cls._client_lock:
            with cls._lock:
                generation, url, options = cls._generation, cls._url, cls._options
            made = cls._redis_client
            if made is not None and made[0] == generation:
                return made[1]
            client = redis_py_client(url, options)
            with cls._lock:
                if cls._generation == generation:  # else init() ran meanwhile: made again next time
                    cls._redis_client = (generation, client)
            return client


# -- HTTPCache.redis_client: init()'s URL, read as the core reads it (core/url.cpp), for redis-py


class _RedisUrl(NamedTuple):
    scheme: str  # "redis", "cluster", "sentinel" or "unix"
    tls: bool
    nodes: list[tuple[str, int]]  # the host, the seed nodes or the sentinels
    user: str | None
    password: str | None
    db: int
    service: str | None  # sentinel: the master's name
    path: str | None  # unix: the socket
    query: dict[str, str]  # raw values


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:6379
        host, _, port = text[1:].partition("]")
        return host, int(port[1:]) if port else default_port
    host, colon, port = text.rpartition(":")
    return (host, int(port)) if colon else (text, default_port)


def parse_redis_url(url: str) -> _RedisUrl:
    """The parts of a Redis URL the core accepted (init() checked it already): the same host,
    database, credentials (percent-decoded) and query as the core's parser finds."""
    scheme, _, rest = url.partition("://")
    rest, _, query_text = rest.partition("?")
    query = dict(pair.partition("=")[::2] for pair in query_text.split("&") if pair)
    if scheme == "unix":
        return _RedisUrl("unix", False, [], None, None, int(query.get("db", 0)), None, unquote(rest), query)
    tls = scheme.startswith("rediss")
    kind = {"": "redis", "+cluster": "cluster", "+sentinel": "sentinel"}[scheme[6 if tls else 5:]]
    hosts, _, path = rest.partition("/")
    user = password = None
    if "@" in hosts:
        userinfo, _, hosts = hosts.rpartition("@")
        name, colon, secret = userinfo.partition(":")
        # A lone userinfo is the password (redis://secret@host), as the core and redis-cli read it.
        user, password = (unquote(name) or None, unquote(secret) or None) if colon else (None, unquote(name) or None)
    nodes = [_host_port(h, 26379 if kind == "sentinel" else 6379) for h in hosts.split(",")]
    service = None
    if kind == "sentinel":
        name, _, path = path.partition("/")
        service = unquote(name)
    return _RedisUrl(kind, tls, nodes, user, password, int(path) if path else 0, service, None, query)


def _redis_py_timeouts(parts: _RedisUrl, options: dict[str, Any]) -> dict[str, float]:
    """redis-py's socket timeouts from the URL's or init()'s timeouts, when either gives one."""
    out = {}
    for name, keyword in (("connect_timeout_ms", "socket_connect_timeout"), ("command_timeout_ms", "socket_timeout")):
        ms = int(parts.query[name]) if name in parts.query else options.get(name) or 0
        if ms:
            out[keyword] = ms / 1000
    return out


def _redis_py_tls(parts: _RedisUrl, options: dict[str, Any], url: str) -> dict[str, Any]:
    """redis-py's TLS keywords for a rediss URL: init()'s ssl_* keywords, overridden by the URL's
    query as the core overrides them; the host name is checked only when the peer is verified."""
    given = {name: options[name] for name in TLS_OPTIONS if options.get(name) is not None}
    given.update({name: unquote(value) for name, value in parts.query.items() if name in TLS_OPTIONS})
    if "ssl_server_hostname" in given:
        raise RuntimeError(
            f"HTTPCache.redis_client: redis-py has no ssl_server_hostname setting, so it cannot connect to "
            f"{redact_url(url)!r} as the cache does; make your own client for that server"
        )
    out: dict[str, Any] = {"ssl": True}
    for name in ("ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile"):
        if name in given:
            out[name] = os.fspath(given[name])
    verify = given.get("ssl_cert_reqs", "required") != "none"
    check = given.get("ssl_check_hostname", True)
    out["ssl_cert_reqs"] = "required" if verify else "none"
    out["ssl_check_hostname"] = verify and check not in (False, "false")
    return out


def is_embedded(url: str) -> bool:
    """Whether `url` names a store with no server behind it (memory://, lmdb://DIR): nothing for
    redis-py to connect to, and no Redis URL for parse_redis_url to read."""
    return url == "memory://" or url.startswith("lmdb://")


def redis_py_client(url: str, options: dict[str, Any]) -> Any:
    """A redis-py client for the cache URL `url` and init()'s `options` (see
    ``HTTPCache.redis_client``), or None for an embedded store (memory://, lmdb://)."""
    if is_embedded(url):
        return None
    try:
        import redis
    except ImportError:
        raise RuntimeError("HTTPCache.redis_client needs redis-py, which is not installed: pip install redis") from None
    parts = parse_redis_url(url)
    timeouts = _redis_py_timeouts(parts, options)
    if parts.scheme == "unix":
        return redis.Redis(unix_socket_path=parts.path, db=parts.db, **timeouts)
    auth = {k: v for k, v in (("username", parts.user), ("password", parts.password)) if v is not None}
    tls = _redis_py_tls(parts, options, url) if parts.tls else {}
    if parts.scheme == "cluster":
        from redis.cluster import ClusterNode, RedisCluster

        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in parts.nodes], **auth, **timeouts, **tls)
    if parts.scheme == "sentinel":
        from redis.sentinel import Sentinel

        # The sentinels are asked without AUTH, as the core asks them; TLS applies to both.
        sentinels = Sentinel(parts.nodes, sentinel_kwargs={**timeouts, **tls}, db=parts.db, **auth, **timeouts, **tls)
        return sentinels.master_for(parts.service)
    host, port = parts.nodes[0]
    return redis.Redis(host=host, port=port, db=parts.db, **auth, **timeouts, **tls)
