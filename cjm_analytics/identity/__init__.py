"""Identity stitching: identifiers that occur on one event link; connected components are customers.

Grain of the outputs (all in the warehouse connection):
- `events`: one row per `stg_events` row plus `customer_id` (NULL when the event has no
  usable identifier);
- `identity_map`: one row per identifier (kind, value; emails and phones are hashes) with
  its customer, or NULL when it is shared;
- `identity_merges`: one row per merge of two previously known customers (kept = the older)
  and per blocked merge (shared identifier, cluster over the limit);
- `identity_quality`: one row per metric (`metric`, `value`).

Rules (docs/adr/0005-identity-precedence.md, 0008-identity-guards-and-stable-ids.md):
- an identifier is shared when listed in `identity.shared_identifiers` or when it occurs with
  more than `max_partners_per_identifier` distinct identifiers of its own or a more personal
  kind (earlier in `identity.precedence`); shared identifiers never link;
- `case` identifiers never link: each case is its own customer;
- a component over `max_cluster_identifiers` is re-split keeping only links between the
  most personal kinds (dropping the last kind of the precedence, then the next...), down to
  single identifiers;
- components are found by label propagation with pointer jumping in DuckDB (a loop per
  iteration, never per node);
- customer ids are stable: the identifier -> customer map is kept in the lake state; a
  component keeps the id of its known identifiers, on a merge the oldest id wins and the
  merge is logged; a new component's id is a hash of its smallest identifier, so re-running
  a night gives identical ids.

`stitch` recomputes everything from `stg_events`; `stitch_incremental` gives the same tables
and state on a warehouse that holds last night's, re-stitching only the identifiers of new
events and the customers holding them, and lists the changed customers in `stitch_scope`
(docs/adr/0091-incremental-identity-stitch.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from cjm_analytics import pii, warehouse
from cjm_analytics.config import JourneyConfig
from cjm_analytics.ingest import lake
from cjm_analytics.schema import IDENTIFIER_COLUMNS, LAKE_EVENT_COLUMNS

MAX_ITERATIONS = 200
log = logging.getLogger(__name__)


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
#: version of the stitching rules in the state fingerprint: bump it when a change to this
#: module would give other customers from the same events and config
RULES_VERSION = 1
#: `identity_merges.reason` of a component re-split for its size
LIMIT_REASON = "cluster over max_cluster_identifiers: re-split"


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


def _kind_ranks(cfg: JourneyConfig) -> dict[str, int]:
    """identifier kind -> rank (0 = most personal), every kind ranked."""
    precedence = list(dict.fromkeys([*cfg.identity.precedence, *IDENTIFIER_COLUMNS]))
    return {kind: precedence.index(kind) for kind in IDENTIFIER_COLUMNS}


def _kind_tables(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """stitch_kinds (kind, rank), stitch_links (kind_a, kind_b) and stitch_listed (kind, value)."""
    ranks = _kind_ranks(cfg)
    con.register("kinds_input", pa.table({"kind": list(ranks), "rank": list(ranks.values())}))
    con.execute("CREATE OR REPLACE TEMP TABLE stitch_kinds AS SELECT * FROM kinds_input")
    con.unregister("kinds_input")
    _allowed_links(con, cfg)
    listed = shared_values(cfg)
    con.register(
        "listed_input", pa.table({"kind": [k for k, _ in listed], "value": [v for _, v in listed]})
    )
    con.execute("CREATE OR REPLACE TEMP TABLE stitch_listed AS SELECT * FROM listed_input")
    con.unregister("listed_input")


def _naive_utc(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)


def _identifier_tables(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """stitch_event_ids (event_key, node_id, kind, rank), stitch_nodes, stitch_pairs."""
    _kind_tables(con, cfg)
    # stg_events is a view over the lake's Parquet (ADR 0090): it has no rowid, so the event
    # keys are numbered once here, on a narrow copy, and map back by (source, event_id)
    identifiers = ", ".join(dict.fromkeys(IDENTIFIER_COLUMNS.values()))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_source AS SELECT row_number() OVER () AS event_key, "
        f"source, event_id, {identifiers} FROM stg_events"
    )
    unions = " UNION ALL ".join(
        f"SELECT event_key, '{kind}' AS kind, {column} AS value FROM stitch_source "
        f"WHERE {column} IS NOT NULL"
        for kind, column in IDENTIFIER_COLUMNS.items()
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE stitch_raw AS {unions}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_nodes AS "
        "SELECT row_number() OVER (ORDER BY kind, value) AS node_id, kind, value, rank "
        "FROM (SELECT DISTINCT kind, value FROM stitch_raw) JOIN stitch_kinds USING (kind)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_event_ids AS SELECT r.event_key, n.node_id, n.kind, n.rank "
        "FROM stitch_raw r JOIN stitch_nodes n USING (kind, value)"
    )
    con.execute("DROP TABLE stitch_raw")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_pairs AS "
        "SELECT DISTINCT a.node_id AS a, b.node_id AS b FROM stitch_event_ids a "
        "JOIN stitch_event_ids b ON a.event_key = b.event_key AND a.node_id < b.node_id "
        "JOIN stitch_links l ON l.kind_a = a.kind AND l.kind_b = b.kind"
    )


def _link_pairs(cfg: JourneyConfig) -> list[tuple[str, str]]:
    """(kind_a, kind_b) both ways: the kinds whose co-occurrence links."""
    kinds = [k for k in IDENTIFIER_COLUMNS if k != "case"]
    if cfg.identity.links is None:
        return [(a, b) for a in kinds for b in kinds if a != b]
    return [p for a, b in cfg.identity.links for p in ((a, b), (b, a)) if "case" not in (a, b)]


def _allowed_links(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    pairs = _link_pairs(cfg)
    table = pa.table({"kind_a": [a for a, _ in pairs], "kind_b": [b for _, b in pairs]})
    con.register("links_input", table)
    con.execute("CREATE OR REPLACE TEMP TABLE stitch_links AS SELECT DISTINCT * FROM links_input")
    con.unregister("links_input")


def shared_values(cfg: JourneyConfig) -> list[tuple[str, str]]:
    """(kind, stored value) of the configured shared identifiers, hashed like the lake."""
    salt = cfg.pii_salt()
    found: list[tuple[str, str]] = []
    for kind, values in cfg.identity.shared_identifiers.items():
        for value in values:
            stored = pii.pseudonymize(kind, value, salt, cfg.pii.default_country_code)
            if stored is not None:
                found.append((kind, stored))
    return found


def _mark_shared(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """Add partner_count and is_shared to stitch_nodes; stitch_edges = pairs of unshared nodes;
    stitch_shared (kind, value, partner_count) for the merge log."""
    con.execute(
        """
