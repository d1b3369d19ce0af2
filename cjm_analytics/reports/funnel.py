"""The stage funnel (reached, conversion with its interval, abandonment) and the funnel by
segment."""

from __future__ import annotations

import duckdb
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from cjm_analytics.reports.intervals import interval_error_bars
from cjm_analytics.reports.sql import report_query


def stage_funnel_data(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per stage: reached, converted, abandoned, in progress and the rates."""
    return report_query(con, "stage_funnel")


def stage_funnel_figure(frame: pl.DataFrame) -> go.Figure:
    """Left: journeys reaching each stage. Right: conversion (95% interval) and abandonment."""
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.45, 0.55],
        subplot_titles=(
            "Journeys reaching each stage",
            "Conversion to the next stage and abandonment",
        ),
        specs=[[{"type": "funnel"}, {"type": "xy"}]],
    )
    fig.add_trace(
        go.Funnel(
            y=frame["stage"].to_list(),
            x=frame["reached_count"].to_list(),
            textinfo="value+percent initial",
            name="reached",
        ),
        row=1,
        col=1,
    )
    rates = frame.filter(pl.col("conversion_rate").is_not_null())
    fig.add_trace(
        go.Bar(
            x=rates["stage"].to_list(),
            y=rates["conversion_rate"].to_list(),
            name="conversion rate",
            error_y=interval_error_bars(
                rates, "conversion_rate", "conversion_rate_low", "conversion_rate_high"
            ),
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Bar(
            x=frame["stage"].to_list(),
            y=frame["abandonment_rate"].to_list(),
            name="abandonment rate",
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1], row=1, col=2)
    fig.update_layout(barmode="group", height=460, legend={"orientation": "h", "y": -0.15})
    return fig
