"""The identifier graph of one stitch: identifier kinds and their ranks, the kinds that
link, the configured shared identifiers, nodes and pairs from the events, shared marks."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from cjm_analytics import pii
from cjm_analytics.config import JourneyConfig
from cjm_analytics.schema import IDENTIFIER_COLUMNS


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


def identifier_rows(table: str, key: str) -> str:
    """SQL: one row (key, kind, value) per identifier of `table` (constant names only)."""
    return " UNION ALL ".join(
        f"SELECT {key}, '{kind}' AS kind, {column} AS value FROM {table} WHERE {column} IS NOT NULL"
        for kind, column in IDENTIFIER_COLUMNS.items()
    )


def _identifier_tables(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """stitch_event_ids (event_key, node_id, kind, rank), stitch_nodes, stitch_pairs."""
    _kind_tables(con, cfg)
    # stg_events is a view over the lake's Parquet (ADR 0090): it has no rowid, so the events
    # are copied once, narrow, and an event's key is its rowid in that copy; it maps back by
    # (source, event_id). Numbering them with row_number() OVER () read the lake on one
    # thread (10M: 6.8 s against 4.3 s, ADR 0125)
    identifiers = ", ".join(dict.fromkeys(IDENTIFIER_COLUMNS.values()))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_source AS "
        f"SELECT source, event_id, {identifiers} FROM stg_events"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_raw AS "
        + identifier_rows("stitch_source", "rowid AS event_key")
    )
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


def partners_ctes(nodes: str, pairs: str, me_filter: str = "") -> str:
    """The `both_ways` and `partners` CTEs: per node of `nodes` (node_id, rank), how many
    distinct nodes it is paired with in `pairs` (a, b) that are of its own kind rank or a
    more identifying one. `me_filter` restricts the counted nodes (e.g. " AND me.in_scope").
    Shared by the full stitch and the incremental one, so both count alike. The names are
    this package's own temp tables, never config values."""
    return f"""both_ways AS (
    SELECT a AS node_id, b AS partner FROM {pairs} UNION ALL SELECT b, a FROM {pairs}
),
partners AS (
    SELECT w.node_id, count(DISTINCT w.partner) AS partner_count
    FROM both_ways w JOIN {nodes} me ON me.node_id = w.node_id{me_filter}
    JOIN {nodes} other ON other.node_id = w.partner
    WHERE other.rank <= me.rank
    GROUP BY w.node_id
)"""


def _mark_shared(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """Add partner_count and is_shared to stitch_nodes; stitch_edges = pairs of unshared nodes;
    stitch_shared (kind, value, partner_count) for the merge log."""
    con.execute(
        f"""
CREATE OR REPLACE TEMP TABLE stitch_nodes AS
WITH {partners_ctes("stitch_nodes", "stitch_pairs")},
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