CREATE OR REPLACE TEMP TABLE stitch_nodes AS
WITH both_ways AS (
    SELECT a AS node_id, b AS partner FROM stitch_pairs UNION ALL SELECT b, a FROM stitch_pairs
),
partners AS (
    SELECT w.node_id, count(DISTINCT w.partner) AS partner_count
    FROM both_ways w JOIN stitch_nodes me ON me.node_id = w.node_id
    JOIN stitch_nodes other ON other.node_id = w.partner
    WHERE other.rank <= me.rank
    GROUP BY w.node_id
),
final AS (
    SELECT n.*, coalesce(p.partner_count, 0) AS partner_count,
        coalesce(p.partner_count, 0) > ? OR l.value IS NOT NULL AS is_shared
    FROM stitch_nodes n LEFT JOIN partners p USING (node_id)
    LEFT JOIN stitch_listed l ON l.kind = n.kind AND l.value = n.value
)
SELECT * FROM final
""",
        [cfg.identity.max_partners_per_identifier],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_edges AS SELECT p.a, p.b FROM stitch_pairs p "
        "JOIN stitch_nodes na ON na.node_id = p.a AND NOT na.is_shared "
        "JOIN stitch_nodes nb ON nb.node_id = p.b AND NOT nb.is_shared"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_shared AS "
        "SELECT kind, value, partner_count FROM stitch_nodes WHERE is_shared"
    )


def components(
    con: duckdb.DuckDBPyConnection, nodes: str, edges: str, out: str, rounds: str | None = None
) -> int:
    """`out(node_id, label)`: label = smallest node_id of the connected component.

    Min-label propagation with pointer jumping; `nodes(node_id)`, `edges(a, b)` are table
    names chosen by this module (constants). Only nodes with an edge take part (most
    identifiers, a cookie that never logged in, have none and keep their own id); labels
    start at the smallest neighbour, and each round swaps tables instead of copying them
    (docs/adr/0090-identity-stitch-speed.md). Returns the number of rounds.

    With `rounds`, also `rounds(label, rounds)`: per component with an edge, the last round
    in which one of its labels changed (0: none did). A component's labels depend only on
    its own nodes, so the returned count is min(MAX_ITERATIONS, 1 + the largest of these)
    for any set of components: the incremental stitch rebuilds it from the touched ones
    (docs/adr/0091-incremental-identity-stitch.md).
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE lp_edges AS SELECT a AS src, b AS dst FROM {edges} "
        f"UNION ALL SELECT b, a FROM {edges}"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lp_labels AS "
        "SELECT src AS node_id, least(src, min(dst)) AS label, 0 AS changed_round "
        "FROM lp_edges GROUP BY src"
    )
    for iteration in range(1, MAX_ITERATIONS + 1):
        con.execute(
            """
CREATE OR REPLACE TEMP TABLE lp_next AS
WITH neighbour AS (
    SELECT e.src AS node_id, min(l.label) AS label FROM lp_edges e JOIN lp_labels l ON l.node_id = e.dst
    GROUP BY e.src
),
hooked AS (  -- all nodes of one label move together to the smallest label next to any of them
    SELECT o.label AS node_id, min(n.label) AS label FROM lp_labels o JOIN neighbour n USING (node_id)
    GROUP BY o.label
),
stepped AS (
    SELECT o.node_id, o.label AS previous, o.changed_round, least(o.label, n.label, h.label) AS label
    FROM lp_labels o JOIN neighbour n USING (node_id) JOIN hooked h ON h.node_id = o.label
),
jumped AS (
    SELECT s.node_id, s.previous, least(s.label, t.label) AS label, s.changed_round
    FROM stepped s JOIN stepped t ON t.node_id = s.label
)
SELECT node_id, previous, label,
    CASE WHEN label <> previous THEN ? ELSE changed_round END AS changed_round
FROM jumped
""",
            [iteration],
        )
        changed = con.execute(
            "SELECT count(*) FILTER (WHERE label <> previous) FROM lp_next"
        ).fetchall()[0][0]  # type: ignore[index]
        con.execute("DROP TABLE lp_labels")
        con.execute("ALTER TABLE lp_next RENAME TO lp_labels")
        if changed == 0:
            break
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT n.node_id, coalesce(l.label, n.node_id) AS label "
        f"FROM {nodes} n LEFT JOIN lp_labels l USING (node_id)"
    )
    if rounds is not None:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {rounds} AS "
            "SELECT label, max(changed_round) AS rounds FROM lp_labels GROUP BY label"
        )
    con.execute("DROP TABLE lp_labels")
    con.execute("DROP TABLE lp_edges")
    return iteration


