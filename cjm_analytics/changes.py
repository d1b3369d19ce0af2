"""What changed since the previous night: stage conversion beyond noise, the split of the
overall conversion change into traffic mix and rate, and the alert rules of journey.yaml.

Definitions (also in docs/warehouse.md):

- A stage's change is beyond noise when a two-proportion z-test of its conversion tonight
  against the previous succeeded night gives p < 0.05 (pooled standard error). Nights share
  most journeys, so this is a screen for what to look at, not a formal test.
- Overall conversion is converted journeys / journeys. Its change between two nights splits
  exactly, per segment (each configured segment column separately), into
  mix = sum_s (w1_s - w0_s) * (r0_s + r1_s) / 2 and rate = sum_s (w0_s + w1_s) / 2 * (r1_s - r0_s),
  where w is the segment value's share of journeys and r its conversion (the symmetric
  shift-share, Oaxaca-style decomposition; mix + rate = change). A value seen on one night
  only keeps the other night's rate, so its whole effect is mix.
- Alerts: `constraint_moved` (tonight's constraint transition differs from the previous
  night's), `stage_drop` (a stage's conversion fell beyond noise, optionally only `stage`
  and only by at least `threshold`), `rejects_rate` (rejected / read rows of tonight's
  ingest above `threshold`, default 0.05).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import duckdb
import polars as pl

from cjm_analytics.config import AlertRule

log = logging.getLogger(__name__)
#: Significance level of the nightly "beyond noise" screen.
ALPHA = 0.05
DEFAULT_REJECTS_THRESHOLD = 0.05


@dataclass(frozen=True)
class Alert:
    """One alert rule that fired tonight."""

    kind: str
    message: str
    stage: str | None = None
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class ChangesSummary:
    """What `build_changes` found: the tables it wrote, as frames, and the alerts."""

    previous_run_id: str | None
    stage_changes: pl.DataFrame
    decomposition: pl.DataFrame
    alerts: list[Alert]


def two_proportion_p_value(x1: int, n1: int, x0: int, n0: int) -> tuple[float | None, float | None]:
    """(z, two-sided p) of x1/n1 against x0/n0 with a pooled standard error; None if undefined."""
    if n1 <= 0 or n0 <= 0:
        return None, None
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return None, None
    z = (x1 / n1 - x0 / n0) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def previous_run_id(history: pl.DataFrame, run_id: str) -> str | None:
    """The latest run in a history frame before `run_id` (run ids sort by start time)."""
    earlier = history.filter(pl.col("run_id") < run_id)["run_id"].unique().sort()
    return earlier[-1] if len(earlier) else None


def stage_changes(stage_history: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """One row per stage of tonight: conversion now and the previous night, z, p, beyond noise."""
    prev_id = previous_run_id(stage_history, run_id)
    now = stage_history.filter(pl.col("run_id") == run_id)
    before = stage_history.filter(pl.col("run_id") == (prev_id or "")).select(
        "stage",
        pl.col("reached_count").alias("previous_reached_count"),
        pl.col("converted_count").alias("previous_converted_count"),
        pl.col("conversion_rate").alias("previous_conversion_rate"),
    )
    joined = now.join(before, on="stage", how="left").sort("stage_order")
    rows = []
    for row in joined.iter_rows(named=True):
        z = p = None
        if row["previous_reached_count"] is not None and row["conversion_rate"] is not None:
            z, p = two_proportion_p_value(
                row["converted_count"],
                row["reached_count"],
                row["previous_converted_count"],
                row["previous_reached_count"],
            )
        change = (
            row["conversion_rate"] - row["previous_conversion_rate"]
            if row["conversion_rate"] is not None and row["previous_conversion_rate"] is not None
            else None
        )
        rows.append(
            {
                "run_id": run_id,
                "previous_run_id": prev_id,
                "stage": row["stage"],
                "stage_order": row["stage_order"],
                "reached_count": row["reached_count"],
                "conversion_rate": row["conversion_rate"],
                "previous_reached_count": row["previous_reached_count"],
                "previous_conversion_rate": row["previous_conversion_rate"],
                "conversion_change": change,
                "z_score": z,
                "p_value": p,
                "is_beyond_noise": p is not None and p < ALPHA,
            }
        )
    return pl.DataFrame(rows, schema=STAGE_CHANGE_SCHEMA)


STAGE_CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "previous_run_id": pl.String(),
    "stage": pl.String(),
    "stage_order": pl.Int32(),
    "reached_count": pl.Int64(),
    "conversion_rate": pl.Float64(),
    "previous_reached_count": pl.Int64(),
    "previous_conversion_rate": pl.Float64(),
    "conversion_change": pl.Float64(),
    "z_score": pl.Float64(),
    "p_value": pl.Float64(),
    "is_beyond_noise": pl.Boolean(),
}


def _night_shares(segment_history: pl.DataFrame, run_id: str | None, suffix: str) -> pl.DataFrame:
    night = segment_history.filter(pl.col("run_id") == (run_id or ""))
    return night.with_columns(
        (pl.col("journey_count") / pl.col("journey_count").sum().over("segment")).alias(
            f"journey_share{suffix}"
        ),
        (pl.col("converted_count") / pl.col("journey_count")).alias(f"conversion_rate{suffix}"),
    ).select("segment", "segment_value", f"journey_share{suffix}", f"conversion_rate{suffix}")


def decompose_conversion(segment_history: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """One row per segment and value: its mix and rate effect on the overall conversion change.

    Summed over the values of one segment, mix_effect + rate_effect equals the change in
    overall conversion between the previous night and tonight.
    """
    prev_id = previous_run_id(segment_history, run_id)
    now = _night_shares(segment_history, run_id, "")
    before = _night_shares(segment_history, prev_id, "_previous")
    both = now.join(before, on=["segment", "segment_value"], how="full", coalesce=True)
    w1, w0 = pl.col("journey_share").fill_null(0.0), pl.col("journey_share_previous").fill_null(0.0)
    r1 = pl.col("conversion_rate").fill_null(pl.col("conversion_rate_previous"))
    r0 = pl.col("conversion_rate_previous").fill_null(pl.col("conversion_rate"))
    return (
        both.with_columns(
            pl.lit(run_id).alias("run_id"),
            pl.lit(prev_id, dtype=pl.String()).alias("previous_run_id"),
            ((w1 - w0) * (r0 + r1) / 2).alias("mix_effect"),
            ((w0 + w1) / 2 * (r1 - r0)).alias("rate_effect"),
        )
        .filter(pl.col("previous_run_id").is_not_null())
        .select(
            "run_id",
            "previous_run_id",
            "segment",
            "segment_value",
            pl.col("journey_share_previous").alias("previous_journey_share"),
            "journey_share",
            pl.col("conversion_rate_previous").alias("previous_conversion_rate"),
            "conversion_rate",
            "mix_effect",
            "rate_effect",
        )
        .sort("segment", "segment_value")
    )


def decomposition_totals(decomposition: pl.DataFrame) -> pl.DataFrame:
    """One row per segment: mix, rate and total change of the overall conversion."""
    return (
        decomposition.group_by("segment")
        .agg(pl.col("mix_effect").sum(), pl.col("rate_effect").sum())
        .with_columns((pl.col("mix_effect") + pl.col("rate_effect")).alias("conversion_change"))
        .sort("segment")
    )


def evaluate_alerts(
    rules: list[AlertRule],
    changes: pl.DataFrame,
    constraint: str | None,
    previous_constraint: str | None,
    rows_read: int | None,
    rows_rejected: int | None,
) -> list[Alert]:
    """The alerts that fire tonight, in rule order."""
    alerts: list[Alert] = []
    for rule in rules:
        if rule.kind == "constraint_moved":
            if previous_constraint and constraint and constraint != previous_constraint:
                alerts.append(
                    Alert(
                        "constraint_moved",
                        f"the constraint moved from {previous_constraint} to {constraint}",
                    )
                )
        elif rule.kind == "stage_drop":
            alerts.extend(_stage_drops(rule, changes))
        elif rule.kind == "rejects_rate" and rows_read:
            rate = (rows_rejected or 0) / rows_read
            limit = rule.threshold if rule.threshold is not None else DEFAULT_REJECTS_THRESHOLD
            if rate > limit:
                alerts.append(
                    Alert(
                        "rejects_rate",
                        f"{rate:.1%} of tonight's rows were rejected (limit {limit:.1%})",
                        value=rate,
                        threshold=limit,
                    )
                )
    return alerts


def _stage_drops(rule: AlertRule, changes: pl.DataFrame) -> list[Alert]:
    drops = changes.filter(pl.col("is_beyond_noise") & (pl.col("conversion_change") < 0))
    if rule.stage:
        drops = drops.filter(pl.col("stage") == rule.stage)
    if rule.threshold is not None:
        drops = drops.filter(-pl.col("conversion_change") >= rule.threshold)
    return [
        Alert(
            "stage_drop",
            f"conversion at {r['stage']} fell from {r['previous_conversion_rate']:.1%} to "
            f"{r['conversion_rate']:.1%} (p = {r['p_value']:.3g})",
            stage=r["stage"],
            value=r["conversion_change"],
            threshold=rule.threshold,
        )
        for r in drops.iter_rows(named=True)
    ]


ALERT_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "kind": pl.String(),
    "stage": pl.String(),
    "message": pl.String(),
    "value": pl.Float64(),
    "threshold": pl.Float64(),
}


def alerts_frame(run_id: str, alerts: list[Alert]) -> pl.DataFrame:
    """One row per alert that fired tonight."""
    return pl.DataFrame([{"run_id": run_id, **asdict(a)} for a in alerts], schema=ALERT_SCHEMA)


def build_changes(
    con: duckdb.DuckDBPyConnection,
    rules: list[AlertRule],
    run_id: str,
    constraint: str | None,
    previous_constraint: str | None,
    rows_read: int | None = None,
    rows_rejected: int | None = None,
) -> ChangesSummary:
    """Write `stage_changes`, `conversion_decomposition` and `alerts`; log each alert."""
    history = con.sql("FROM stage_history").pl()
    stage_frame = stage_changes(history, run_id)
    decomposition = decompose_conversion(con.sql("FROM segment_history").pl(), run_id)
    alerts = evaluate_alerts(
        rules, stage_frame, constraint, previous_constraint, rows_read, rows_rejected
    )
    tables = {
        "stage_changes": stage_frame,
        "conversion_decomposition": decomposition,
        "alerts": alerts_frame(run_id, alerts),
    }
    for name, frame in tables.items():
        con.register("_frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _frame")
        con.unregister("_frame")
    for alert in alerts:
        log.warning("alert %s: %s", alert.kind, alert.message)
    return ChangesSummary(previous_run_id(history, run_id), stage_frame, decomposition, alerts)
