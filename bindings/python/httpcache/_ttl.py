# SPDX-License-Identifier: MIT
"""TTLs: the public helpers (seconds until the end of the local day / week) and a decorator's
TTL choice. Every expiry is computed by the C core (ICU, DST-correct), so Python and C agree."""

from __future__ import annotations

import asyncio
import datetime as _dt
import inspect
import logging
import threading
import time
from typing import Any, Callable

from . import _httpcache
from ._config import check_zone

logger = logging.getLogger("httpcache")


def _now_ms(now: Any) -> int:
    if now is None:
        return time.time_ns() // 1_000_000
    if isinstance(now, _dt.datetime):
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"now={now!r} is a naive datetime: give an aware datetime or unix seconds")
        return (now - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)) // _dt.timedelta(milliseconds=1)
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise ValueError(f"now={now!r} must be an aware datetime or unix seconds")
    return int(now * 1000) if isinstance(now, float) else now * 1000


def tzdata_version() -> str:
    """The IANA time zone database release (e.g. "2024a") that end-of-day and end-of-week TTLs
    are computed with: the wheel's own copy of ICU's zone data, or ICU_TIMEZONE_FILES_DIR's
    newer zoneinfo64.res when that variable names one (README "Time zone data")."""
    return _httpcache.tzdata_version()


def seconds_until_end_of_day(tz: Any, now: Any = None) -> int:
    """Seconds from `now` (aware datetime, unix seconds, or None for the current time) until the
    next local midnight in `tz` (IANA name, zoneinfo.ZoneInfo or pytz zone), or the first valid
    local time after it when a DST jump skips midnight. Always >= 1."""
    return _httpcache.ttl_compute(_httpcache.Policy.end_of_day(), check_zone(tz), _now_ms(now))


def seconds_until_end_of_week(tz: Any, now: Any = None) -> int:
    """Seconds from `now` until the next Monday 00:00 local in `tz`. Always >= 1."""
    return _httpcache.ttl_compute(_httpcache.Policy.end_of_week(), check_zone(tz), _now_ms(now))


class TtlChoice:
    """The TTL of one decorator: a fixed policy (seconds, end of week, end of day: checked at
    decoration) or ``ttl_func``, called after each computation that is to be stored.

    Precedence: ttl_func > ttl_in_seconds > end of week > end of day (also the fallback when
    every option is off)."""

    __slots__ = ("fixed", "func")

    def __init__(self, what: str, seconds: Any, end_of_week: bool, func: Callable[[], Any] | None) -> None:
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 < seconds <= _httpcache.MAX_TTL_SECONDS
        ):
            raise ValueError(
                f"{what}: invalid ttl_in_seconds={seconds!r}: must be an int in 1..{_httpcache.MAX_TTL_SECONDS}"
            )
        if func is not None and not callable(func):
            raise ValueError(f"{what}: ttl_func={func!r} is not callable")
        if seconds is not None:
            self.fixed = _httpcache.Policy.seconds(seconds)
        elif end_of_week:
            self.fixed = _httpcache.Policy.end_of_week()
        else:
            self.fixed = _httpcache.Policy.end_of_day()
        self.func = func

    def seconds_sync(self, where: str, cache: Any) -> int | None:
        """The TTL in seconds of a result about to be stored, from a blocking call: the fixed
        policy's in `cache`'s zone, or ttl_func's answer (an async ttl_func runs to completion
        here); None, with a log line, when ttl_func fails or returns something that is not a TTL."""
        if self.func is None:
            return cache.ttl(self.fixed)
        try:
            ttl = self.func()
            if inspect.isawaitable(ttl):
                ttl = _run_coroutine_sync(ttl)
        except Exception:
            logger.exception("httpcache: ttl_func of %s failed; result not cached", where)
            return None
        return _checked(ttl, where)

    async def seconds_async(self, where: str, cache: Any) -> int | None:
        """seconds_sync() from an ``async def`` call: an async ttl_func is awaited."""
        if self.func is None:
            return cache.ttl(self.fixed)
        try:
            ttl = self.func()
            if inspect.isawaitable(ttl):
                ttl = await ttl
        except Exception:
            logger.exception("httpcache: ttl_func of %s failed; result not cached", where)
            return None
        return _checked(ttl, where)


def _checked(ttl: Any, where: str) -> int | None:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= _httpcache.MAX_TTL_SECONDS:
        logger.warning(
            "httpcache: ttl_func of %s returned %r (must be an int in 1..%d); result not cached",
            where, ttl, _httpcache.MAX_TTL_SECONDS,
        )
        return None
    return ttl


def _run_coroutine_sync(coro: Any) -> Any:
    """Runs an async ttl_func from a sync call: in place when no loop runs on this thread, else
    on a short-lived thread (this thread's loop is blocked by the sync call anyway)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, asyncio.run(coro)))
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            box.append((False, e))

    t = threading.Thread(target=run, name="httpcache-ttl_func")
    t.start()
    t.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value