def _node_rounds(con: duckdb.DuckDBPyConnection) -> None:
    """stitch_node_rounds(node_id, rounds): nodes of components that needed rounds > 0,
    kept before re-splits replace stitch_labels (a customer's rounds are its component's)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_node_rounds AS SELECT l.node_id, r.rounds "
        "FROM stitch_labels l JOIN stitch_rounds r USING (label) WHERE r.rounds > 0"
    )


def _split_oversize(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> int:
    """Re-split components over the limit with links among ever more personal kinds only."""
    limit = cfg.identity.max_cluster_identifiers
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_blocked AS SELECT label, count(*) AS identifier_count "
        "FROM stitch_labels GROUP BY label HAVING count(*) > ?",
        [limit],
    )
    over_limit = int(con.execute("SELECT count(*) FROM stitch_blocked").fetchall()[0][0])  # type: ignore[index]
    for level in range(len(IDENTIFIER_COLUMNS) - 1, -1, -1):
        big = con.execute(
            "SELECT count(*) FROM (SELECT label FROM stitch_labels GROUP BY label HAVING count(*) > ?)",
            [limit],
        ).fetchall()[0][0]  # type: ignore[index]
        if big == 0:
            break
        con.execute(
            "CREATE OR REPLACE TEMP TABLE split_nodes AS SELECT node_id FROM stitch_labels WHERE label IN "
            "(SELECT label FROM stitch_labels GROUP BY label HAVING count(*) > ?)",
            [limit],
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE split_edges AS SELECT e.a, e.b FROM stitch_edges e "
            "JOIN split_nodes sa ON sa.node_id = e.a JOIN split_nodes sb ON sb.node_id = e.b "
            "JOIN stitch_nodes na ON na.node_id = e.a JOIN stitch_nodes nb ON nb.node_id = e.b "
            "WHERE na.rank < ? AND nb.rank < ?",
            [level, level],
        )
        components(con, "split_nodes", "split_edges", "split_labels")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE stitch_labels AS SELECT l.node_id, coalesce(s.label, l.label) AS label "
            "FROM stitch_labels l LEFT JOIN split_labels s USING (node_id)"
        )
    return over_limit


def _load_previous_state(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """prev_map(kind, value, customer_id) and prev_customers(customer_id, created_at)."""
    empty_map = pa.table({"kind": pa.array([], pa.string()), "value": pa.array([], pa.string()),
                          "customer_id": pa.array([], pa.string())})  # fmt: skip
    empty_customers = pa.table({"customer_id": pa.array([], pa.string()),
                                "created_at": pa.array([], pa.timestamp("us"))})  # fmt: skip
    previous, customers = empty_map, empty_customers
    if lake.state_path(cfg).exists():
        with warehouse.connection(lake.state_path(cfg), read_only=True) as state:
            tables = {
                r[0] for r in state.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            if "identity_state_map" in tables:
                previous = state.sql(
                    "SELECT kind, value, customer_id FROM identity_state_map"
                ).to_arrow_table()
                customers = state.sql(
                    "SELECT customer_id, created_at FROM identity_customers"
                ).to_arrow_table()
    for name, table in (("prev_map", previous), ("prev_customers", customers)):
        con.register("state_input", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM state_input")
        con.unregister("state_input")


def _assign_customer_ids(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """node_customer(node_id, customer_id); merges logged in stitch_merge_log. Returns merges."""
    con.execute(
        """
