"""Stage conversion over the recorded nights (`stage_history`)."""

from __future__ import annotations

import duckdb
import plotly.graph_objects as go
import polars as pl

from cjm_analytics.reports.intervals import interval_error_bars
from cjm_analytics.reports.sql import report_query


def trends_data(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per night and stage: conversion with its interval."""
    return report_query(con, "trends")


def trends_figure(frame: pl.DataFrame) -> go.Figure:
    """A line per stage: conversion to the next stage, night by night."""
    fig = go.Figure()
    for (stage,), part in frame.group_by("stage", maintain_order=True):
        fig.add_trace(
            go.Scatter(
                x=part["as_of"].to_list(),
                y=part["conversion_rate"].to_list(),
                mode="lines+markers",
                name=str(stage),
                error_y=interval_error_bars(
                    part, "conversion_rate", "conversion_rate_low", "conversion_rate_high"
                ),
            )
        )
    fig.update_layout(
        title="Conversion to the next stage, night by night (95% intervals)",
        yaxis={"tickformat": ".0%", "range": [0, 1]},
        height=460,
    )
    return fig
