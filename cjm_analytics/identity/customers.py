"""Customer ids of components: a component keeps the ids of its known identifiers (the
oldest wins a merge), a new one gets a hash of its smallest identifier; the merge log."""

from __future__ import annotations

from datetime import datetime

import duckdb

#: `identity_merges.reason` of a component re-split for its size
LIMIT_REASON = "cluster over max_cluster_identifiers: re-split"


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