CREATE OR REPLACE TEMP TABLE node_claims AS
SELECT l.label, p.customer_id, count(*) AS claimed_identifiers
FROM stitch_labels l JOIN stitch_nodes n USING (node_id)
JOIN prev_map p ON p.kind = n.kind AND p.value = n.value
WHERE p.customer_id IS NOT NULL
GROUP BY ALL
"""
    )
    con.execute(
        """
CREATE OR REPLACE TEMP TABLE component_ids AS
WITH won AS (  -- an old id goes to the component holding most of its identifiers
    SELECT customer_id, arg_max(label, (claimed_identifiers, -label)) AS label FROM node_claims GROUP BY customer_id
),
aged AS (
    SELECT w.*, coalesce(c.created_at, ?) AS created_at FROM won w LEFT JOIN prev_customers c USING (customer_id)
),
kept AS (
    SELECT label, arg_min(customer_id, (created_at, customer_id)) AS customer_id FROM aged GROUP BY label
),
unclaimed AS (  -- components no old id went to (hash only those: most keep an old id)
    SELECT l.node_id, l.label FROM stitch_labels l ANTI JOIN kept k USING (label)
),
fresh AS (
    SELECT u.label, 'cus_' || left(sha256(min(n.kind || ':' || n.value)), 16) AS customer_id
    FROM unclaimed u JOIN stitch_nodes n USING (node_id) GROUP BY u.label
),
final AS (
    SELECT label, customer_id, false AS is_new FROM kept
    UNION ALL SELECT label, customer_id, true FROM fresh
)
SELECT * FROM final
""",
        [now],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE node_customer AS SELECT n.node_id, n.kind, n.value, n.partner_count, "
        "n.is_shared, n.rank, CASE WHEN n.is_shared THEN NULL ELSE c.customer_id END AS customer_id "
        "FROM stitch_nodes n LEFT JOIN stitch_labels l USING (node_id) LEFT JOIN component_ids c USING (label)"
    )
    _merge_log(con, now)
    return int(
        con.execute("SELECT count(*) FROM stitch_merge_log WHERE NOT is_blocked").fetchall()[0][0]
    )  # type: ignore[index]


def _merge_log(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    """Real merges (old id absorbed by another) with one edge that joined them; blocked links."""
    con.execute(
        """
