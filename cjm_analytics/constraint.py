"""The constraint stage and its what-if, computed in Python on the (small) funnel aggregates.

`stage_what_if`: one row per transition k -> k+1 (k a non-final stage):

- current rate r_k = conversion_rate(k) of all journeys, with its Wilson 95% interval;
- like-for-like basis: the benchmark compares rates among journeys whose entry to k was
  observed (a touchpoint of stage k itself, `observed_conversion_rate`, ADR 0023): in
  furthest mode a journey first seen at a later stage "passes" k by definition, and a
  segment made of such journeys (crm-first contacts, unknown device) would look like a
  perfect converter; o_k = the observed rate of all journeys;
- candidates: the rows of int_stage_benchmark_segments at stage k: segment values as
  known when the journey entered k (no look-ahead: a region first recorded by a later CRM
  record is unknown at the earlier stages; never 'channel', the channels used, which
  depends on how far the journey got), with a known value (not '(unknown)'), at least
  `funnel.benchmark_min_journeys` observed journeys, cohort weeks only when recent (the
  `funnel.cohort_weeks_recent` weeks up to the as-of week, that one included);
- benchmark: the best candidate Wilson LOWER bound (a rate the transition demonstrably
  reaches somewhere), never below o_k: benchmark_rate = max(o_k, best lower bound);
  headroom_rate = benchmark_rate - o_k;
- downstream_rate: the product of the current rates of the transitions after k up to the
  success stage (= reached(success) / reached(k+1)); 0 for transitions at or after the
  success stage, which cannot add successes;
- extra_successes = reached(k) x headroom_rate x downstream_rate: the extra journeys that
  would reach the success stage if this one transition rose to its benchmark and the later
  ones kept their rates;
- extra_successes_low / _high: a conservative range, not a confidence interval with exact
  coverage: low = reached(k) x max(0, best lower bound - o_k's upper bound) x the product
  of the later rates' lower bounds; high = reached(k) x max(0, benchmark segment's point
  rate - o_k's lower bound) x the product of the later rates' upper bounds.

`constraint_stage`: one row per finding, among transitions before the success stage:
'constraint' (largest extra_successes; NULL transition when no transition has headroom),
'lowest_rate' (lowest conversion_rate), 'largest_loss' (most abandoned journeys) and
'slowest_stage' (longest Kaplan-Meier median time to the next stage). They often differ:
a uniform relative lift of any stage lifts the end equally, so the lowest rate alone is not
a constraint; headroom against a demonstrated benchmark is.
"""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from cjm_analytics import stages
from cjm_analytics.config import JourneyConfig

#: Segment dimensions that depend on how far a journey got (never a benchmark).
OUTCOME_DEPENDENT_DIMENSIONS: tuple[str, ...] = ("channel",)
UNKNOWN_VALUE = "(unknown)"


def benchmark_candidates(
    segments: pl.DataFrame, min_journeys: int, recent_weeks: int, as_of: datetime
) -> pl.DataFrame:
    """Rows of int_stage_benchmark_segments that may set a benchmark (enough journeys, recent)."""
    first_recent = (week_start(as_of.date()) - timedelta(weeks=recent_weeks - 1)).isoformat()
    return segments.filter(
        (pl.col("observed_reached_count") >= min_journeys)
        & pl.col("observed_conversion_rate").is_not_null()
        & ~pl.col("dimension").is_in(OUTCOME_DEPENDENT_DIMENSIONS)
        & (pl.col("segment_value") != UNKNOWN_VALUE)
        & ((pl.col("dimension") != "cohort_week") | (pl.col("segment_value") >= first_recent))
    )


