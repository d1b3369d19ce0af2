"""Plant a small, counted share of dirty rows, the kinds real exports contain.

Kinds: `duplicate` (an exact copy of a row, same event id, written right after it),
`broken_timestamp` (unparseable time text), `missing_ids` (no identifier at all),
`future_date` (a time after the data's as-of) and, for JSON lines only, `malformed_json`
(a truncated line). Each dirty row has exactly one kind; counts go to truth.json.
"""

from __future__ import annotations

import numpy as np
import polars as pl

DIRTY_KINDS: dict[str, tuple[str, ...]] = {
    "web": ("duplicate", "broken_timestamp", "missing_ids", "future_date", "malformed_json"),
    "crm": ("duplicate", "broken_timestamp", "missing_ids", "future_date"),
    "calls": ("duplicate", "broken_timestamp", "missing_ids", "future_date"),
}
ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "web": ("anonymous_id", "user_id", "email"),
    "crm": ("contact_id", "email", "phone", "web_user_id"),
    "calls": ("caller_phone",),
}
BROKEN_TIMESTAMPS: dict[str, tuple[str, ...]] = {
    "web": (
        "2026-02-30T25:61:00+01:00",
        "not a timestamp",
        "1700000000",
        "2026-13-01T10:00:00+01:00",
    ),
    "crm": ("2026-02-30 25:61:00", "31.02.2026 10:00", "n/a", "2026-13-01 10:00:00"),
    "calls": ("2026-02-30 25:61:00", "--", "2026-13-01 10:00:00", "yesterday 10:00"),
}
DAY_US = 86_400_000_000


def dirty_counts(rows: int, source: str, rate: float) -> dict[str, int]:
    """How many rows of each kind to spoil: `rate` of the rows, spread evenly over kinds."""
    kinds = DIRTY_KINDS[source]
    if rate <= 0 or rows < 4 * len(kinds):
        return dict.fromkeys(kinds, 0)
    each = max(1, round(rows * rate / len(kinds)))
    return dict.fromkeys(kinds, min(each, rows // (2 * len(kinds))))


def mark(frame: pl.DataFrame, rng: np.random.Generator, source: str, rate: float) -> pl.DataFrame:
    """Add `_dirty` (kind or null) to a source's rows, on distinct randomly chosen rows."""
    counts = dirty_counts(frame.height, source, rate)
    chosen = rng.choice(frame.height, sum(counts.values()), replace=False)
    codes = np.zeros(frame.height, np.int64)
    codes[chosen] = np.repeat(np.arange(1, len(counts) + 1), list(counts.values()))
    names = pl.Series([None, *counts], dtype=pl.String)
    return frame.with_columns(_dirty=names.gather(codes))


def spoil_before_text(
    frame: pl.DataFrame,
    rng: np.random.Generator,
    source: str,
    time_columns: tuple[str, ...],
    as_of_us: int,
) -> pl.DataFrame:
    """Move future rows 1 hour to 300 days past as-of (all their times alike) and blank
    every identifier of missing_ids rows."""
    later = pl.Series(rng.integers(3_600_000_000, 300 * DAY_US, frame.height))
    shift = pl.lit(as_of_us) - pl.col("_at") + later
    future = pl.col("_dirty") == "future_date"
    missing = pl.col("_dirty") == "missing_ids"
    return frame.with_columns(
        *[
            pl.when(future & (pl.col(c) >= 0)).then(pl.col(c) + shift).otherwise(pl.col(c))
            for c in time_columns
        ],
        *[pl.when(missing).then(None).otherwise(pl.col(c)).alias(c) for c in ID_COLUMNS[source]],
    )


def break_timestamps(
    frame: pl.DataFrame, rng: np.random.Generator, source: str, column: str
) -> pl.DataFrame:
    """Overwrite the main time text of broken_timestamp rows with unparseable text."""
    options = pl.Series(BROKEN_TIMESTAMPS[source])
    garbage = options.gather(rng.integers(0, len(options), frame.height))
    return frame.with_columns(
        pl.when(pl.col("_dirty") == "broken_timestamp")
        .then(garbage)
        .otherwise(pl.col(column))
        .alias(column)
    )


def duplicate(frame: pl.DataFrame) -> pl.DataFrame:
    """Write each duplicate row twice, the copy right after the original (`_copy` marks it)."""
    twice = (frame["_dirty"] == "duplicate").fill_null(False).to_numpy()
    order = np.repeat(np.arange(frame.height), 1 + twice.astype(np.int64))
    is_copy = np.zeros(len(order), bool)
    is_copy[1:] = order[1:] == order[:-1]
    return frame[order].with_columns(_copy=pl.Series(is_copy))