CREATE OR REPLACE TEMP TABLE stitch_merge_log AS
WITH absorbed AS (
    SELECT DISTINCT p.customer_id AS merged_customer_id, nc.customer_id AS kept_customer_id
    FROM prev_map p JOIN node_customer nc ON nc.kind = p.kind AND nc.value = p.value
    WHERE nc.customer_id IS NOT NULL AND p.customer_id <> nc.customer_id
      AND p.customer_id NOT IN (SELECT customer_id FROM component_ids)
),
old_of AS (  -- identifiers of the absorbed customers, by their old id
    SELECT nc.node_id, p.customer_id AS old_id, nc.kind || ':' || nc.value AS identifier
    FROM node_customer nc JOIN prev_map p ON p.kind = nc.kind AND p.value = nc.value
    WHERE p.customer_id IN (SELECT merged_customer_id FROM absorbed)
),
directed AS (
    SELECT a AS src, b AS dst FROM stitch_edges UNION ALL SELECT b, a FROM stitch_edges
),
bridge AS (  -- the smallest edge leaving an absorbed customer's old identifiers
    SELECT o.old_id AS merged_customer_id, min(o.identifier || ' -- ' || n.kind || ':' || n.value) AS edge
    FROM old_of o JOIN directed d ON d.src = o.node_id JOIN stitch_nodes n ON n.node_id = d.dst
    LEFT JOIN old_of same ON same.node_id = d.dst AND same.old_id = o.old_id
    WHERE same.node_id IS NULL
    GROUP BY o.old_id
),
merged AS (
    SELECT CAST(? AS TIMESTAMP) AS merged_at, a.kept_customer_id, a.merged_customer_id,
        b.edge, false AS is_blocked, 'merge of two known customers: the older id is kept' AS reason,
        NULL::BIGINT AS identifier_count
    FROM absorbed a LEFT JOIN bridge b USING (merged_customer_id)
),
shared AS (
    SELECT CAST(? AS TIMESTAMP), NULL, NULL, kind || ':' || value, true,
        'shared identifier: seen with ' || partner_count || ' identifiers', partner_count
    FROM stitch_shared
),
limited AS (
    SELECT CAST(? AS TIMESTAMP), NULL, NULL, NULL, true,
        ?, identifier_count
    FROM stitch_blocked
)
SELECT * FROM merged UNION ALL SELECT * FROM shared UNION ALL SELECT * FROM limited
""",
        [now, now, now, LIMIT_REASON],
    )


def _write_outputs(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    columns = ", ".join(f"s.{c}" for c in LAKE_EVENT_COLUMNS)
    con.execute("BEGIN")
    con.execute(
        "CREATE OR REPLACE TABLE events AS "
        "WITH chosen AS (SELECT e.event_key, arg_min(nc.customer_id, nc.rank) AS customer_id "
        "FROM stitch_event_ids e JOIN node_customer nc USING (node_id) WHERE nc.customer_id IS NOT NULL "
        "GROUP BY e.event_key), "
        "keyed AS (SELECT k.source, k.event_id, c.customer_id FROM chosen c "
        "JOIN stitch_source k USING (event_key)) "
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


def identity_fingerprint(cfg: JourneyConfig) -> str:
    """sha256 of everything in `cfg.identity` (and the salt, through the hashed shared
    values) that decides customers; kept in the state so the incremental stitch can tell
    that the rules of the previous night are still the rules of this one."""
    rules = cfg.identity
    payload = {
        "rules_version": RULES_VERSION,
        "ranks": _kind_ranks(cfg),
        "links": sorted(set(_link_pairs(cfg))),
        "shared": sorted(shared_values(cfg)),
        "max_partners_per_identifier": rules.max_partners_per_identifier,
        "max_cluster_identifiers": rules.max_cluster_identifiers,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


_STATE_TABLES = {
    "identity_state_map": "kind VARCHAR, value VARCHAR, customer_id VARCHAR",
    "identity_customers": "customer_id VARCHAR, created_at TIMESTAMP",
    # per customer whose component needed rounds > 0: the rounds (see `components`)
    "identity_state_rounds": "customer_id VARCHAR, rounds BIGINT",
    "identity_state_settings": "fingerprint VARCHAR, saved_at TIMESTAMP",
}


def _create_state_tables(state: duckdb.DuckDBPyConnection) -> None:
    for name, columns in _STATE_TABLES.items():
        state.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")


def _save_state(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime) -> None:
    """Replace the identifier -> customer map in the lake state, in one transaction."""
    mapping = con.sql(
        "SELECT kind, value, customer_id FROM node_customer WHERE customer_id IS NOT NULL"
    ).to_arrow_table()
    fresh = con.sql("SELECT DISTINCT customer_id FROM component_ids WHERE is_new").to_arrow_table()
    rounds = con.sql(_CUSTOMER_ROUNDS_SQL).to_arrow_table()
    with lake.open_state(cfg) as state:
        _create_state_tables(state)
        state.execute("BEGIN")
        state.register("map_input", mapping)
        state.register("fresh_input", fresh)
        state.register("rounds_input", rounds)
        state.execute("DELETE FROM identity_state_map")
        state.execute("INSERT INTO identity_state_map SELECT * FROM map_input")
        state.execute("DELETE FROM identity_state_rounds")
        state.execute("INSERT INTO identity_state_rounds SELECT * FROM rounds_input")
        _save_settings_and_fresh(state, cfg, now)
        state.execute("COMMIT")


#: per customer, the rounds of its component (components that needed none are left out)
_CUSTOMER_ROUNDS_SQL = (
    "SELECT nc.customer_id, max(r.rounds) AS rounds FROM stitch_node_rounds r "
    "JOIN node_customer nc USING (node_id) WHERE nc.customer_id IS NOT NULL GROUP BY nc.customer_id"
)


def _save_settings_and_fresh(
    state: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime
) -> None:
    """New customers' creation time (from the registered `fresh_input`) and the fingerprint."""
    state.execute(
        "INSERT INTO identity_customers SELECT DISTINCT customer_id, ? FROM fresh_input "
        "WHERE customer_id NOT IN (SELECT customer_id FROM identity_customers)",
        [now],
    )
    state.execute("DELETE FROM identity_state_settings")
    state.execute(
        "INSERT INTO identity_state_settings VALUES (?, ?)", [identity_fingerprint(cfg), now]
    )


