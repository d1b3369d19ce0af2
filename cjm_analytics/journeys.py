"""Journeys and the stage funnel: the build entry point of the stage area and its summaries.

`build_journey_models(con, cfg, as_of)` turns the warehouse table `events` into
`touchpoints`, `journeys`, the stage funnel marts, the emotion line, the pain points, the
drop-off drivers and the constraint stage. Definitions (DESIGN.md; each SQL file repeats
the ones it computes):

- journey: a customer's touchpoints between two gaps of inactivity longer than
  `timeouts.journey_inactivity_days`.
- reached(k): furthest mode (default) = journeys whose furthest stage is at or beyond k;
  ordered mode (`funnel.mode: ordered`) = journeys that touched stages 1..k in order: stage
  k+1 counts only at a touchpoint after the one where the journey entered stage k (the
  earliest such touchpoint, a greedy chain; it reproduces the real logs' `ordered_cases`).
- converted(k) = reached(k+1), the journeys that moved on; conversion_rate(k) =
  reached(k+1) / reached(k) with a Wilson score 95% interval.
- abandoned(k): journeys that stopped at k (a non-final stage) and whose last touchpoint
  is older than `timeouts.abandonment_days` at `as_of`; in_progress(k): stopped at k and
  recent. reached = converted + abandoned + in progress at every non-final stage.
  At the success stage and after it, "abandoned" means "went no further" (ADR 0021);
  the journey's own status stays converted.
- journey status as of `as_of`: converted (reached the success stage), abandoned (stale
  and not converted), in_progress otherwise.
- time to next stage: entering k to entering k+1, Kaplan-Meier median and p90 with
  in-progress journeys censored at as_of and abandoned ones not at risk (ADR 0022).
- observed entry: the touchpoint that entered k maps to k itself (always so in ordered
  mode). The constraint's benchmarks and the drop-off drivers use observed entries and
  segment values as known at entry, so nothing is judged by what came after (ADR 0023/0024).

Tables (grain): touchpoints (event of a known customer), journeys (journey), stage_funnel
(stage), stage_funnel_by_segment (dimension, value, stage), stage_sentiment (stage),
abandonment_last_touchpoints (stage, source, event), unmapped_events (source, event),
dropoff_drivers (stage, feature), stage_what_if (transition), constraint_stage (finding);
helpers int_* and the config tables stage_definitions, stage_rules, stage_rule_conditions,
segment_dimensions, emotion_event_kinds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cjm_analytics import stages, warehouse
from cjm_analytics.config import JourneyConfig
from cjm_analytics.errors import ConfigError, WarehouseError

SECONDS_PER_DAY = 86_400
#: Segment dimensions a journey.yaml `segments:` entry may name (columns of `journeys`).
SEGMENT_DIMENSIONS: tuple[str, ...] = (
    "first_touch_channel",
    "first_touch_source",
    "device",
    "region",
    "customer_type",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)
#: Dimensions every build adds: channels used (overlapping groups) and cohort week.
ALWAYS_DIMENSIONS: tuple[str, ...] = ("channel", "cohort_week")
#: The SQL models of this area, by table name (run in dependency order).
SQL_MODELS: tuple[str, ...] = (
    "int_stage_rule_matches",
    "int_touchpoint_sequence",
    "touchpoints",
    "int_journey_stage_entries",
    "journeys",
    "int_journey_stage_facts",
    "int_journey_segments",
    "int_stage_time_to_next",
    "int_segment_journey_counts",
    "int_stage_group_counts",
    "int_stage_group_metrics",
    "stage_funnel",
    "stage_funnel_by_segment",
    "stage_sentiment",
    "int_stage_last_touch_counts",
    "abandonment_last_touchpoints",
    "unmapped_events",
    "int_stage_entry_segments",
    "int_stage_entry_segment_counts",
    "int_stage_benchmark_segments",
    "int_journey_touch_features",
    "int_stage_feature_counts",
    "int_dropoff_feature_counts",
)


@dataclass(frozen=True)
class JourneyBuildSummary:
    """What one build produced: counts a person checks first, and the tables written."""

    as_of: datetime
    counting_mode: str
    event_count: int
    events_without_customer_count: int
    touchpoint_count: int
    unmapped_touchpoint_count: int
    touchpoints_after_as_of_count: int
    journey_count: int
    journeys_without_stage_count: int
    status_counts: dict[str, int]
    constraint_transition: str | None
    tables: list[str] = field(default_factory=list)

    @property
    def unmapped_rate(self) -> float:
        """Share of touchpoints that no stage rule maps (0 when there are none)."""
        return (
            self.unmapped_touchpoint_count / self.touchpoint_count if self.touchpoint_count else 0.0
        )


def build_journey_models(
    con: duckdb.DuckDBPyConnection,
    cfg: JourneyConfig,
    as_of: datetime,
    previous: Path | None = None,
) -> JourneyBuildSummary:
    """Build touchpoints, journeys and every stage mart from `events` as of `as_of` (UTC).

    With `previous` (the published warehouse), per-customer models are recomputed only for
    `night_changed_customers` and carried forward for the others (cjm_analytics.incremental)."""
    _require_events(con)
    as_of_utc = to_utc_naive(as_of)
    stages.load_stage_tables(con, cfg)
    load_setting_tables(con, cfg)
    warehouse.set_variables(con, model_variables(cfg, as_of_utc))
    from cjm_analytics import constraint, drivers, incremental

    built = incremental.run_models(con, journey_models(), previous)

    built += drivers.build_dropoff_drivers(con)
    built += constraint.build_constraint_tables(con, cfg)
    return _summary(con, cfg, as_of_utc, built)


#: Rows per statement when `touchpoints` is written in ranges of customers (ADR 0126).
CUSTOMER_RANGE_ROWS = 5_000_000


def materialize_touchpoints(con: duckdb.DuckDBPyConnection, model: warehouse.Model) -> None:
    """`touchpoints` in ranges of customers, each range one statement appended in order
    (ADR 0126): the table and its order (customer_id, then each customer's order) are the
    model's, but each statement's hash join and sort hold 1/k of the rows, which at 10M
    and a 3GB memory limit no longer spill. Up to CUSTOMER_RANGE_ROWS rows: one statement.
    In the caller's transaction."""
    rows = int(_scalar(con, "SELECT count(*) FROM int_touchpoint_sequence") or 0)
    parts = -(-rows // CUSTOMER_RANGE_ROWS)
    cuts: list[str] = []
    if parts > 1:
        # the customers that cut the rows into `parts` equal ranges (a cut starts a range)
        found = _scalar(
            con,
            "SELECT quantile_disc(customer_id, [i / $parts for i in range(1, $parts)]) "
            "FROM int_touchpoint_sequence",
            {"parts": parts},
        )
        cuts = sorted(set(found or []))
    table = warehouse.quote_identifier(model.name)
    tests = {"low": "customer_id >= $low", "high": "customer_id < $high"}
    for index in range(len(cuts) + 1):
        ends = {
            "low": cuts[index - 1] if index > 0 else None,
            "high": cuts[index] if index < len(cuts) else None,
        }
        bound = {name: value for name, value in ends.items() if value is not None}
        where = " AND ".join(tests[name] for name in bound)
        select = f"SELECT * FROM ({model.sql}) WHERE {where}" if where else model.sql
        statement = f"INSERT INTO {table} " if index else f"CREATE OR REPLACE TABLE {table} AS "
        con.execute(statement + select, bound or None)


def materialize_time_to_next(con: duckdb.DuckDBPyConnection, model: warehouse.Model) -> None:
    """`int_stage_time_to_next` from the rows its SQL returns (the facts at risk in order,
    and the segment groups' names): Kaplan-Meier quantiles per group and stage by
    `stats.kaplan_meier_groups` (ADR 0121). In the caller's transaction."""
    import numpy as np
    import pyarrow as pa

    from cjm_analytics import stats

    rows = con.sql(model.sql).to_arrow_table()
    # the facts first, then the groups (the SQL's order): slices, not copies
    fact_count = rows["group_id"].null_count
    facts, groups = rows.slice(0, fact_count), rows.slice(fact_count)
    lists = facts["group_ids"].combine_chunks()
    if groups["group_id"].null_count or lists.null_count:
        raise WarehouseError(f"{model.name}: its SQL must return the facts, then the groups")
    found = stats.kaplan_meier_groups(
        facts["stage_order"].to_numpy(),
        facts["duration_seconds"].to_numpy(),
        facts["is_km_event"].to_numpy(zero_copy_only=False),
        lists.offsets.to_numpy(),
        lists.values.to_numpy(),
    )
    names = dict(
        zip(
            groups["group_id"].to_pylist(),
            zip(groups["dimension"].to_pylist(), groups["segment_value"].to_pylist(), strict=True),
            strict=True,
        )
    )
    named = [names[int(g)] for g in found.group_id]
    table = pa.table(
        {
            "dimension": pa.array([n[0] for n in named], pa.string()),
            "segment_value": pa.array([n[1] for n in named], pa.string()),
            "stage_order": pa.array(found.stage_order, pa.int32()),
            "time_to_next_median_seconds": pa.array(found.quantiles[0.5], from_pandas=True),
            "time_to_next_p90_seconds": pa.array(found.quantiles[0.9], from_pandas=True),
            "time_to_next_observed_count": pa.array(found.observed_count.astype(np.int64)),
            "time_to_next_censored_count": pa.array(found.censored_count.astype(np.int64)),
        }
    )
    con.register("km_quantiles", table)
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{model.name}" AS SELECT * FROM km_quantiles')
    finally:
        con.unregister("km_quantiles")


def to_utc_naive(moment: datetime) -> datetime:
    """A timezone-aware moment as naive UTC; a naive one is taken to be UTC already."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def model_variables(cfg: JourneyConfig, as_of: datetime) -> dict[str, Any]:
    """The SQL variables the models read with getvariable()."""
    return {
        "as_of": as_of,
        "journey_inactivity_seconds": cfg.timeouts.journey_inactivity_days * SECONDS_PER_DAY,
        "abandonment_seconds": cfg.timeouts.abandonment_days * SECONDS_PER_DAY,
        "funnel_mode": cfg.funnel.mode,
        "dropoff_min_journeys": cfg.funnel.dropoff_min_journeys,
    }


def segment_dimensions(cfg: JourneyConfig) -> list[str]:
    """The configured segment dimensions plus channel and cohort week; ConfigError if unknown."""
    unknown = [name for name in cfg.segments if name not in SEGMENT_DIMENSIONS + ALWAYS_DIMENSIONS]
    if unknown:
        raise ConfigError(
            f"segments: unknown dimension(s) {unknown}; allowed: "
            f"{', '.join(SEGMENT_DIMENSIONS + ALWAYS_DIMENSIONS)}"
        )
    return list(dict.fromkeys([*cfg.segments, *ALWAYS_DIMENSIONS]))


def load_setting_tables(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """Write segment_dimensions and emotion_event_kinds (config values as data)."""
    stages.write_table(
        con,
        "segment_dimensions",
        pl.DataFrame({"dimension": segment_dimensions(cfg)}, schema={"dimension": pl.String}),
    )
    emotion = cfg.emotion
    kinds = (
        [("call", name) for name in emotion.call_events]
        + [("failed_call", name) for name in emotion.failed_call_events]
        + [("negative_outcome", value) for value in emotion.negative_outcomes]
    )
    stages.write_table(
        con,
        "emotion_event_kinds",
        pl.DataFrame(kinds, schema={"kind": pl.String, "value": pl.String}, orient="row"),
    )


@functools.cache
def journey_models() -> list[warehouse.Model]:
    """This area's sql/ models in dependency order (others' models are not run)."""
    mine = set(SQL_MODELS)
    models = [model for model in warehouse.discover_models() if model.name in mine]
    missing = mine - {model.name for model in models}
    if missing:
        raise WarehouseError(f"sql models missing from {warehouse.SQL_DIR}: {sorted(missing)}")
    return models


def _require_events(con: duckdb.DuckDBPyConnection) -> None:
    found = _scalar(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'events'"
    )
    if not found:
        raise WarehouseError(
            "table `events` not found: run ingest and identity stitching first "
            "(build_journey_models reads the stitched events)"
        )


def _scalar(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | dict[str, Any] | None = None
) -> Any:
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def _summary(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, as_of: datetime, built: list[str]
) -> JourneyBuildSummary:
    statuses = dict(con.execute("SELECT status, count(*) FROM journeys GROUP BY status").fetchall())
    constraint = (
        _scalar(con, "SELECT transition FROM constraint_stage WHERE finding = 'constraint'")
        if "constraint_stage" in built
        else None
    )
    return JourneyBuildSummary(
        as_of=as_of,
        counting_mode=cfg.funnel.mode,
        event_count=_scalar(con, "SELECT count(*) FROM events"),
        events_without_customer_count=_scalar(
            con, "SELECT count(*) FROM events WHERE customer_id IS NULL"
        ),
        touchpoint_count=_scalar(con, "SELECT count(*) FROM touchpoints"),
        unmapped_touchpoint_count=_scalar(
            con, "SELECT count(*) FROM touchpoints WHERE stage IS NULL"
        ),
        touchpoints_after_as_of_count=_scalar(
            con, "SELECT count(*) FROM touchpoints WHERE event_at > ?", [as_of]
        ),
        journey_count=_scalar(con, "SELECT count(*) FROM journeys"),
        journeys_without_stage_count=_scalar(
            con, "SELECT count(*) FROM journeys WHERE reached_stage_order IS NULL"
        ),
        status_counts={str(k): int(v) for k, v in statuses.items()},
        constraint_transition=constraint,
        tables=built,
    )


def funnel_summary(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per stage: the stage funnel columns a person reads first (from stage_funnel)."""
    return con.sql(
        """
        SELECT stage, reached_count, converted_count, abandoned_count, in_progress_count,
               conversion_rate, conversion_rate_low, conversion_rate_high, abandonment_rate,
               time_to_next_median_seconds, time_to_next_p90_seconds
        FROM stage_funnel ORDER BY stage_order
        """
    ).pl()


def constraint_summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The constraint and the other findings, by finding name (from constraint_stage)."""
    frame = con.sql("SELECT * FROM constraint_stage ORDER BY finding").pl()
    return {row["finding"]: row for row in frame.to_dicts()}
