"""Timestamps as text, fast: lookup tables for the date, the minute and the second parts.

Formatting tens of millions of timestamps with strftime (and a time-zone conversion per
value) dominated the generator's run time; gathering prebuilt parts is several times
cheaper and gives the same text.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta

import numpy as np
import polars as pl

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
US_PER_MINUTE = 60_000_000


def zone_offsets(at_us: np.ndarray, zone: str) -> np.ndarray:
    """UTC offset (microseconds) of `zone` at each UTC time, from an hourly table."""
    first = int(at_us.min()) // US_PER_HOUR * US_PER_HOUR
    hours = np.arange(first, int(at_us.max()) + US_PER_HOUR, US_PER_HOUR, dtype=np.int64)
    utc = pl.Series(hours).cast(pl.Datetime("us", "UTC"))
    local = utc.dt.convert_time_zone(zone).dt.replace_time_zone(None).cast(pl.Int64).to_numpy()
    return (local - hours)[(at_us - first) // US_PER_HOUR]


def timestamp_text(
    at_us: np.ndarray, zone: str | None, *, sep: str, millis: bool, with_offset: bool
) -> pl.Series:
    """'YYYY-MM-DD{sep}HH:MM:SS[.mmm][+HH:MM]' of UTC microseconds, shown in `zone` (None = UTC)."""
    if len(at_us) == 0:
        return pl.Series([], dtype=pl.String)
    offset = zone_offsets(at_us, zone) if zone else np.zeros(len(at_us), np.int64)
    local = at_us + offset
    day = local // US_PER_DAY
    first = int(day.min())
    dates = [
        (date(1970, 1, 1) + timedelta(days=first + k)).isoformat() + sep
        for k in range(int(day.max()) - first + 1)
    ]
    second_index = (local % US_PER_MINUTE) // (1000 if millis else 1_000_000)
    parts = [
        pl.Series(dates).gather(day - first),
        _minutes().gather((local % US_PER_DAY) // US_PER_MINUTE),
        _seconds(millis).gather(second_index),
    ]
    if with_offset:
        hours = offset // US_PER_HOUR
        parts.append(_offsets().gather(hours + 12))
    return (
        pl.DataFrame(parts, schema=[f"p{i}" for i in range(len(parts))])
        .select(pl.concat_str(pl.all()))
        .to_series()
    )


# The lookup tables do not depend on the data: built once per process (the 60,000 texts of
# the millisecond table cost more than formatting a small file's timestamps).


@functools.cache
def _minutes() -> pl.Series:
    return pl.Series([f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)])


@functools.cache
def _seconds(millis: bool) -> pl.Series:
    if millis:
        return pl.Series([f"{s:02d}.{ms:03d}" for s in range(60) for ms in range(1000)])
    return pl.Series([f"{s:02d}" for s in range(60)])


@functools.cache
def _offsets() -> pl.Series:
    return pl.Series([f"{'+' if h >= 0 else '-'}{abs(h):02d}:00" for h in range(-12, 15)])
