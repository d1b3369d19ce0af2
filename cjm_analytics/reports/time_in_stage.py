"""How long journeys stay in each stage before moving on."""

from __future__ import annotations

import duckdb
import plotly.graph_objects as go
import polars as pl

from cjm_analytics.reports.sql import report_query

SAMPLE_PER_STAGE = 2000


def time_in_stage_data(
    con: duckdb.DuckDBPyConnection, per_stage: int = SAMPLE_PER_STAGE
) -> pl.DataFrame:
    """One row per journey and stage it moved on from: seconds to the next stage reached."""
    return report_query(con, "time_in_stage", [per_stage])


def time_in_stage_figure(frame: pl.DataFrame) -> go.Figure:
    """A box per stage of the time to the next stage, in hours on a log axis."""
    fig = go.Figure()
    for (stage,), part in frame.sort("stage_order").group_by("stage", maintain_order=True):
        hours = (part["time_in_stage_seconds"] / 3600).clip(lower_bound=1 / 60)
        fig.add_trace(go.Box(y=hours.to_list(), name=str(stage), boxpoints=False))
    fig.update_layout(
        title="Time in stage of journeys that moved on (hours, log scale; open journeys are censored)",
        yaxis={"type": "log", "title": "hours to the next stage"},
        height=480,
        showlegend=False,
    )
    return fig
