"""Drop-off drivers: journey features over-represented among journeys that abandoned a stage.

Input: `int_dropoff_feature_counts` (SQL: per non-final stage k and feature, journeys with
the feature that abandoned at k / moved on, out of all that abandoned / moved on; in-progress
journeys are left out). Output table `dropoff_drivers`, one row per (stage, feature):

- abandonment_rate_with / _without: abandoned / (abandoned + moved on) among journeys
  with / without the feature;
- odds_ratio: odds of abandoning with the feature over odds without it, with a Woolf 95%
  interval (0.5 added to every cell when one is 0);
- p_value: two-sided Fisher exact test of the 2x2 table;
- q_value: Benjamini-Hochberg adjusted p-value over every row of the table (all stages and
  features: one family), so hundreds of tested values do not cry wolf;
- is_driver: odds_ratio > 1 and q_value < 0.05 (over-represented among abandoners).
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import polars as pl

from cjm_analytics import stages, stats

FALSE_DISCOVERY_RATE = 0.05


def dropoff_driver_frame(counts: pl.DataFrame) -> pl.DataFrame:
    """One row per (stage, feature) of `counts` with odds ratio, interval, p and q values."""
    rows = []
    tables = []
    for row in counts.to_dicts():
        a, c = row["abandoned_with"], row["moved_on_with"]
        b, d = row["abandoned_total"] - a, row["moved_on_total"] - c
        odds_ratio, low, high = stats.odds_ratio_interval(a, b, c, d)
        tables.append((a, b, c, d))
        rows.append(
            {
                **row,
                "abandonment_rate_with": a / (a + c) if a + c else None,
                "abandonment_rate_without": b / (b + d) if b + d else None,
                "odds_ratio": odds_ratio,
                "odds_ratio_low": low,
                "odds_ratio_high": high,
            }
        )
    # every table's Fisher exact test at once (scipy's steps, the same p-values)
    p_values = stats.fisher_exact_p_values(*np.array(tables).T) if tables else np.zeros(0)
    for row, p_value in zip(rows, p_values, strict=True):
        row["p_value"] = float(p_value)
    q_values = stats.benjamini_hochberg([r["p_value"] for r in rows])
    for row, q_value in zip(rows, q_values, strict=True):
        row["q_value"] = q_value
        row["is_driver"] = row["odds_ratio"] > 1 and q_value < FALSE_DISCOVERY_RATE
    schema: dict[str, Any] = {**counts.schema, **_RESULT_SCHEMA}
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return frame.sort(["stage_order", "q_value", "odds_ratio"], descending=[False, False, True])


_RESULT_SCHEMA: dict[str, Any] = {
    "abandonment_rate_with": pl.Float64,
    "abandonment_rate_without": pl.Float64,
    "odds_ratio": pl.Float64,
    "odds_ratio_low": pl.Float64,
    "odds_ratio_high": pl.Float64,
    "p_value": pl.Float64,
    "q_value": pl.Float64,
    "is_driver": pl.Boolean,
}


def build_dropoff_drivers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Write `dropoff_drivers` from int_dropoff_feature_counts; returns the table name."""
    counts = con.sql(
        """
        SELECT counts.*, next_stage.stage AS next_stage
        FROM int_dropoff_feature_counts AS counts
        JOIN stage_definitions AS next_stage ON next_stage.stage_order = counts.stage_order + 1
        ORDER BY counts.stage_order, counts.feature_kind, counts.feature_value
        """
    ).pl()
    stages.write_table(con, "dropoff_drivers", dropoff_driver_frame(counts))
    return ["dropoff_drivers"]
