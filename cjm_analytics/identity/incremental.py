"""The incremental stitch (docs/adr/0091-incremental-identity-stitch.md): last night's tables
updated in place for the new events, or the full stitch when the answer could differ."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

import duckdb

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig
from cjm_analytics.identity.customers import _assign_customer_ids
from cjm_analytics.identity.full import _naive_utc, _stg_events_over_events, stitch
from cjm_analytics.identity.identifiers import _kind_tables
from cjm_analytics.identity.quality import StitchSummary, _incremental_quality
from cjm_analytics.identity.state import (
    _STATE_TABLES,
    _load_touched_state,
    _save_state_increment,
    identity_fingerprint,
)
from cjm_analytics.identity.touched import _touched_graph
from cjm_analytics.ingest import lake
from cjm_analytics.schema import LAKE_EVENT_COLUMNS

log = logging.getLogger("cjm_analytics.identity")  # the name it had before the split


#: the previous night's tables an incremental stitch updates in place
PREVIOUS_TABLES = ("events", "identity_map", "identity_merges", "identity_quality")
#: TEMP table an incremental stitch leaves on its connection (none after a fallback): one
#: row per distinct (last_night_id, tonight_id) customer pair of the events it added or
#: moved to another customer (last_night_id NULL for a new event). Every other event keeps
#: its customer, so this is what comparing `events` with last night's would find
#: (`cjm_analytics.incremental.write_changed_customers` reads it instead, ADR 0127).
EVENT_MOVES = "stitch_event_moves"


def stitch_incremental(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime | None = None
) -> StitchSummary:
    """`stg_events` rows not yet in `events` -> the same tables and state as `stitch`, by
    updating the previous night's tables in place; `stitch_scope(customer_id)` lists every
    customer id, old or new, whose events or identifiers changed.

    Reads: `stg_events` (the whole lake), the previous night's `events`, `identity_map`,
    `identity_merges` and `identity_quality` in `con`, and the identity state of the lake.
    Only the identifiers of new events and the previous customers holding them are
    re-stitched, from the events carrying any of those identifiers. Falls back to `stitch`
    (every customer in `stitch_scope`, the reason in the summary and the log) when the
    answer could differ from it: missing tables or state, identity rules changed since the
    state was saved, state and tables out of step, previous events gone from the lake, a
    touched customer re-split for its size or a touched component over the size limit.
    """
    now = _naive_utc(now)
    con.execute(f"DROP TABLE IF EXISTS temp.{EVENT_MOVES}")  # written only if not falling back
    reason = _previous_night_blocker(con, cfg)
    if reason is None:
        _kind_tables(con, cfg)
        reason = _new_events(con) or _touched_graph(con, cfg)
    if reason is not None:
        return _fallback(con, cfg, now, reason)
    rounds_elsewhere = _load_touched_state(con, cfg)
    merges = _assign_customer_ids(con, now)
    _touched_event_customers(con)
    blocked_delta = _blocked_link_delta(con)
    _write_increment(con)
    summary = _incremental_quality(con, merges, blocked_delta, rounds_elsewhere)
    _save_state_increment(con, cfg, now)
    return summary


def _previous_night_blocker(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> str | None:
    """Why the previous night cannot be carried forward, or None."""
    present = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_catalog = current_database() AND table_type = 'BASE TABLE'"
        ).fetchall()
    }
    missing = [name for name in PREVIOUS_TABLES if name not in present]
    if missing:
        return f"the warehouse holds no previous {', '.join(missing)}"
    if not lake.state_path(cfg).exists():
        return f"no identity state at {lake.state_path(cfg)}"
    with warehouse.connection(lake.state_path(cfg), read_only=True) as state:
        tables = {r[0] for r in state.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if not set(_STATE_TABLES) <= tables:
            return "the identity state has no fingerprint (written before the incremental stitch)"
        saved = state.execute("SELECT fingerprint FROM identity_state_settings").fetchall()
        if [row[0] for row in saved] != [identity_fingerprint(cfg)]:
            return "cfg.identity (or the PII salt) changed since the identity state was saved"
        in_state = state.execute(
            "SELECT count(*), sum(hash(kind, value, customer_id)) FROM identity_state_map"
        ).fetchall()
    published = con.execute(
        "SELECT count(*), sum(hash(identifier_kind, identifier_value, customer_id)) "
        "FROM identity_map WHERE customer_id IS NOT NULL"
    ).fetchall()
    if in_state != published:
        return "the identity state and the previous identity_map differ (a night not published?)"
    return None


def _new_file_events(con: duckdb.DuckDBPyConnection) -> str:
    """A SELECT of the lake events that can belong to the files not in `events`: only those
    files' Parquet parts when load_lake listed the parts (`stg_event_parts`), in the order
    stg_events reads them; else all of stg_events."""
    listed = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
        [lake.EVENT_PARTS],
    ).fetchall()[0][0]
    if not listed:
        return "SELECT * FROM stg_events"
    paths = [
        path
        for (path,) in con.execute(
            f"SELECT p.path FROM {lake.EVENT_PARTS} AS p SEMI JOIN ("
            "SELECT i.source, i.sha256 FROM ingest_files AS i "
            "JOIN inc_files AS f ON f.source = i.source AND f.source_file = i.source_file "
            "WHERE f.previous_count = 0) AS n ON n.source = p.source AND n.sha256 = p.sha256 "
            "ORDER BY p.path"
        ).fetchall()
    ]
    return lake.parts_select_sql(con, paths)


def _new_events(con: duckdb.DuckDBPyConnection) -> str | None:
    """inc_new_events: stg_events rows whose (source, event_id) is not in events, numbered.

    Read by source file when the manifest (`ingest_files`, loaded with stg_events) accounts
    for every lake event: each file of the previous events has as many events there as in
    the manifest, and the files that are not in `events` hold all the others. Otherwise by
    an anti-join on the key over the whole lake (slower: every Parquet part is read)."""
    columns = ", ".join(f"s.{c}" for c in LAKE_EVENT_COLUMNS)
    if _table_exists(con, "ingest_files"):
        con.execute(
            """
