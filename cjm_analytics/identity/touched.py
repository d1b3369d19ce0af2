"""What an incremental night can change: the identifiers of the new events, the previous
customers holding them and the events carrying them, as the graph tables `stitch` uses; and
the reasons that sub-graph cannot be re-stitched alone (docs/adr/0091-incremental-identity-stitch.md)."""

from __future__ import annotations

import duckdb

from cjm_analytics.config import JourneyConfig
from cjm_analytics.identity.customers import LIMIT_REASON
from cjm_analytics.identity.graph import _node_rounds, components
from cjm_analytics.identity.identifiers import identifier_rows, partners_ctes
from cjm_analytics.schema import IDENTIFIER_COLUMNS


def _touched_graph(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> str | None:
    """The sub-graph the new events can change, as the tables `stitch` uses (stitch_nodes,
    stitch_edges, stitch_labels...), restricted to it. Returns a reason to fall back, or None."""
    _touched_identifiers(con)
    _touched_events(con)
    _touched_nodes(con, cfg)
    reason = _closure_blocker(con) or _resplit_blocker(con, cfg)
    if reason is not None:
        return reason
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_nodes AS SELECT node_id, kind, value, rank, "
        "partner_count, is_shared FROM inc_nodes WHERE in_scope"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_edges AS SELECT p.a, p.b FROM inc_pairs p "
        "JOIN stitch_nodes na ON na.node_id = p.a AND NOT na.is_shared "
        "JOIN stitch_nodes nb ON nb.node_id = p.b AND NOT nb.is_shared"
    )
    components(con, "stitch_nodes", "stitch_edges", "stitch_labels", "stitch_rounds")
    _node_rounds(con)
    largest = _largest_component(con, "stitch_labels")
    if largest > cfg.identity.max_cluster_identifiers:
        return (
            f"a touched component has {largest} identifiers, over "
            f"identity.max_cluster_identifiers = {cfg.identity.max_cluster_identifiers}"
        )
    _carried_guard_tables(con)
    return None


def _touched_identifiers(con: duckdb.DuckDBPyConnection) -> None:
    """inc_touched_customers: previous customers of the new events' identifiers;
    inc_scope (kind, value): those identifiers plus every identifier of those customers."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_new_ids AS SELECT DISTINCT kind, value FROM ("
        + identifier_rows("inc_new_events", "new_key")
        + ")"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_touched_customers AS SELECT DISTINCT m.customer_id "
        "FROM identity_map m JOIN inc_new_ids n "
        "ON n.kind = m.identifier_kind AND n.value = m.identifier_value "
        "WHERE m.customer_id IS NOT NULL"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_scope AS SELECT kind, value FROM inc_new_ids UNION "
        "SELECT identifier_kind, identifier_value FROM identity_map "
        "WHERE customer_id IN (SELECT customer_id FROM inc_touched_customers)"
    )


def _touched_events(con: duckdb.DuckDBPyConnection) -> None:
    """inc_source: previous events carrying a scope identifier (with their rowid and
    customer) and the new events (rowid NULL), numbered by event_key."""
    identifiers = ", ".join(dict.fromkeys(IDENTIFIER_COLUMNS.values()))
    carrying = " UNION ".join(  # one semi-join per kind: quicker than OR of IN lists
        f"SELECT e.rowid AS event_rowid FROM events e SEMI JOIN inc_scope s "
        f"ON s.kind = '{kind}' AND s.value = e.{column}"
        for kind, column in IDENTIFIER_COLUMNS.items()
    )
    con.execute(
        f"""
CREATE OR REPLACE TEMP TABLE inc_source AS
WITH carrying AS ({carrying}),
previous AS (
    SELECT e.rowid AS event_rowid, NULL::BIGINT AS new_key, e.source, e.event_id,
        e.customer_id AS old_customer_id, {", ".join(f"e.{c}" for c in dict.fromkeys(IDENTIFIER_COLUMNS.values()))}
    FROM events e SEMI JOIN carrying c ON c.event_rowid = e.rowid
),
tonight AS (
    SELECT NULL::BIGINT, new_key, source, event_id, NULL::VARCHAR, {identifiers}
    FROM inc_new_events
),
final AS (SELECT * FROM previous UNION ALL SELECT * FROM tonight)
SELECT row_number() OVER () AS event_key, * FROM final
"""
    )


def _touched_nodes(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """inc_nodes: every identifier on inc_source, numbered in (kind, value) order like
    stitch_nodes, with in_scope, its previous customer, and its partner count and shared mark
    (recounted for scope identifiers, whose every event is in inc_source; carried for the
    others, which no new event carries); inc_event_ids, inc_pairs (a, b, is_previous)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_raw AS "
        + identifier_rows("inc_source", "event_key, new_key IS NULL AS is_previous")
    )
    con.execute(
        """
CREATE OR REPLACE TEMP TABLE inc_nodes AS
SELECT row_number() OVER (ORDER BY d.kind, d.value) AS node_id, d.kind, d.value, k.rank,
    s.kind IS NOT NULL AS in_scope, m.customer_id AS old_customer_id,
    m.partner_count AS old_partner_count, m.is_shared AS old_is_shared
FROM (SELECT DISTINCT kind, value FROM inc_raw) d JOIN stitch_kinds k USING (kind)
LEFT JOIN inc_scope s ON s.kind = d.kind AND s.value = d.value
LEFT JOIN identity_map m ON m.identifier_kind = d.kind AND m.identifier_value = d.value
"""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_event_ids AS SELECT r.event_key, r.is_previous, "
        "n.node_id, n.kind, n.rank FROM inc_raw r JOIN inc_nodes n USING (kind, value)"
    )
    con.execute("DROP TABLE inc_raw")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_pairs AS SELECT a.node_id AS a, b.node_id AS b, "
        "bool_or(a.is_previous) AS is_previous FROM inc_event_ids a "
        "JOIN inc_event_ids b ON a.event_key = b.event_key AND a.node_id < b.node_id "
        "JOIN stitch_links l ON l.kind_a = a.kind AND l.kind_b = b.kind GROUP BY ALL"
    )
    con.execute(
        f"""
CREATE OR REPLACE TEMP TABLE inc_nodes AS
WITH {partners_ctes("inc_nodes", "inc_pairs", " AND me.in_scope")},
final AS (
    SELECT n.node_id, n.kind, n.value, n.rank, n.in_scope, n.old_customer_id, n.old_is_shared,
        CASE WHEN n.in_scope THEN coalesce(p.partner_count, 0) ELSE n.old_partner_count END
            AS partner_count,
        CASE WHEN n.in_scope THEN coalesce(p.partner_count, 0) > ? OR l.value IS NOT NULL
            ELSE n.old_is_shared END AS is_shared
    FROM inc_nodes n LEFT JOIN partners p USING (node_id)
    LEFT JOIN stitch_listed l ON l.kind = n.kind AND l.value = n.value
)
SELECT * FROM final
""",
        [cfg.identity.max_partners_per_identifier],
    )


