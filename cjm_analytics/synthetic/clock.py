"""Operational time -> wall-clock time with a weekday and hour-of-day rhythm.

Customers' gaps are drawn in "operational days" (heavy-tailed, no rhythm). An hourly
intensity over the calendar (Berlin local hour and weekday) is integrated once; mapping
operational time through the inverse of that integral puts activity in the evenings and
on weekdays without ever reordering a customer's events (the map is monotone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000

#: Berlin local hour 0..23 -> relative web/CRM activity.
HOUR_WEIGHTS = np.array(
    [0.25, 0.12, 0.06, 0.05, 0.05, 0.08, 0.25, 0.55, 0.85, 1.0, 1.1, 1.2,
     1.3, 1.25, 1.1, 1.1, 1.15, 1.25, 1.45, 1.65, 1.75, 1.5, 1.0, 0.55]
)  # fmt: skip
#: Monday..Sunday -> relative activity.
WEEKDAY_WEIGHTS = np.array([1.08, 1.02, 1.0, 1.0, 0.95, 0.8, 0.92])
#: Call-center opening hours, Berlin local time, Monday..Saturday.
CALL_OPEN_HOUR, CALL_CLOSE_HOUR = 8, 20


@dataclass(frozen=True)
class Clock:
    """An hourly grid (UTC microseconds) and its cumulative intensity in operational days."""

    grid_us: np.ndarray
    cumulative_days: np.ndarray
    local_hour: np.ndarray
    local_weekday: np.ndarray

    def to_wall(self, operational_days: np.ndarray) -> np.ndarray:
        """UTC microseconds for operational times (monotone, piecewise linear)."""
        return np.interp(operational_days, self.cumulative_days, self.grid_us).astype(np.int64)

    def to_operational(self, wall_us: np.ndarray) -> np.ndarray:
        return np.interp(wall_us, self.grid_us, self.cumulative_days)

    def call_open(self, wall_us: np.ndarray) -> np.ndarray:
        """True where a call at this UTC time falls inside the call center's opening hours."""
        slot = self._slot(wall_us)
        hour = self.local_hour[slot]
        return (hour >= CALL_OPEN_HOUR) & (hour < CALL_CLOSE_HOUR) & (self.local_weekday[slot] < 6)

    def next_opening(self, wall_us: np.ndarray) -> np.ndarray:
        """The first opening hour at or after each time (start of that hour, UTC us)."""
        open_slots = np.flatnonzero(self.call_open(self.grid_us))
        slot = self._slot(wall_us)
        nxt = open_slots[np.minimum(np.searchsorted(open_slots, slot), len(open_slots) - 1)]
        return np.maximum(self.grid_us[nxt], wall_us)

    def _slot(self, wall_us: np.ndarray) -> np.ndarray:
        slot = (wall_us - self.grid_us[0]) // US_PER_HOUR
        return np.clip(slot, 0, len(self.grid_us) - 1)


def build_clock(first: datetime, last: datetime) -> Clock:
    """A clock covering [first, last] (naive UTC datetimes), hourly."""
    first_us = int((first - datetime(1970, 1, 1)) / timedelta(microseconds=1))
    hours = int((last - first) / timedelta(hours=1)) + 1
    grid = first_us + np.arange(hours, dtype=np.int64) * US_PER_HOUR
    local = pl.Series(grid).cast(pl.Datetime("us", "UTC")).dt.convert_time_zone("Europe/Berlin")
    hour = local.dt.hour().to_numpy().astype(np.int64)
    weekday = local.dt.weekday().to_numpy().astype(np.int64) - 1  # 0 = Monday
    weight = HOUR_WEIGHTS[hour] * WEEKDAY_WEIGHTS[weekday]
    weight = weight / weight.mean()
    cumulative = np.concatenate([[0.0], np.cumsum(weight[:-1])]) / 24.0
    return Clock(grid, cumulative, hour, weekday)
