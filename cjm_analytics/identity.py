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
"""

from __future__ import annotations

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


def stitch(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime | None = None
) -> StitchSummary:
    """stg_events -> events, identity_map, identity_merges, identity_quality; state updated."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    _identifier_tables(con, cfg)
    _mark_shared(con, cfg)
    iterations = components(con, "stitch_nodes", "stitch_edges", "stitch_labels")
    over_limit = _split_oversize(con, cfg)
    _load_previous_state(con, cfg)
    merges = _assign_customer_ids(con, now)
    _write_outputs(con, now)
    summary = _quality(con, cfg, iterations, over_limit, merges)
    _save_state(con, cfg, now)
    return summary


def _identifier_tables(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """stitch_event_ids (event_key, node_id, kind, rank), stitch_nodes, stitch_pairs."""
    precedence = list(dict.fromkeys([*cfg.identity.precedence, *IDENTIFIER_COLUMNS]))
    kinds = pa.table(
        {
            "kind": list(IDENTIFIER_COLUMNS),
            "rank": [precedence.index(k) for k in IDENTIFIER_COLUMNS],
        }
    )
    con.register("kinds_input", kinds)
    con.execute("CREATE OR REPLACE TEMP TABLE stitch_kinds AS SELECT * FROM kinds_input")
    con.unregister("kinds_input")
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
    _allowed_links(con, cfg)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_pairs AS "
        "SELECT DISTINCT a.node_id AS a, b.node_id AS b FROM stitch_event_ids a "
        "JOIN stitch_event_ids b ON a.event_key = b.event_key AND a.node_id < b.node_id "
        "JOIN stitch_links l ON l.kind_a = a.kind AND l.kind_b = b.kind"
    )


def _allowed_links(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    kinds = [k for k in IDENTIFIER_COLUMNS if k != "case"]
    if cfg.identity.links is None:
        pairs = [(a, b) for a in kinds for b in kinds if a != b]
    else:
        pairs = [p for a, b in cfg.identity.links for p in ((a, b), (b, a)) if "case" not in (a, b)]
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
    """Add partner_count and is_shared to stitch_nodes; stitch_edges = pairs of unshared nodes."""
    listed = shared_values(cfg)
    con.register(
        "listed_input", pa.table({"kind": [k for k, _ in listed], "value": [v for _, v in listed]})
    )
    con.execute("CREATE OR REPLACE TEMP TABLE stitch_listed AS SELECT * FROM listed_input")
    con.unregister("listed_input")
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


def components(con: duckdb.DuckDBPyConnection, nodes: str, edges: str, out: str) -> int:
    """`out(node_id, label)`: label = smallest node_id of the connected component.

    Min-label propagation with pointer jumping; `nodes(node_id)`, `edges(a, b)` are table
    names chosen by this module (constants). Only nodes with an edge take part (most
    identifiers, a cookie that never logged in, have none and keep their own id); labels
    start at the smallest neighbour, and each round swaps tables instead of copying them
    (docs/adr/0090-identity-stitch-speed.md). Returns the number of rounds.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE lp_edges AS SELECT a AS src, b AS dst FROM {edges} "
        f"UNION ALL SELECT b, a FROM {edges}"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lp_labels AS "
        "SELECT src AS node_id, least(src, min(dst)) AS label FROM lp_edges GROUP BY src"
    )
    for iteration in range(1, MAX_ITERATIONS + 1):  # noqa: B007 (returned)
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
    SELECT o.node_id, o.label AS previous, least(o.label, n.label, h.label) AS label
    FROM lp_labels o JOIN neighbour n USING (node_id) JOIN hooked h ON h.node_id = o.label
),
jumped AS (
    SELECT s.node_id, s.previous, least(s.label, t.label) AS label
    FROM stepped s JOIN stepped t ON t.node_id = s.label
)
SELECT * FROM jumped
"""
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
    con.execute("DROP TABLE lp_labels")
    con.execute("DROP TABLE lp_edges")
    return iteration


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
fresh AS (
    SELECT l.label, 'cus_' || left(sha256(min(n.kind || ':' || n.value)), 16) AS customer_id
    FROM stitch_labels l JOIN stitch_nodes n USING (node_id) GROUP BY l.label
),
final AS (
    SELECT f.label, coalesce(k.customer_id, f.customer_id) AS customer_id, k.customer_id IS NULL AS is_new
    FROM fresh f LEFT JOIN kept k USING (label)
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
    FROM stitch_nodes WHERE is_shared
),
limited AS (
    SELECT CAST(? AS TIMESTAMP), NULL, NULL, NULL, true,
        'cluster over max_cluster_identifiers: re-split', identifier_count
    FROM stitch_blocked
)
SELECT * FROM merged UNION ALL SELECT * FROM shared UNION ALL SELECT * FROM limited
""",
        [now, now, now],
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
    metrics = {k: float(v) for k, v in summary.__dict__.items()}
    sizes = con.execute(
        "SELECT quantile_cont(n, [0.5, 0.9, 0.99]) FROM (SELECT count(*) AS n FROM node_customer "
        "WHERE customer_id IS NOT NULL GROUP BY customer_id)"
    ).fetchall()[0][0]  # type: ignore[index]
    for name, value in zip(("cluster_identifiers_p50", "cluster_identifiers_p90", "cluster_identifiers_p99"),
                           sizes or [0, 0, 0], strict=True):  # fmt: skip
        metrics[name] = float(value)
    con.register(
        "metrics_input", pa.table({"metric": list(metrics), "value": list(metrics.values())})
    )
    con.execute("CREATE OR REPLACE TABLE identity_quality AS SELECT * FROM metrics_input")
    con.unregister("metrics_input")
    return summary


def _save_state(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime) -> None:
    """Replace the identifier -> customer map in the lake state, in one transaction."""
    mapping = con.sql(
        "SELECT kind, value, customer_id FROM node_customer WHERE customer_id IS NOT NULL"
    ).to_arrow_table()
    fresh = con.sql("SELECT DISTINCT customer_id FROM component_ids WHERE is_new").to_arrow_table()
    with lake.open_state(cfg) as state:
        state.execute(
            "CREATE TABLE IF NOT EXISTS identity_state_map (kind VARCHAR, value VARCHAR, customer_id VARCHAR)"
        )
        state.execute(
            "CREATE TABLE IF NOT EXISTS identity_customers (customer_id VARCHAR, created_at TIMESTAMP)"
        )
        state.execute("BEGIN")
        state.register("map_input", mapping)
        state.register("fresh_input", fresh)
        state.execute("DELETE FROM identity_state_map")
        state.execute("INSERT INTO identity_state_map SELECT * FROM map_input")
        state.execute(
            "INSERT INTO identity_customers SELECT customer_id, ? FROM fresh_input "
            "WHERE customer_id NOT IN (SELECT customer_id FROM identity_customers)",
            [now],
        )
        state.execute("COMMIT")


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
