"""Stitch-quality numbers of a run (`StitchSummary`) and the table `identity_quality`."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from cjm_analytics.config import JourneyConfig
from cjm_analytics.identity.graph import MAX_ITERATIONS


@dataclass(frozen=True)
class StitchSummary:
    """Stitch-quality numbers of one run (the same as table `identity_quality`)."""

    event_count: int
    identified_event_count: int
    identified_event_rate: float
    customer_count: int
    identifier_count: int
    shared_identifier_count: int
    merge_count: int
    blocked_link_count: int
    clusters_over_limit: int
    largest_cluster_identifiers: int
    iterations: int
    #: how the run computed the tables: "full", or "incremental" (stitch_incremental)
    mode: str = "full"
    #: why stitch_incremental ran the full stitch instead ("" when it did not)
    fallback_reason: str = ""
    #: rows of `stitch_scope` (stitch_incremental only; every customer on a fallback)
    scope_customer_count: int | None = None


#: the StitchSummary fields that are rows of `identity_quality`
QUALITY_METRICS = (
    "event_count", "identified_event_count", "identified_event_rate", "customer_count",
    "identifier_count", "shared_identifier_count", "merge_count", "blocked_link_count",
    "clusters_over_limit", "largest_cluster_identifiers", "iterations",
)  # fmt: skip


def _quality(
    con: duckdb.DuckDBPyConnection,
    cfg: JourneyConfig,
    iterations: int,
    over_limit: int,
    merges: int,
) -> StitchSummary:
    row = con.execute(
        """
SELECT (SELECT count(*) FROM events), (SELECT count(customer_id) FROM events),
    (SELECT count(DISTINCT customer_id) FROM node_customer),
    (SELECT count(*) FROM node_customer), (SELECT count(*) FROM node_customer WHERE is_shared),
    (SELECT count(*) FROM stitch_pairs) - (SELECT count(*) FROM stitch_pairs p
        JOIN node_customer a ON a.node_id = p.a JOIN node_customer b ON b.node_id = p.b
        WHERE a.customer_id = b.customer_id),
    (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM node_customer WHERE customer_id IS NOT NULL
        GROUP BY customer_id))
"""
    ).fetchall()[0]
    assert row is not None
    events, identified, customers, identifiers, shared, blocked, largest = (int(v) for v in row)
    summary = StitchSummary(
        events, identified, identified / events if events else 0.0, customers, identifiers, shared,
        merges, blocked, over_limit, largest, iterations,
    )  # fmt: skip
    _write_quality(
        con,
        summary,
        "SELECT count(*) AS n FROM node_customer WHERE customer_id IS NOT NULL GROUP BY customer_id",
    )
    return summary


def _write_quality(con: duckdb.DuckDBPyConnection, summary: StitchSummary, sizes_sql: str) -> None:
    """identity_quality: the summary's metrics and the quantiles of the customer sizes
    `sizes_sql` gives (a constant query: one row per customer, its identifier count n)."""
    metrics = {name: float(getattr(summary, name)) for name in QUALITY_METRICS}
    sizes = con.execute(f"SELECT quantile_cont(n, [0.5, 0.9, 0.99]) FROM ({sizes_sql})").fetchall()[
        0
    ][0]  # type: ignore[index]
    for name, value in zip(("cluster_identifiers_p50", "cluster_identifiers_p90", "cluster_identifiers_p99"),
                           sizes or [0, 0, 0], strict=True):  # fmt: skip
        metrics[name] = float(value)
    con.register(
        "metrics_input", pa.table({"metric": list(metrics), "value": list(metrics.values())})
    )
    con.execute("CREATE OR REPLACE TABLE identity_quality AS SELECT * FROM metrics_input")
    con.unregister("metrics_input")


def _incremental_quality(
    con: duckdb.DuckDBPyConnection, merges: int, blocked_delta: int, rounds_elsewhere: int
) -> StitchSummary:
    """identity_quality from the updated tables, and last night's blocked links and
    re-split clusters carried forward."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_sizes AS SELECT count(*) AS n FROM identity_map "
        "WHERE customer_id IS NOT NULL GROUP BY customer_id"
    )
    row = con.execute(
        """
SELECT (SELECT count(*) FROM events), (SELECT count(customer_id) FROM events),
    (SELECT count(*) FROM inc_sizes), (SELECT count(*) FROM identity_map),
    (SELECT count(*) FROM identity_map WHERE is_shared),
    (SELECT CAST(value AS BIGINT) FROM identity_quality WHERE metric = 'blocked_link_count'),
    (SELECT coalesce(max(n), 0) FROM inc_sizes),
    (SELECT count(*) FROM stitch_blocked),
    (SELECT coalesce(max(rounds), 0) FROM stitch_rounds),
    (SELECT count(*) FROM stitch_scope)
"""
    ).fetchall()[0]
    events, identified, customers, identifiers, shared, blocked, largest, over_limit = row[:8]
    iterations = min(MAX_ITERATIONS, 1 + max(rounds_elsewhere, int(row[8])))
    summary = StitchSummary(
        events, identified, identified / events if events else 0.0, customers, identifiers, shared,
        merges, blocked + blocked_delta, over_limit, largest, iterations,
        mode="incremental", scope_customer_count=int(row[9]),
    )  # fmt: skip
    _write_quality(con, summary, "SELECT n FROM inc_sizes")
    return summary
