# SPDX-License-Identifier: MIT
"""seconds_until_end_of_day / _week (the core's ICU computation) against zoneinfo, DST included."""

from __future__ import annotations

import datetime as dt
import math
import re
from zoneinfo import ZoneInfo

import pytest

import httpcache
from httpcache import seconds_until_end_of_day, seconds_until_end_of_week

UTC = dt.timezone.utc

# Zones with DST at 01:00/02:00, at midnight (Santiago, Havana, Beirut: the local midnight does
# not exist on spring-forward days), half-hour DST (Lord_Howe), odd offsets (Chatham), the seed's
# zone (Casablanca: DST suspended during Ramadan), no DST (Kolkata), UTC+14 (Kiritimati).
ZONES = [
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "Asia/Beirut",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Africa/Casablanca",
    "Asia/Kolkata",
    "Pacific/Kiritimati",
    "UTC",
]


def first_instant(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The first instant of local `day`: midnight, or where a DST gap over midnight ends. For a
    time inside a gap, fold=0 is interpreted with the offset before the transition (PEP 495),
    which lands exactly on the end of the gap."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)


def expected(now: dt.datetime, zone_name: str, week: bool) -> int:
    zone = ZoneInfo(zone_name)
    local = now.astimezone(zone)
    days = (7 - local.weekday()) if week else 1  # Monday is 0; strictly after now
    target = first_instant(local.date() + dt.timedelta(days=days), zone)
    return max(1, math.ceil((target - now).total_seconds()))


def transitions(zone_name: str, year: int) -> list[dt.datetime]:
    """UTC instants where the zone's offset changes during `year` (to the minute)."""
    zone = ZoneInfo(zone_name)
    out = []
    t = dt.datetime(year, 1, 1, tzinfo=UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=UTC)
    step = dt.timedelta(hours=1)
    prev = t.astimezone(zone).utcoffset()
    while t < end:
        n = t + step
        off = n.astimezone(zone).utcoffset()
        if off != prev:
            lo, hi = t, n  # bisect to the minute
            while hi - lo > dt.timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == prev:
                    lo = mid
                else:
                    hi = mid
            out.append(hi.replace(second=0, microsecond=0))
            prev = off
        t = n
    return out


def test_tzdata_version_names_the_release_the_ttls_use():
    version = httpcache.tzdata_version()
    assert re.fullmatch(r"20[0-9]{2}[a-z]", version), version
    # Casablanca's 2023 Ramadan change (below) tells 2022 data from 2023a and later.
    april_26_2023 = dt.datetime(2023, 4, 26, 12, tzinfo=dt.timezone.utc)
    left = httpcache.seconds_until_end_of_day("Africa/Casablanca", april_26_2023)
    assert left == (12 * 3600 if version < "2023a" else 11 * 3600), (version, left)


# ICU's built-in zone data (Debian's ICU 72) predates tzdata 2023a, which moved Morocco's 2023
# end-of-Ramadan change from April 30 to April 23: for Casablanca in 2023 the core and the
# system's zoneinfo disagree by an hour for a week. 2024 agrees, so Casablanca is checked there.
YEARS = {"Africa/Casablanca": (2024,)}


def instants_around_transitions(zone_name: str) -> list[dt.datetime]:
    out = []
    for year in YEARS.get(zone_name, (2023, 2024)):
        for tr in transitions(zone_name, year):
            for delta in (-86400 * 2, -86400, -3601, -3600, -1, 0, 1, 1799, 3600, 86399, 86400):
                out.append(tr + dt.timedelta(seconds=delta))
            # Local midnights around the transition, and a second either side of them.
            zone = ZoneInfo(zone_name)
            for d in (-1, 0, 1):
                m = first_instant(tr.astimezone(zone).date() + dt.timedelta(days=d), zone)
                out += [m - dt.timedelta(seconds=1), m, m + dt.timedelta(seconds=1)]
    return out


@pytest.mark.parametrize("zone", ZONES)
def test_dst_transitions_match_zoneinfo(zone):
    points = instants_around_transitions(zone)
    if zone not in ("Asia/Kolkata", "Pacific/Kiritimati", "UTC"):
        assert len(points) > 20  # the zone really has transitions
    mismatches = []
    for now in points:
        for week, fn in ((False, seconds_until_end_of_day), (True, seconds_until_end_of_week)):
            got = fn(zone, now)
            want = expected(now, zone, week)
            if got != want:
                mismatches.append((now.isoformat(), "week" if week else "day", got, want))
    assert not mismatches, mismatches[:10]


@pytest.mark.parametrize("zone", ZONES)
def test_year_sweep_matches_zoneinfo(zone):
    now = dt.datetime(2024, 1, 1, 0, 0, 7, tzinfo=UTC)
    step = dt.timedelta(hours=5, minutes=17, seconds=13)
    mismatches = []
    while now.year == 2024:
        for week, fn in ((False, seconds_until_end_of_day), (True, seconds_until_end_of_week)):
            got, want = fn(zone, now), expected(now, zone, week)
            if got != want:
                mismatches.append((now.isoformat(), week, got, want))
        now += step
    assert not mismatches, mismatches[:10]


def test_known_days():
    london = "Europe/London"
    # 2024-03-31: London springs forward at 01:00 UTC; the local day is 23 hours long.
    assert seconds_until_end_of_day(london, dt.datetime(2024, 3, 31, 0, 0, tzinfo=UTC)) == 23 * 3600
    # 2024-10-27: falls back at 01:00 UTC; the local day is 25 hours long (local midnight = 23:00 UTC the day before).
    assert seconds_until_end_of_day(london, dt.datetime(2024, 10, 26, 23, 0, tzinfo=UTC)) == 25 * 3600
    # Santiago 2024-09-08: 00:00 local does not exist (clocks go 23:59:59 -> 01:00): the day
    # starts at 01:00 -03 = 04:00 UTC.
    now = dt.datetime(2024, 9, 7, 12, 0, tzinfo=ZoneInfo("America/Santiago"))  # 16:00 UTC
    assert seconds_until_end_of_day("America/Santiago", now) == 12 * 3600
    # Exactly at midnight: the next midnight, never 0.
    assert seconds_until_end_of_day("UTC", dt.datetime(2024, 1, 1, tzinfo=UTC)) == 86400
    assert seconds_until_end_of_day("UTC", dt.datetime(2024, 1, 1, 23, 59, 59, 500000, tzinfo=UTC)) == 1
    # 2024-01-01 was a Monday: the end of the week is the next Monday.
    assert seconds_until_end_of_week("UTC", dt.datetime(2024, 1, 1, tzinfo=UTC)) == 7 * 86400
    assert seconds_until_end_of_week("UTC", dt.datetime(2024, 1, 7, 23, 0, tzinfo=UTC)) == 3600


def test_now_forms_and_zone_forms():
    now = dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    ts = now.timestamp()
    want = 12 * 3600
    assert seconds_until_end_of_day("UTC", now) == want
    assert seconds_until_end_of_day("UTC", int(ts)) == want
    assert seconds_until_end_of_day("UTC", ts + 0.25) == want  # rounded up to whole seconds
    assert seconds_until_end_of_day(ZoneInfo("UTC"), now) == want
    assert seconds_until_end_of_day(UTC, now) == want
    assert seconds_until_end_of_day(None, now) == want

    class PytzLike(dt.tzinfo):  # what pytz zones look like: a `zone` attribute
        zone = "Asia/Kolkata"

    assert seconds_until_end_of_day(PytzLike(), now) == want - 5 * 3600 - 1800
    assert seconds_until_end_of_day(dt.timezone(dt.timedelta(hours=2)), now) == want - 2 * 3600
    # A different local zone's datetime is the same instant.
    assert seconds_until_end_of_day("UTC", now.astimezone(ZoneInfo("Asia/Tokyo"))) == want
    current = seconds_until_end_of_day("UTC")
    assert 1 <= current <= 86400


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "", "Europe/Londn", dt.timezone(dt.timedelta(minutes=30))])
def test_unknown_zone_is_a_value_error_naming_it(bad):
    with pytest.raises(ValueError) as info:
        seconds_until_end_of_day(bad)
    assert repr(bad) in str(info.value) or str(bad) in str(info.value)
    with pytest.raises(ValueError):
        seconds_until_end_of_week(bad)


@pytest.mark.parametrize("bad", [dt.datetime(2024, 1, 1), "2024-01-01", True])
def test_bad_now(bad):
    with pytest.raises(ValueError) as info:
        seconds_until_end_of_day("UTC", bad)
    assert "now=" in str(info.value)


def test_matches_the_decorator_ttl(store):
    # The decorator's end-of-day TTL is the same computation.
    @httpcache.cache(key="eod")
    def f():
        return 1

    f()
    assert abs(store.ttl_ms("eod") / 1000 - seconds_until_end_of_day("UTC")) < 3
