"""Ad-hoc event funnels with the semantics product-analytics users know (docs/funnels.md).

    from cjm_analytics.funnels import event_funnel, funnel_units

    event_funnel(events, ["viewed_pricing", "booked_demo", "purchased"],
                 window_seconds=14 * 86400, breakdown="device")

`events` is a polars DataFrame, a pyarrow Table or a DuckDB relation with `event_at`
(UTC), `event_name`, the unit column (`customer_id` by default) and any property
columns; or, with `con=`, the name of a table or view in that DuckDB connection (the
fast path for the warehouse: nothing is copied).

Rules in short (every one is worked through with examples in docs/funnels.md):
- counts are cumulative: step k counts the units that reached at least step k;
- ordered: every step-1 event starts an attempt; each later step takes the earliest
  matching event after the previous one; the whole attempt fits in `window_seconds`
  from its step-1 event (inclusive); one event fills at most one step; events at the
  same instant are taken in whichever order helps the funnel;
- strict: as ordered, with no other event of the unit in between consecutive steps;
- unordered: k distinct steps inside one window, any step first;
- the attempt that counts: furthest, then not excluded, then earliest to reach that
  step, then latest start; its times give the time-to-convert columns;
- exclusions remove a unit whose counting attempt has the excluded event strictly between
  the two named (0-based) steps, or after the first and inside the window when the
  attempt stops before the second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from cjm_analytics import warehouse
from cjm_analytics.errors import FunnelError
from cjm_analytics.funnels import sortfree
from cjm_analytics.funnels.engine import (
    ordered_best,
    prepare_events,
    temp_names,
    touch_source,
    unordered_best,
)
from cjm_analytics.funnels.macros import install_sql_macros
from cjm_analytics.funnels.spec import FunnelSpec, build_spec, quote

__all__ = ["FUNNEL_COLUMNS", "event_funnel", "funnel_units", "install_sql_macros"]

#: Columns of `event_funnel`'s frame (plus `breakdown_value` when broken down).
FUNNEL_COLUMNS: dict[str, pl.DataType] = {
    "step": pl.Int64(),
    "event_name": pl.String(),
    "unit_count": pl.Int64(),
    "conversion_rate_from_previous": pl.Float64(),
    "conversion_rate_from_start": pl.Float64(),
    "avg_time_from_previous_seconds": pl.Float64(),
    "median_time_from_previous_seconds": pl.Float64(),
}
_SOURCE = "_cjm_funnel_events"


def event_funnel(
    events: Any,
    steps: Sequence[Any],
    *,
    mode: str = "ordered",
    window_seconds: float = 14 * 86400,
    exclusions: Sequence[dict[str, Any]] = (),
    breakdown: str | None = None,
    breakdown_attribution: str = "first_touch",
    breakdown_step: int | None = None,
    unit: str = "customer_id",
    date_from: Any = None,
    date_to: Any = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pl.DataFrame:
    """One row per step (and breakdown value): units that reached it, rates, time to convert.

    `conversion_rate_from_previous` of step 1 is 1.0; rates are null when their
    denominator is 0. Times are seconds from the previous step of the attempt that
    counted, over the units that reached the step (null for step 1).
    """
    options = {
        "mode": mode, "window_seconds": window_seconds, "exclusions": exclusions,
        "breakdown": breakdown, "breakdown_attribution": breakdown_attribution,
        "breakdown_step": breakdown_step, "unit": unit, "date_from": date_from,
        "date_to": date_to,
    }  # fmt: skip
    spec, counts = _run(events, con, steps, options, _step_counts)
    return _funnel_frame(spec, counts)


def funnel_units(
    events: Any,
    steps: Sequence[Any],
    *,
    mode: str = "ordered",
    window_seconds: float = 14 * 86400,
    exclusions: Sequence[dict[str, Any]] = (),
    unit: str = "customer_id",
    date_from: Any = None,
    date_to: Any = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pl.DataFrame:
    """One row per unit that reached step 1 and was not excluded: `unit`, `furthest_step` (1-based)."""
    options = {
        "mode": mode, "window_seconds": window_seconds, "exclusions": exclusions,
        "breakdown": None, "breakdown_attribution": "first_touch", "breakdown_step": None,
        "unit": unit, "date_from": date_from, "date_to": date_to,
    }  # fmt: skip
    _, frame = _run(events, con, steps, options, _unit_rows)
    return frame.with_columns(pl.col("furthest_step").cast(pl.Int64))


def _run(
    events: Any,
    con: duckdb.DuckDBPyConnection | None,
    steps: Sequence[Any],
    options: dict[str, Any],
    finish: Callable[[duckdb.DuckDBPyConnection, FunnelSpec, dict[str, str], str], pl.DataFrame],
) -> tuple[FunnelSpec, pl.DataFrame]:
    """Validate against the input's columns, compute every unit's best attempt, then `finish`."""
    with _Source(events, con) as src:
        spec = build_spec(steps, columns=src.columns, **options)
        db, source = src.open(spec)
        with temp_names(db) as names:
            touch = _best(db, source, spec, names)
            return spec, finish(db, spec, names, touch)


def _unit_rows(
    db: duckdb.DuckDBPyConnection, spec: FunnelSpec, names: dict[str, str], touch: str
) -> pl.DataFrame:
    rel = db.sql(
        f"SELECT unit_id AS unit, reached AS furthest_step FROM {names['best']} "
        "WHERE NOT excluded ORDER BY unit"
    )
    return _frame(rel)


def _frame(rel: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    frame = pl.from_arrow(rel.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


class _Source:
    """Any accepted input as a relation name in a DuckDB connection, reading only needed columns."""

    def __init__(self, events: Any, con: duckdb.DuckDBPyConnection | None) -> None:
        self.events, self.con = events, con
        self.owned: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> _Source:
        events = self.events
        if isinstance(events, str):
            if self.con is None:
                raise FunnelError(
                    f"events: a table name ({events!r}) needs con= (a DuckDB connection)"
                )
            self.columns = [r[0] for r in self.con.sql(f"DESCRIBE {quote(events)}").fetchall()]
        elif isinstance(events, duckdb.DuckDBPyRelation | pl.DataFrame):
            self.columns = list(events.columns)
        elif isinstance(events, pa.Table):
            self.columns = list(events.column_names)
        else:
            raise FunnelError(
                "events: expected a polars DataFrame, a pyarrow Table, a DuckDB relation, "
                f"or a table name with con=; got {type(events).__name__}"
            )
        return self

    def open(self, spec: FunnelSpec) -> tuple[duckdb.DuckDBPyConnection, str]:
        events = self.events
        if isinstance(events, str):
            assert self.con is not None
            return self.con, quote(events)
        needed = [c for c in self.columns if c in _needed(spec)]
        if isinstance(events, duckdb.DuckDBPyRelation):
            events = events.select(*[quote(c) for c in needed]).to_arrow_table()
        elif isinstance(events, pl.DataFrame):
            events = events.select(needed).to_arrow()
        else:
            events = events.select(needed)
        owned = self.owned = warehouse.connect()
        owned.register(_SOURCE, events)
        return owned, _SOURCE

    def __exit__(self, *exc: object) -> None:
        if self.owned is not None:
            self.owned.close()


def _needed(spec: FunnelSpec) -> set[str]:
    return {spec.unit, "event_at", "event_name", *spec.property_columns} | (
        {spec.breakdown} if spec.breakdown else set()
    )


def _best(
    db: duckdb.DuckDBPyConnection, source: str, spec: FunnelSpec, names: dict[str, str]
) -> str:
    """Build `best`; return the relation (unit_id, touch) a first/last-touch breakdown reads."""
    try:
        if sortfree.applies(db, source, spec):
            sortfree.best(db, source, spec, names["best"])
            return f"(SELECT unit_id, touch FROM {names['best']})"
        prepare_events(db, source, spec, names["ev"])
        if spec.mode == "unordered":
            unordered_best(db, spec, names)
        else:
            ordered_best(db, spec, names)
        return touch_source(spec, names["ev"])
    except duckdb.Error as exc:
        raise FunnelError(
            f"events: the funnel query failed on {source}: {exc}. Accepted: event_at a "
            "timestamp (UTC), event_name text, and `where` values of the columns' types"
        ) from exc


def _step_counts(
    db: duckdb.DuckDBPyConnection, spec: FunnelSpec, names: dict[str, str], touch_from: str
) -> pl.DataFrame:
    """Long frame: bucket, step, unit_count, avg and median seconds from the previous step."""
    bucket = "b.bucket"
    touch = ""
    if spec.by_touch:
        touch = f"LEFT JOIN {touch_from} AS tt USING (unit_id)"
        bucket = "coalesce(tt.touch, '')"
    parts = []
    for k in range(1, spec.n + 1):
        dt = f"(t{k - 1} - t{k - 2}) / 1e6" if k > 1 else "CAST(NULL AS DOUBLE)"
        parts.append(
            f"SELECT bucket, {k} AS step, count(*) AS unit_count, avg({dt}) AS avg_s, "
            f"median({dt}) AS median_s FROM counted WHERE reached >= {k} GROUP BY bucket"
        )
    sql = (
        f"WITH counted AS (SELECT b.* REPLACE ({bucket} AS bucket) FROM {names['best']} AS b "
        f"{touch} WHERE NOT b.excluded) " + " UNION ALL ".join(parts)
    )
    return _frame(db.sql(sql))


def _funnel_frame(spec: FunnelSpec, counts: pl.DataFrame) -> pl.DataFrame:
    buckets = sorted(set(counts["bucket"].to_list())) if spec.breakdown else [""]
    grid = pl.DataFrame(
        {
            "bucket": [b for b in buckets for _ in spec.steps],
            "step": [k for _ in buckets for k in range(1, spec.n + 1)],
            "event_name": [m.event for _ in buckets for m in spec.steps],
        },
        schema={"bucket": pl.String, "step": pl.Int64, "event_name": pl.String},
    )
    counts = counts.with_columns(pl.col("step").cast(pl.Int64), pl.col("unit_count").cast(pl.Int64))
    frame = grid.join(counts, on=["bucket", "step"], how="left").with_columns(
        pl.col("unit_count").fill_null(0)
    )
    first = pl.col("unit_count").first().over("bucket")
    prev = pl.col("unit_count").shift(1).over("bucket").fill_null(pl.col("unit_count"))
    frame = frame.sort("bucket", "step").with_columns(
        conversion_rate_from_previous=pl.when(prev > 0).then(pl.col("unit_count") / prev),
        conversion_rate_from_start=pl.when(first > 0).then(pl.col("unit_count") / first),
        avg_time_from_previous_seconds=pl.col("avg_s").cast(pl.Float64),
        median_time_from_previous_seconds=pl.col("median_s").cast(pl.Float64),
    )
    columns = list(FUNNEL_COLUMNS)
    if spec.breakdown:
        frame = frame.rename({"bucket": "breakdown_value"})
        columns.append("breakdown_value")
    return frame.select(columns)