# --- the incremental night (docs/adr/0091-incremental-identity-stitch.md) --------------------

#: the previous night's tables an incremental stitch updates in place
PREVIOUS_TABLES = ("events", "identity_map", "identity_merges", "identity_quality")


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
            f"{columns} FROM stg_events s SEMI JOIN (SELECT source, source_file FROM inc_files "
            "WHERE previous_count = 0) f ON f.source = s.source AND f.source_file = s.source_file"
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


def _identifier_rows(table: str, key: str) -> str:
    """SQL: one row (key, kind, value) per identifier of `table` (constant names only)."""
    return " UNION ALL ".join(
        f"SELECT {key}, '{kind}' AS kind, {column} AS value FROM {table} WHERE {column} IS NOT NULL"
        for kind, column in IDENTIFIER_COLUMNS.items()
    )


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
    largest = con.execute(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM stitch_labels GROUP BY label)"
    ).fetchall()[0][0]  # type: ignore[index]
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
        + _identifier_rows("inc_new_events", "new_key")
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
        + _identifier_rows("inc_source", "event_key, new_key IS NULL AS is_previous")
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
        """
CREATE OR REPLACE TEMP TABLE inc_nodes AS
WITH both_ways AS (
    SELECT a AS node_id, b AS partner FROM inc_pairs UNION ALL SELECT b, a FROM inc_pairs
),
partners AS (
    SELECT w.node_id, count(DISTINCT w.partner) AS partner_count
    FROM both_ways w JOIN inc_nodes me ON me.node_id = w.node_id AND me.in_scope
    JOIN inc_nodes other ON other.node_id = w.partner
    WHERE other.rank <= me.rank
    GROUP BY w.node_id
),
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
    largest = con.execute(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM inc_previous_labels GROUP BY label)"
    ).fetchall()[0][0]  # type: ignore[index]
    if largest > cfg.identity.max_cluster_identifiers:
        return (
            f"a touched customer is part of a cluster of {largest} identifiers re-split last night"
        )
    return None


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


def _load_touched_state(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> int:
    """prev_customers for the touched customers' ids, from the lake state; returns the
    largest component rounds of the untouched customers (0 when none needed rounds)."""
    touched = con.sql("SELECT customer_id FROM inc_touched_customers").to_arrow_table()
    with warehouse.connection(lake.state_path(cfg), read_only=True) as state:
        state.register("touched_input", touched)
        customers = state.sql(
            "SELECT customer_id, created_at FROM identity_customers "
            "WHERE customer_id IN (SELECT customer_id FROM touched_input)"
        ).to_arrow_table()
        rounds = state.execute(
            "SELECT coalesce(max(rounds), 0) FROM identity_state_rounds "
            "WHERE customer_id NOT IN (SELECT customer_id FROM touched_input)"
        ).fetchall()[0][0]  # type: ignore[index]
    con.register("customers_input", customers)
    con.execute("CREATE OR REPLACE TEMP TABLE prev_customers AS SELECT * FROM customers_input")
    con.unregister("customers_input")
    return int(rounds)


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
    """In one transaction: insert the new events, move the previous ones whose customer
    changed, replace the scope's identity_map rows, rewrite identity_merges, stitch_scope."""
    columns = ", ".join(LAKE_EVENT_COLUMNS)
    con.execute("BEGIN")
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
        """
CREATE OR REPLACE TABLE stitch_scope AS
WITH moved AS (
    SELECT old_customer_id, customer_id FROM inc_event_customers
    WHERE customer_id IS DISTINCT FROM old_customer_id
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


def _save_state_increment(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime
) -> None:
    """Replace the scope's rows of the state map and rounds, in one transaction; new
    customers (and the never-used ids of shared identifiers, as `stitch` does) get `now`."""
    scope = con.sql("SELECT kind, value FROM inc_scope").to_arrow_table()
    mapping = con.sql(
        "SELECT kind, value, customer_id FROM node_customer WHERE customer_id IS NOT NULL"
    ).to_arrow_table()
    fresh = con.sql(  # a shared identifier outside the scope is its own component, no claim
        "SELECT customer_id FROM component_ids WHERE is_new UNION "
        "SELECT 'cus_' || left(sha256(h.kind || ':' || h.value), 16) FROM stitch_shared h "
        "ANTI JOIN inc_scope s ON s.kind = h.kind AND s.value = h.value"
    ).to_arrow_table()
    rounds = con.sql(_CUSTOMER_ROUNDS_SQL).to_arrow_table()
    replaced = con.sql(
        "SELECT customer_id FROM inc_touched_customers UNION "
        "SELECT customer_id FROM node_customer WHERE customer_id IS NOT NULL"
    ).to_arrow_table()
    with lake.open_state(cfg) as state:
        state.execute("BEGIN")
        for name, table in (("scope_input", scope), ("map_input", mapping),
                            ("fresh_input", fresh), ("rounds_input", rounds),
                            ("replaced_input", replaced)):  # fmt: skip
            state.register(name, table)
        state.execute(
            "DELETE FROM identity_state_map USING scope_input s "
            "WHERE identity_state_map.kind = s.kind AND identity_state_map.value = s.value"
        )
        state.execute("INSERT INTO identity_state_map SELECT * FROM map_input")
        state.execute(
            "DELETE FROM identity_state_rounds "
            "WHERE customer_id IN (SELECT customer_id FROM replaced_input)"
        )
        state.execute("INSERT INTO identity_state_rounds SELECT * FROM rounds_input")
        _save_settings_and_fresh(state, cfg, now)
        state.execute("COMMIT")


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


# --- scoring against a truth file -----------------------------------------------------------


@dataclass(frozen=True)
class StitchScore:
    """Pairwise precision/recall of stitched customers against the true customers."""

    identifiers_scored: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    #: the recall a perfect stitcher could reach from the identifiers that co-occur on events:
    #: true pairs never linked by any event (a cookie that never logged in) are out of reach.
    recall_ceiling: float


def score_stitching(
    con: duckdb.DuckDBPyConnection, truth_path: str | Path, cfg: JourneyConfig
) -> StitchScore:
    """Score `identity_map` against a truth table (identifier_kind, identifier_value, customer_id).

    `truth_path` is a Parquet file with raw identifier values (the synthetic generator's
    `truth_identifiers.parquet`); emails and phones are hashed with the same salt first.
    Pairs are over identifiers present in both: a pair is predicted when both identifiers
    have the same stitched customer, true when they have the same true customer.
    """
    import pyarrow.parquet as pq

    truth = pq.read_table(truth_path).to_pylist()
    salt, code = cfg.pii_salt(), cfg.pii.default_country_code
    rows = [(r["identifier_kind"], pii.pseudonymize(r["identifier_kind"], r["identifier_value"], salt, code),
             r["customer_id"]) for r in truth]  # fmt: skip
    table = pa.table(
        {
            "kind": [r[0] for r in rows],
            "value": [r[1] for r in rows],
            "true_id": [r[2] for r in rows],
        }
    )
    con.register("truth_input", table)
    row = con.execute(
        """
