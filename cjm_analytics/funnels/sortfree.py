"""Ordered funnels without a sort: each unit's counted attempt from its step times (ADR 0103).

When the funnel is ordered, its steps name different events, nothing is excluded and
the window cannot bind (it is at least the time span of the step events read), the
attempt that counts follows from three greedy passes over each unit's step times:

1. forward, from the unit's earliest step-1 event, each step the earliest time of its
   events at or after the previous step's (`f_k`). An attempt that starts later never
   gets further nor earlier, so this one reaches the furthest step `R` any attempt
   reaches, and `f_{R-1}` is the earliest completion;
2. backward, from that completion, each step the latest time of its events at or before
   the next step's (`b_k`): `b_0` is the latest start whose attempt still completes at
   `f_{R-1}` (the rule "furthest, then earliest completion, then latest start");
3. forward again from `b_0`: the counted attempt's step times (`f` itself when
   `b_0 = f_0`, the usual case).

"At or after" is the engine's walk order (time, then step) at one instant: a step event
at the same instant as the previous step's event comes after it. One hash aggregate
gathers each (unit, bucket)'s step times as one list per step; the passes are list
filters on those lists. Nothing is sorted, so the cost is about one scan of the step
events (measured in bench/bench_funnel.py against the sort floor). Every other funnel
takes the general engine (`engine.py`, `walk.py`); both are checked against the
brute-force reference (tests/test_funnels_properties.py).
"""

from __future__ import annotations

import duckdb

from cjm_analytics.funnels.engine import step_event_ctes, touch_aggregate
from cjm_analytics.funnels.spec import NO_WINDOW_US, FunnelSpec
from cjm_analytics.funnels.walk import walkable


def applies(con: duckdb.DuckDBPyConnection, source: str, spec: FunnelSpec) -> bool:
    """Is the sort-free path exact for this funnel on this source?

    The window cannot bind when it is at least the time span of the events read: those
    of the source (one min/max of `event_at`, a cheap scan of one column) clipped to the
    date range asked for.
    """
    if not walkable(spec) or spec.exclusions:
        return False
    if spec.window_us >= NO_WINDOW_US:
        return True
    span = con.execute(
        "SELECT least(epoch_us(max(event_at)), ?) - greatest(epoch_us(min(event_at)), ?) "
        f"FROM {source}",
        [spec.to_us, spec.from_us],
    ).fetchone()
    return span is None or span[0] is None or span[0] <= spec.window_us


def best(con: duckdb.DuckDBPyConnection, source: str, spec: FunnelSpec, best_table: str) -> None:
    """`best_table`: one row per (unit, bucket) with a step-1 event, as `engine.best_select`
    makes it (unit_id, bucket, reached, excluded, t0..), plus `touch` for a first- or
    last-touch breakdown."""
    n = spec.n
    ctes, params = step_event_ctes(source, spec, every_event=False)
    lists = ", ".join(f"list(t) FILTER (WHERE m{k}) AS l{k}" for k in range(n))
    touch = f", {touch_aggregate(spec)} AS touch" if spec.by_touch else ""
    passes = [
        f"grouped AS (SELECT unit_id, bucket, {lists}{touch} FROM kept "
        "GROUP BY unit_id, bucket HAVING bool_or(m0))",
        "f0 AS (SELECT *, list_min(l0) AS f0 FROM grouped)",
    ]
    for k in range(1, n):  # 1. earliest chain from the earliest start
        passes.append(
            f"f{k} AS (SELECT *, list_min(list_filter(l{k}, lambda x: x >= f{k - 1})) AS f{k} "
            f"FROM f{k - 1})"
        )
    passes.append(f"b{n - 1} AS (SELECT *, f{n - 1} AS b{n - 1} FROM f{n - 1})")
    for k in range(n - 2, -1, -1):  # 2. latest start completing as early (b_k = f_k at R-1)
        passes.append(
            f"b{k} AS (SELECT *, coalesce(list_max(list_filter(l{k}, lambda x: x <= b{k + 1})), "
            f"f{k}) AS b{k} FROM b{k + 1})"
        )
    passes.append("g0 AS (SELECT *, b0 AS g0 FROM b0)")
    for k in range(1, n):  # 3. the counted attempt: earliest chain from that start
        passes.append(
            f"g{k} AS (SELECT *, CASE WHEN b0 = f0 THEN f{k} ELSE "
            f"list_min(list_filter(l{k}, lambda x: x >= g{k - 1})) END AS g{k} FROM g{k - 1})"
        )
    reached = " + ".join(f"CAST(f{k} IS NOT NULL AS INTEGER)" for k in range(n))
    times = ", ".join(f"g{k} AS t{k}" for k in range(n))
    con.execute(
        f"""CREATE TEMP TABLE {best_table} AS
        WITH {ctes},
        {", ".join(passes)}
        SELECT unit_id, bucket, {reached} AS reached, false AS excluded, {times}
            {", touch" if touch else ""}
        FROM g{n - 1}""",
        params,
    )
