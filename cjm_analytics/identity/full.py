"""The full stitch: every customer recomputed from `stg_events`, written to `events`,
`identity_map`, `identity_merges` and `identity_quality`, and the state replaced."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from cjm_analytics.config import JourneyConfig
from cjm_analytics.identity.customers import _assign_customer_ids
from cjm_analytics.identity.graph import _node_rounds, _split_oversize, components
from cjm_analytics.identity.identifiers import _identifier_tables, _mark_shared
from cjm_analytics.identity.quality import StitchSummary, _quality
from cjm_analytics.identity.state import _load_previous_state, _save_state
from cjm_analytics.schema import LAKE_EVENT_COLUMNS


def stitch(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime | None = None
) -> StitchSummary:
    """stg_events -> events, identity_map, identity_merges, identity_quality; state updated."""
    now = _naive_utc(now)
    _identifier_tables(con, cfg)
    _mark_shared(con, cfg)
    iterations = components(con, "stitch_nodes", "stitch_edges", "stitch_labels", "stitch_rounds")
    _node_rounds(con)
    over_limit = _split_oversize(con, cfg)
    _load_previous_state(con, cfg)
    merges = _assign_customer_ids(con, now)
    _write_outputs(con, now)
    summary = _quality(con, cfg, iterations, over_limit, merges)
    _save_state(con, cfg, now)
    return summary


def _naive_utc(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)


def _write_outputs(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    columns = ", ".join(f"s.{c}" for c in LAKE_EVENT_COLUMNS)
    con.execute("BEGIN")
    con.execute(
        "CREATE OR REPLACE TABLE events AS "
        "WITH chosen AS (SELECT e.event_key, arg_min(nc.customer_id, nc.rank) AS customer_id "
        "FROM stitch_event_ids e JOIN node_customer nc USING (node_id) WHERE nc.customer_id IS NOT NULL "
        "GROUP BY e.event_key), "
        "keyed AS (SELECT k.source, k.event_id, c.customer_id FROM chosen c "
        "JOIN (SELECT rowid AS event_key, source, event_id FROM stitch_source) k USING (event_key)) "
        f"SELECT {columns}, c.customer_id FROM stg_events s "
        "LEFT JOIN keyed c ON c.source = s.source AND c.event_id = s.event_id"
    )
    con.execute(
        "CREATE OR REPLACE TABLE identity_map AS SELECT kind AS identifier_kind, value AS identifier_value, "
        "customer_id, is_shared, partner_count FROM node_customer ORDER BY identifier_kind, identifier_value"
    )
    con.execute(
        "CREATE OR REPLACE TABLE identity_merges AS SELECT merged_at, kept_customer_id, merged_customer_id, "
        "edge, is_blocked, reason, identifier_count FROM stitch_merge_log"
    )
    _stg_events_over_events(con)
    con.execute("COMMIT")


def _stg_events_over_events(con: duckdb.DuckDBPyConnection) -> None:
    """Point the `stg_events` view (load_lake: over the lake's Parquet) at `events`, the same
    rows now in the warehouse: the published file then never reads the lake, which a full
    rebuild renames (ADR 0090). A `stg_events` table (built by hand in tests) is left alone."""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'stg_events' "
        "AND table_schema = 'main' AND table_catalog = current_database()"
    ).fetchall()
    if kind and kind[0][0] == "VIEW":
        columns = ", ".join(LAKE_EVENT_COLUMNS)
        con.execute(f"CREATE OR REPLACE VIEW stg_events AS SELECT {columns} FROM events")