CREATE OR REPLACE TEMP TABLE inc_files AS
WITH manifest AS (
    SELECT source, source_file, sum(events_loaded) AS lake_count FROM ingest_files GROUP BY ALL
),
previous AS (SELECT source, source_file, count(*) AS previous_count FROM events GROUP BY ALL),
final AS (
    SELECT source, source_file, m.lake_count, coalesce(p.previous_count, 0) AS previous_count
    FROM manifest m FULL JOIN previous p USING (source, source_file)
)
SELECT * FROM final
"""
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE inc_new_events AS SELECT row_number() OVER () AS new_key, "
            f"{columns} FROM ({_new_file_events(con)}) s SEMI JOIN (SELECT source, source_file "
            "FROM inc_files WHERE previous_count = 0) f "
            "ON f.source = s.source AND f.source_file = s.source_file"
        )
        accounted = con.execute(
            "SELECT bool_and(lake_count IS NOT DISTINCT FROM previous_count OR previous_count = 0) "
            "AND (SELECT sum(lake_count) FILTER (WHERE previous_count = 0) FROM inc_files) "
            "IS NOT DISTINCT FROM (SELECT nullif(count(*), 0) FROM inc_new_events) FROM inc_files"
        ).fetchall()[0][0]  # type: ignore[index]
        if accounted:
            return None
        log.info("incremental stitch: the manifest does not account for the lake's events")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE inc_new_events AS SELECT row_number() OVER () AS new_key, "
        f"{columns} FROM stg_events s "
        "ANTI JOIN events e ON e.source = s.source AND e.event_id = s.event_id"
    )
    lake_count, old_count, new_count = con.execute(
        "SELECT (SELECT count(*) FROM stg_events), (SELECT count(*) FROM events), "
        "(SELECT count(*) FROM inc_new_events)"
    ).fetchall()[0]
    if lake_count != old_count + new_count:
        return (
            f"stg_events has {lake_count} rows, not the previous {old_count} events plus "
            f"{new_count} new ones: previous events left the lake"
        )
    return None


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_catalog = current_database() AND table_name = ?",
            [name],
        ).fetchall()[0][0]  # type: ignore[index]
    )


def _touched_event_customers(con: duckdb.DuckDBPyConnection) -> None:
    """inc_owner (node -> previous and new customer) and inc_event_customers (event_key ->
    previous and new customer): the customer of the event's most personal identifier."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_owner AS SELECT n.node_id, n.rank, n.in_scope, "
        "n.old_customer_id, CASE WHEN n.in_scope THEN nc.customer_id ELSE n.old_customer_id END "
        "AS customer_id FROM inc_nodes n LEFT JOIN node_customer nc USING (node_id)"
    )
    con.execute(
        """
CREATE OR REPLACE TEMP TABLE inc_event_customers AS
WITH chosen AS (
    SELECT e.event_key, arg_min(o.customer_id, o.rank) AS customer_id
    FROM inc_event_ids e JOIN inc_owner o USING (node_id) WHERE o.customer_id IS NOT NULL
    GROUP BY e.event_key
)
SELECT s.event_key, s.event_rowid, s.new_key, s.old_customer_id, c.customer_id
FROM inc_source s LEFT JOIN chosen c USING (event_key)
"""
    )


