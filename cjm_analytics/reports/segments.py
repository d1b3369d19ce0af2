"""The funnel by segment: conversion to the next stage per segment value."""

from __future__ import annotations

import duckdb
import plotly.graph_objects as go
import polars as pl

from cjm_analytics.reports.sql import report_query

MIN_JOURNEYS = 30


def segment_funnel_data(
    con: duckdb.DuckDBPyConnection, min_journeys: int = MIN_JOURNEYS
) -> pl.DataFrame:
    """One row per segment, segment value and stage with at least `min_journeys` reaching it."""
    return report_query(con, "segment_funnel", [min_journeys])


def segment_funnel_figure(frame: pl.DataFrame) -> go.Figure:
    """A heatmap: rows are `segment: value`, columns stages, cells conversion (hover: reached)."""
    frame = frame.with_columns((pl.col("segment") + ": " + pl.col("segment_value")).alias("row"))
    stages = frame.sort("stage_order")["stage"].unique(maintain_order=True).to_list()
    rows = frame.sort("segment", "segment_value")["row"].unique(maintain_order=True).to_list()
    lookup = {
        (r, s): (c, n)
        for r, s, c, n in frame.select(
            "row", "stage", "conversion_rate", "reached_count"
        ).iter_rows()
    }
    z = [[lookup.get((r, s), (None, None))[0] for s in stages] for r in rows]
    counts = [[lookup.get((r, s), (None, 0))[1] for s in stages] for r in rows]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=stages,
            y=rows,
            customdata=counts,
            colorscale="RdYlGn",
            zmin=0,
            zmax=1,
            hovertemplate="%{y} at %{x}: %{z:.1%} of %{customdata:,} journeys<extra></extra>",
            colorbar={"tickformat": ".0%"},
        )
    )
    fig.update_layout(
        title="Conversion to the next stage by segment",
        height=max(360, 24 * len(rows) + 160),
        yaxis={"autorange": "reversed"},
    )
    return fig