WITH joined AS (
    SELECT t.true_id, m.customer_id FROM truth_input t
    JOIN identity_map m ON m.identifier_kind = t.kind AND m.identifier_value = t.value
    WHERE m.customer_id IS NOT NULL
),
cells AS (SELECT count(*) AS n FROM joined GROUP BY true_id, customer_id),
truths AS (SELECT count(*) AS n FROM joined GROUP BY true_id),
predicted AS (SELECT count(*) AS n FROM joined GROUP BY customer_id)
SELECT (SELECT count(*) FROM joined),
    (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM truths),
    (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM predicted),
    (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM cells)
"""
    ).fetchall()[0]
    reachable = _reachable_pairs(con)
    con.unregister("truth_input")
    assert row is not None
    scored, true_pairs, predicted_pairs, correct = (int(v) for v in row)
    return StitchScore(
        scored, true_pairs, predicted_pairs, correct,
        correct / predicted_pairs if predicted_pairs else 1.0,
        correct / true_pairs if true_pairs else 1.0,
        reachable / true_pairs if true_pairs else 1.0,
    )  # fmt: skip


def _reachable_pairs(con: duckdb.DuckDBPyConnection) -> int:
    """True pairs (among identifiers in identity_map) joined by co-occurrence on events
    through identifiers of the same true customer only: what perfect stitching finds."""
    unions = " UNION ALL ".join(
        f"SELECT rowid AS event_key, '{kind}' AS kind, {column} AS value FROM events WHERE {column} IS NOT NULL"
        for kind, column in IDENTIFIER_COLUMNS.items()
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE truth_nodes AS SELECT row_number() OVER (ORDER BY t.kind, t.value) AS node_id, "
        "t.kind, t.value, t.true_id FROM (SELECT DISTINCT kind, value, true_id FROM truth_input) t "
        "JOIN identity_map m ON m.identifier_kind = t.kind AND m.identifier_value = t.value "
        "WHERE m.customer_id IS NOT NULL"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE truth_edges AS WITH ids AS ({unions}), "
        "hit AS (SELECT i.event_key, n.node_id, n.true_id FROM ids i JOIN truth_nodes n USING (kind, value)) "
        "SELECT DISTINCT a.node_id AS a, b.node_id AS b FROM hit a JOIN hit b "
        "ON a.event_key = b.event_key AND a.node_id < b.node_id AND a.true_id = b.true_id"
    )
    components(con, "truth_nodes", "truth_edges", "truth_labels")
    return int(
        con.execute(
            "SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n FROM truth_labels GROUP BY label)"
        ).fetchall()[0][0]
    )