def what_if_frame(funnel: pl.DataFrame, candidates: pl.DataFrame) -> pl.DataFrame:
    """One row per transition: benchmark, headroom and extra successes (see module doc)."""
    steps = funnel.sort("stage_order").to_dicts()
    success_order = next(s["stage_order"] for s in steps if s["is_success_stage"])
    rows = []
    for step, next_step in itertools.pairwise(steps):
        later = [s for s in steps if step["stage_order"] < s["stage_order"] < success_order]
        best = _best_candidate(candidates, step["stage_order"])
        rows.append(_what_if_row(step, next_step, later, best, success_order))
    frame = pl.DataFrame(rows, infer_schema_length=None)
    ranked = frame.with_columns(
        pl.col("extra_successes").rank(method="ordinal", descending=True).alias("gain_rank")
    )
    top = ranked.filter(pl.col("is_before_success") & (pl.col("extra_successes") > 0))
    top_order = top.sort("extra_successes", descending=True)["from_stage_order"][:1].to_list()
    return ranked.with_columns(pl.col("from_stage_order").is_in(top_order).alias("is_constraint"))


def _best_candidate(candidates: pl.DataFrame, stage_order: int) -> dict[str, Any] | None:
    rows = candidates.filter(pl.col("stage_order") == stage_order).sort(
        ["observed_conversion_rate_low", "observed_reached_count", "dimension", "segment_value"],
        descending=[True, True, False, False],
    )
    return rows.row(0, named=True) if rows.height else None