def _blocked_link_delta(con: duckdb.DuckDBPyConnection) -> int:
    """Change of blocked_link_count: links between scope identifiers, tonight minus last
    night (a link with an outside identifier was blocked and stays so; others are unchanged)."""
    row = con.execute(
        "SELECT count(*) FILTER (WHERE (a.customer_id = b.customer_id) IS NOT TRUE) "
        "- count(*) FILTER (WHERE p.is_previous AND (a.old_customer_id = b.old_customer_id) "
        "IS NOT TRUE) FROM inc_pairs p JOIN inc_owner a ON a.node_id = p.a "
        "JOIN inc_owner b ON b.node_id = p.b WHERE a.in_scope AND b.in_scope"
    ).fetchall()[0]
    return int(row[0])


def _write_increment(con: duckdb.DuckDBPyConnection) -> None:
    """In one transaction: record the moves (EVENT_MOVES), insert the new events, move the
    previous ones whose customer changed, replace the scope's identity_map rows, rewrite
    identity_merges, stitch_scope."""
    columns = ", ".join(LAKE_EVENT_COLUMNS)
    con.execute("BEGIN")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {EVENT_MOVES} AS SELECT DISTINCT old_customer_id AS "
        "last_night_id, customer_id AS tonight_id FROM inc_event_customers "
        "WHERE customer_id IS DISTINCT FROM old_customer_id"
    )
    con.execute(
        "UPDATE events SET customer_id = c.customer_id FROM inc_event_customers c "
        "WHERE events.rowid = c.event_rowid AND c.customer_id IS DISTINCT FROM c.old_customer_id"
    )
    con.execute(
        f"INSERT INTO events ({columns}, customer_id) SELECT {', '.join(f'n.{c}' for c in LAKE_EVENT_COLUMNS)}, "
        "c.customer_id FROM inc_new_events n JOIN inc_event_customers c USING (new_key)"
    )
    con.execute(
        "DELETE FROM identity_map USING inc_scope s "
        "WHERE identity_map.identifier_kind = s.kind AND identity_map.identifier_value = s.value"
    )
    con.execute(
        "INSERT INTO identity_map SELECT kind, value, customer_id, is_shared, partner_count "
        "FROM node_customer ORDER BY kind, value"
    )
    con.execute(
        "CREATE OR REPLACE TABLE identity_merges AS SELECT merged_at, kept_customer_id, "
        "merged_customer_id, edge, is_blocked, reason, identifier_count FROM stitch_merge_log"
    )
    _write_scope(con)
    _stg_events_over_events(con)
    con.execute("COMMIT")


def _write_scope(con: duckdb.DuckDBPyConnection) -> None:
    """stitch_scope: customers whose events (added or moved) or identifiers changed."""
    con.execute(
        f"""
CREATE OR REPLACE TABLE stitch_scope AS
WITH moved AS (
    SELECT last_night_id AS old_customer_id, tonight_id AS customer_id FROM {EVENT_MOVES}
),
relabelled AS (
    SELECT old_customer_id, customer_id FROM inc_owner
    WHERE in_scope AND customer_id IS DISTINCT FROM old_customer_id
),
changed AS (SELECT * FROM moved UNION ALL SELECT * FROM relabelled),
final AS (
    SELECT old_customer_id AS customer_id FROM changed WHERE old_customer_id IS NOT NULL
    UNION SELECT customer_id FROM changed WHERE customer_id IS NOT NULL
)
SELECT * FROM final
"""
    )


def _fallback(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime, reason: str
) -> StitchSummary:
    """The full stitch; stitch_scope = every customer id of last night's and tonight's tables."""
    log.info("incremental stitch: running the full stitch instead, because %s", reason)
    present = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_catalog = current_database()").fetchall()}  # fmt: skip
    earlier = [f"SELECT customer_id FROM {t}" for t in ("events", "identity_map") if t in present]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_earlier_customers AS "
        + (" UNION ".join(earlier) if earlier else "SELECT NULL::VARCHAR AS customer_id")
    )
    summary = stitch(con, cfg, now)
    con.execute(
        "CREATE OR REPLACE TABLE stitch_scope AS SELECT customer_id FROM ("
        "SELECT customer_id FROM inc_earlier_customers UNION SELECT customer_id FROM events "
        "UNION SELECT customer_id FROM identity_map) WHERE customer_id IS NOT NULL"
    )
    count = con.execute("SELECT count(*) FROM stitch_scope").fetchall()[0][0]  # type: ignore[index]
    return dataclasses.replace(summary, fallback_reason=reason, scope_customer_count=int(count))
