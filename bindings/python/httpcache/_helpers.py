# SPDX-License-Identifier: MIT
"""TTL helpers: seconds until the end of the local day / week, computed by the C core (ICU,
DST-correct), so Python and C agree on every expiry."""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

from . import _httpcache
from ._core import check_zone


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


def seconds_until_end_of_day(tz: Any, now: Any = None) -> int:
    """Seconds from `now` (aware datetime, unix seconds, or None for the current time) until the
    next local midnight in `tz` (IANA name, zoneinfo.ZoneInfo or pytz zone), or the first valid
    local time after it when a DST jump skips midnight. Always >= 1."""
    return _httpcache.ttl_compute(_httpcache.Policy.end_of_day(), check_zone(tz), _now_ms(now))


def seconds_until_end_of_week(tz: Any, now: Any = None) -> int:
    """Seconds from `now` until the next Monday 00:00 local in `tz`. Always >= 1."""
    return _httpcache.ttl_compute(_httpcache.Policy.end_of_week(), check_zone(tz), _now_ms(now))