def _closure_blocker(con: duckdb.DuckDBPyConnection) -> str | None:
    """The scope must be closed: no link (between identifiers unshared last night) from a
    scope identifier to one outside it. Outside identifiers keep their customer only if so;
    a link across means a customer re-split for its size last night (its parts stay linked),
    which only the full stitch redoes. (Shared marks only grow, so last night's links are a
    superset of tonight's among previous identifiers.)"""
    unknown, crossing = con.execute(
        "SELECT (SELECT count(*) FROM inc_nodes WHERE NOT in_scope AND is_shared IS NULL), "
        "(SELECT count(*) FROM inc_pairs p JOIN inc_nodes a ON a.node_id = p.a "
        "JOIN inc_nodes b ON b.node_id = p.b "
        "WHERE a.in_scope <> b.in_scope AND NOT a.old_is_shared AND NOT b.old_is_shared)"
    ).fetchall()[0]
    if unknown:
        return f"{unknown} identifiers of previous events are missing from identity_map"
    if crossing:
        return (
            f"{crossing} links join touched customers to others (a cluster re-split for "
            "identity.max_cluster_identifiers)"
        )
    return None


def _resplit_blocker(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> str | None:
    """Last night's components of the touched customers (previous events, previous shared
    marks): one over the limit was re-split, and its `identity_merges` row cannot be carried
    (tonight it may be under the limit). Only checked when last night re-split any."""
    resplit = con.execute(
        "SELECT count(*) FROM identity_merges WHERE is_blocked AND reason = ?", [LIMIT_REASON]
    ).fetchall()[0][0]  # type: ignore[index]
    if not resplit:
        return None
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_previous_nodes AS SELECT node_id FROM inc_nodes "
        "WHERE in_scope AND NOT old_is_shared"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_previous_edges AS SELECT p.a, p.b FROM inc_pairs p "
        "JOIN inc_nodes a ON a.node_id = p.a AND a.in_scope AND NOT a.old_is_shared "
        "JOIN inc_nodes b ON b.node_id = p.b AND b.in_scope AND NOT b.old_is_shared "
        "WHERE p.is_previous"
    )
    components(con, "inc_previous_nodes", "inc_previous_edges", "inc_previous_labels")
    largest = _largest_component(con, "inc_previous_labels")
    if largest > cfg.identity.max_cluster_identifiers:
        return (
            f"a touched customer is part of a cluster of {largest} identifiers re-split last night"
        )
    return None


def _largest_component(con: duckdb.DuckDBPyConnection, labels: str) -> int:
    """Identifiers in the largest component of `labels` (node_id, label); 0 when empty."""
    found = con.execute(
        f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {labels} GROUP BY label)"
    ).fetchall()
    return int(found[0][0])


def _carried_guard_tables(con: duckdb.DuckDBPyConnection) -> None:
    """stitch_shared: every shared identifier (scope ones recounted, others carried);
    stitch_blocked: last night's re-split clusters (none of them touched: see the closure)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_shared AS "
        "SELECT kind, value, partner_count FROM stitch_nodes WHERE is_shared UNION ALL "
        "SELECT m.identifier_kind, m.identifier_value, m.partner_count FROM identity_map m "
        "ANTI JOIN inc_scope s ON s.kind = m.identifier_kind AND s.value = m.identifier_value "
        "WHERE m.is_shared"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_blocked AS SELECT NULL::BIGINT AS label, "
        "identifier_count FROM identity_merges WHERE is_blocked AND reason = ?",
        [LIMIT_REASON],
    )
    # claims: the previous customers of scope identifiers (identity_map = the state's map)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE prev_map AS SELECT m.identifier_kind AS kind, "
        "m.identifier_value AS value, m.customer_id FROM identity_map m "
        "JOIN inc_scope s ON s.kind = m.identifier_kind AND s.value = m.identifier_value "
        "WHERE m.customer_id IS NOT NULL"
    )