def _product(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else math.prod(values)  # type: ignore[arg-type]


def _what_if_row(
    step: dict[str, Any],
    next_step: dict[str, Any],
    later: list[dict[str, Any]],
    best: dict[str, Any] | None,
    success_order: int,
) -> dict[str, Any]:
    reached, rate = step["reached_count"], step["conversion_rate"]
    observed = step["observed_conversion_rate"]
    before_success = step["stage_order"] < success_order
    best_low = best["observed_conversion_rate_low"] if best else None
    benchmark = (
        max(observed, best_low) if observed is not None and best_low is not None else observed
    )
    headroom = benchmark - observed if benchmark is not None and observed is not None else 0.0
    downstream = _product([s["conversion_rate"] for s in later]) if before_success else 0.0
    downstream_low = _product([s["conversion_rate_low"] for s in later]) if before_success else 0.0
    downstream_high = (
        _product([s["conversion_rate_high"] for s in later]) if before_success else 0.0
    )
    low = high = 0.0
    if (
        best is not None
        and observed is not None
        and downstream_low is not None
        and downstream_high is not None
    ):
        low = reached * max(0.0, best_low - step["observed_conversion_rate_high"]) * downstream_low
        high = (
            reached
            * max(0.0, best["observed_conversion_rate"] - step["observed_conversion_rate_low"])
            * downstream_high
        )
    return {
        "transition": f"{step['stage']} -> {next_step['stage']}",
        "from_stage": step["stage"],
        "to_stage": next_step["stage"],
        "from_stage_order": step["stage_order"],
        "is_before_success": before_success,
        "reached_count": reached,
        "converted_count": step["converted_count"],
        "abandoned_count": step["abandoned_count"],
        "in_progress_count": step["in_progress_count"],
        "conversion_rate": rate,
        "conversion_rate_low": step["conversion_rate_low"],
        "conversion_rate_high": step["conversion_rate_high"],
        "time_to_next_median_seconds": step["time_to_next_median_seconds"],
        "observed_reached_count": step["observed_reached_count"],
        "observed_conversion_rate": observed,
        "benchmark_rate": benchmark,
        "benchmark_dimension": best["dimension"] if best else None,
        "benchmark_segment_value": best["segment_value"] if best else None,
        "benchmark_segment_rate": best["observed_conversion_rate"] if best else None,
        "benchmark_segment_reached_count": best["observed_reached_count"] if best else None,
        "headroom_rate": headroom,
        "downstream_rate": downstream,
        "extra_next_stage_count": reached * headroom,
        "extra_successes": reached * headroom * downstream if downstream is not None else None,
        "extra_successes_low": low,
        "extra_successes_high": high,
    }


def findings_frame(what_if: pl.DataFrame) -> pl.DataFrame:
    """One row per finding (constraint, lowest_rate, largest_loss, slowest_stage)."""
    path = what_if.filter(pl.col("is_before_success"))
    picks = [
        ("constraint", path.filter(pl.col("is_constraint")), "extra_successes", "extra successes"),
        (
            "lowest_rate",
            _pick(path, "conversion_rate", descending=False),
            "conversion_rate",
            "rate",
        ),
        (
            "largest_loss",
            _pick(path, "abandoned_count", descending=True),
            "abandoned_count",
            "journeys",
        ),
        (
            "slowest_stage",
            _pick(path, "time_to_next_median_seconds", descending=True),
            "time_to_next_median_seconds",
            "seconds",
        ),
    ]
    rows = []
    for finding, picked, column, unit in picks:
        row = picked.row(0, named=True) if picked.height else None
        rows.append(
            {
                "finding": finding,
                "transition": row["transition"] if row else None,
                "from_stage": row["from_stage"] if row else None,
                "to_stage": row["to_stage"] if row else None,
                "value": float(row[column]) if row and row[column] is not None else None,
                "value_unit": unit,
                "explanation": _explain(finding, row),
            }
        )
    return pl.DataFrame(rows, schema=_FINDING_SCHEMA)


_FINDING_SCHEMA = {
    "finding": pl.String,
    "transition": pl.String,
    "from_stage": pl.String,
    "to_stage": pl.String,
    "value": pl.Float64,
    "value_unit": pl.String,
    "explanation": pl.String,
}


def _pick(frame: pl.DataFrame, column: str, descending: bool) -> pl.DataFrame:
    known = frame.filter(pl.col(column).is_not_null())
    return known.sort([column, "from_stage_order"], descending=[descending, False]).head(1)


def _explain(finding: str, row: dict[str, Any] | None) -> str:
    if row is None:
        if finding == "constraint":
            return "no transition before the success stage has a benchmark above its current rate"
        return "no transition before the success stage has a value for this"
    rate = row["conversion_rate"]
    if finding == "constraint":
        return (
            f"raising {row['transition']} from {row['observed_conversion_rate']:.1%} to "
            f"{row['benchmark_rate']:.1%} (journeys observed at {row['from_stage']}; the lower "
            f"bound of {row['benchmark_dimension']}={row['benchmark_segment_value']}) adds "
            f"{row['extra_successes']:.1f} successes (range {row['extra_successes_low']:.1f}"
            f"-{row['extra_successes_high']:.1f})"
        )
    if finding == "lowest_rate":
        return f"{row['transition']} converts {rate:.1%} of {row['reached_count']} journeys"
    if finding == "largest_loss":
        return f"{row['abandoned_count']} journeys abandoned at {row['from_stage']}"
    median = row["time_to_next_median_seconds"]
    return f"median {median / 86400:.1f} days from {row['from_stage']} to {row['to_stage']} (Kaplan-Meier)"


def build_constraint_tables(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> list[str]:
    """Write stage_what_if and constraint_stage from the funnel marts; returns their names."""
    funnel = con.sql("SELECT * FROM stage_funnel ORDER BY stage_order").pl()
    segments = con.sql("SELECT * FROM int_stage_benchmark_segments").pl()
    as_of = con.execute("SELECT getvariable('as_of')").fetchall()[0][0]
    candidates = benchmark_candidates(
        segments, cfg.funnel.benchmark_min_journeys, cfg.funnel.cohort_weeks_recent, as_of
    )
    if funnel.height < 2:
        return []
    what_if = what_if_frame(funnel, candidates)
    stages.write_table(con, "stage_what_if", what_if)
    stages.write_table(con, "constraint_stage", findings_frame(what_if))
    return ["stage_what_if", "constraint_stage"]


def week_start(day: date) -> date:
    """The Monday of the ISO week of `day` (cohort weeks start on Mondays)."""
    return day - timedelta(days=day.weekday())
