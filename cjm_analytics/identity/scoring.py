"""Stitched customers scored against a truth file: pairwise precision, recall and the
recall a perfect stitcher could reach."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from cjm_analytics import pii
from cjm_analytics.config import JourneyConfig
from cjm_analytics.identity.graph import components
from cjm_analytics.schema import IDENTIFIER_COLUMNS


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
