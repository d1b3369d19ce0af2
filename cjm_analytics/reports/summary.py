"""The night in a few lines: for the Prefect markdown artifact and the CLI's closing print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cjm_analytics.reports.constraint import constraint_name
from cjm_analytics.reports.sql import has_tables

FUNNEL_COLUMNS = (
    "stage",
    "reached_count",
    "converted_count",
    "abandoned_count",
    "in_progress_count",
    "conversion_rate",
    "abandonment_rate",
)


def funnel_table(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per stage: the counts and rates the morning summary shows."""
    if not has_tables(con, "stage_funnel"):
        return pl.DataFrame()
    from cjm_analytics.reports.funnel import stage_funnel_data

    return stage_funnel_data(con).select(FUNNEL_COLUMNS)


def _markdown_table(frame: pl.DataFrame) -> str:
    def cell(column: str, value: Any) -> str:
        if value is None:
            return ""
        if column.endswith("_rate"):
            return f"{value:.1%}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    body = "".join(
        "| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + " |\n"
        for row in frame.iter_rows()
    )
    return head + body


def night_markdown(
    con: duckdb.DuckDBPyConnection, facts: dict[str, Any], report_path: Path | None
) -> str:
    """A markdown summary of the night: numbers, constraint, alerts, funnel, report link."""
    lines = [
        f"# Nightly customer-journey run {facts.get('run_id', '')}",
        "",
        f"- as of: {facts.get('as_of')}",
        f"- rows read / loaded / rejected: {facts.get('rows_read_count')} / "
        f"{facts.get('rows_loaded_count')} / {facts.get('rows_rejected_count')}",
        f"- customers: {facts.get('customer_count')}, journeys: {facts.get('journey_count')}",
        f"- constraint: **{constraint_name(con) or 'none'}**",
    ]
    alerts = facts.get("alerts") or []
    lines += ["", "## Alerts", ""] + ([f"- {a}" for a in alerts] or ["- none"])
    funnel = funnel_table(con)
    if funnel.height:
        lines += ["", "## Stage funnel", "", _markdown_table(funnel)]
    if report_path is not None:
        lines += ["", f"Report: [{report_path}]({Path(report_path).resolve().as_uri()})"]
    return "\n".join(lines) + "\n"
