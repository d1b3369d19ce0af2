"""The emotion line: satisfaction and failure along the stages, the CJM's emotion curve
from data (stage_sentiment)."""

from __future__ import annotations

import duckdb
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from cjm_analytics.reports.sql import report_query

#: (column of the data twin, label, axis): scores on the left, shares on the right.
SERIES: tuple[tuple[str, str, str], ...] = (
    ("csat_mean", "CSAT (mean)", "score"),
    ("nps_mean", "NPS score (mean)", "score"),
    ("failed_call_rate", "failed calls", "share"),
    ("negative_outcome_rate", "negative outcomes", "share"),
)


def emotion_line_data(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per stage: mean CSAT and NPS (with counts), failed-call and negative shares."""
    return report_query(con, "emotion_line")


def emotion_line_figure(frame: pl.DataFrame) -> go.Figure:
    """Scores on the left axis, failure shares on the right, stages in journey order."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for column, label, axis in SERIES:
        if column in frame.columns and frame[column].is_not_null().any():
            fig.add_trace(
                go.Scatter(
                    x=frame["stage"].to_list(),
                    y=frame[column].to_list(),
                    name=label,
                    mode="lines+markers",
                    connectgaps=True,
                ),
                secondary_y=axis == "share",
            )
    fig.update_yaxes(title_text="score", secondary_y=False)
    fig.update_yaxes(title_text="share", tickformat=".0%", secondary_y=True)
    fig.update_layout(title="Emotion line: how customers feel along the journey", height=460)
    return fig
