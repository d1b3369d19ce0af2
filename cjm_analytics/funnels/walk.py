"""Ordered funnels with distinct step names: every attempt's chain in one sorted pass.

When no two steps share an event name (and the mode is not strict), an event is one
copy of one step and no attempt can meet an event it already used, so step k of an
attempt is simply the first step-k event after the previous step's event in the walk
order (time, step) of its (unit, bucket), if it is inside the window. That is the same
chain the SQL joins of `engine.chain_ctes` build (ADR 0044), computed here with numpy
over the step events fetched once, sorted: "the next step-k event after position i" is
a reverse running minimum, and following a chain is an array lookup per step.

The attempts go back to DuckDB with the columns `engine` scores (`e{k}`, `t{k}`,
`nx{i}_{k}`), so which attempt counts, exclusions and the step counts stay in SQL.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cjm_analytics.funnels.spec import FunnelSpec


def walkable(spec: FunnelSpec, mode: str = "ordered") -> bool:
    """Can this module replace the SQL engine (`mode`, strict excluded, distinct step names)?"""
    return spec.mode == mode != "strict" and len({step.event for step in spec.steps}) == spec.n


def _fetch(con: duckdb.DuckDBPyConnection, spec: FunnelSpec, ev: str) -> pa.Table:
    """`ev` sorted by (unit, bucket, time, step): unit_id, bucket, t, label, nx{i}."""
    label = " ".join(f"WHEN m{j} THEN {j}" for j in range(spec.n))
    nx = "".join(f", nx{i}" for i in range(len(spec.exclusions)))
    return con.sql(
        f"SELECT unit_id, bucket, t, CAST(CASE {label} END AS TINYINT) AS label{nx} "
        f"FROM {ev} ORDER BY unit_id, bucket, t, label"
    ).fetch_arrow_table()


def walk_attempts(con: duckdb.DuckDBPyConnection, spec: FunnelSpec, ev: str, out: str) -> None:
    """Register `out`: one row per attempt (step-1 event) with its chain's events and times."""
    table = _fetch(con, spec, ev)
    positions = _chains(spec, table)
    con.register(out, _attempt_table(spec, table, positions))


def walk_unordered(con: duckdb.DuckDBPyConnection, spec: FunnelSpec, ev: str, out: str) -> None:
    """Register `out`: one row per anchor (step event) with `ta`, `reached`, t{k}, nx{i}_0.

    As `engine._unordered_distinct`: each step takes its first event at or after the
    anchor's instant; those inside the window, sorted, are the attempt's step times.
    """
    table = _fetch(con, spec, ev)
    labels, times = table.column("label").to_numpy(), table.column("t").to_numpy()
    part = np.append(_partitions(table), -1)
    size = len(labels)
    newblock = np.ones(size, dtype=bool)
    newblock[1:] = (part[1:size] != part[: size - 1]) | (times[1:] != times[:-1])
    block_start = np.maximum.accumulate(np.where(newblock, np.arange(size), 0))
    found = np.full((size, spec.n), np.iinfo(np.int64).max, dtype=np.int64)
    for g in range(spec.n):
        nxt = _next_at_or_after(labels, g)[block_start]
        ok = (nxt < size) & (part[nxt] == part[:size])
        ok[ok] = times[nxt[ok]] <= times[ok] + spec.window_us
        found[ok, g] = times[nxt[ok]]
    found.sort(axis=1)
    inside = found != np.iinfo(np.int64).max
    columns = {c: table.column(c) for c in ("unit_id", "bucket")}
    columns["ta"] = table.column("t")
    columns["reached"] = pa.array(inside.sum(axis=1), type=pa.int64())
    for k in range(spec.n):
        columns[f"t{k}"] = pa.array(found[:, k], type=pa.int64(), mask=~inside[:, k])
    for i in range(len(spec.exclusions)):
        columns[f"nx{i}_0"] = table.column(f"nx{i}")
    con.register(out, pa.table(columns))


def _next_at_or_after(labels: np.ndarray, k: int) -> np.ndarray:
    """Per row i, the position of the first step-k row at or after i (len(labels) if none)."""
    size = len(labels)
    candidate = np.where(labels == k, np.arange(size), size)
    return np.append(np.minimum.accumulate(candidate[::-1])[::-1], size)


def _partitions(table: pa.Table) -> np.ndarray:
    """Per row, the number of its (unit, bucket) run in the sorted table."""
    keys = [table.column(c).combine_chunks() for c in ("unit_id", "bucket")]
    changed = np.zeros(table.num_rows, dtype=bool)
    for key in keys:
        if table.num_rows > 1:
            differs = pc.not_equal(key.slice(1), key.slice(0, table.num_rows - 1))
            changed[1:] |= differs.to_numpy(zero_copy_only=False)
    return np.cumsum(changed)


def _next_after(labels: np.ndarray, k: int) -> np.ndarray:
    """Per row i, the position of the first step-k row after i (len(labels) if none)."""
    return _next_at_or_after(labels, k)[1:]


def _chains(spec: FunnelSpec, table: pa.Table) -> list[np.ndarray]:
    """Positions of each attempt's step events, step by step (-1 where not reached)."""
    labels = table.column("label").to_numpy()
    times = table.column("t").to_numpy()
    part = np.append(_partitions(table), -1)  # position len(labels) is "none"
    start = np.flatnonzero(labels == 0)
    current, alive = start, np.ones(len(start), dtype=bool)
    positions = [start]
    for k in range(1, spec.n):
        nxt = _next_after(labels, k)[current]
        found = nxt < len(labels)
        ok = alive & found & (part[nxt] == part[start])
        ok[ok] = times[nxt[ok]] - times[start[ok]] <= spec.window_us
        positions.append(np.where(ok, nxt, -1))
        current, alive = np.where(ok, nxt, current), ok
    return positions


def _attempt_table(spec: FunnelSpec, table: pa.Table, positions: list[np.ndarray]) -> pa.Table:
    """unit_id, bucket, e{k} and t{k} (null when not reached), nx{i}_{from_step}."""
    start = pa.array(positions[0])
    columns = {
        "unit_id": table.column("unit_id").take(start),
        "bucket": table.column("bucket").take(start),
    }
    times = table.column("t").to_numpy()
    for k, pos in enumerate(positions):
        missing = pos < 0
        columns[f"e{k}"] = pa.array(pos, type=pa.int64(), mask=missing)
        columns[f"t{k}"] = pa.array(times[np.maximum(pos, 0)], type=pa.int64(), mask=missing)
    for i, x in enumerate(spec.exclusions):
        pos = positions[x.from_step]
        taken = table.column(f"nx{i}").take(pa.array(np.maximum(pos, 0)))
        columns[f"nx{i}_{x.from_step}"] = pc.if_else(pa.array(pos < 0), None, taken)
    return pa.table(columns)
