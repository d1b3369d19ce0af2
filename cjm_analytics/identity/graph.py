"""Connected components of the identifier graph: label propagation with pointer jumping,
the rounds each component needed, and re-splits of components over the size limit."""

from __future__ import annotations

import duckdb

from cjm_analytics.config import JourneyConfig
from cjm_analytics.schema import IDENTIFIER_COLUMNS

MAX_ITERATIONS = 200


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
