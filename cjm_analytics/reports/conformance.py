"""Conformance to the designed journey: do journeys that leave the map convert better or
worse, and at which stage; and how journeys leave it."""

from __future__ import annotations

import duckdb
import plotly.graph_objects as go
import polars as pl

from cjm_analytics.reports.intervals import interval_error_bars
from cjm_analytics.reports.sql import report_query


def conformance_data(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per scope (overall / stage), stage and path group (conforming / deviating)."""
    return report_query(con, "conformance")


def deviation_kinds_data(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per kind of deviation: the journeys that show it."""
    return report_query(con, "deviation_kinds")


def conformance_figure(frame: pl.DataFrame) -> go.Figure:
    """Conversion of journeys on the designed map vs off it, overall and per stage (95% CI)."""
    fig = go.Figure()
    for group, part in frame.group_by("path_group", maintain_order=True):
        fig.add_trace(
            go.Bar(
                x=part["stage"].to_list(),
                y=part["conversion_rate"].to_list(),
                name=str(group[0]),
                customdata=part["journey_count"].to_list(),
                hovertemplate="%{x}: %{y:.1%} of %{customdata:,} journeys",
                error_y=interval_error_bars(
                    part, "conversion_rate", "conversion_rate_low", "conversion_rate_high"
                ),
            )
        )
    fig.update_layout(
        title="Conversion of journeys on the designed map vs off it (deviating at that stage)",
        barmode="group",
        yaxis={"tickformat": ".0%"},
        height=460,
    )
    return fig


def deviation_kinds_figure(frame: pl.DataFrame) -> go.Figure:
    """Journeys per kind of deviation from the designed map."""
    fig = go.Figure(go.Bar(x=frame["deviation_kind"].to_list(), y=frame["journey_count"].to_list()))
    fig.update_layout(title="How journeys leave the designed map (journeys per kind)", height=400)
    return fig
