"""The constraint stage and its what-if: extra successes if each transition rose to its
benchmark, carried through the later stages."""

from __future__ import annotations

import duckdb
import plotly.graph_objects as go
import polars as pl

from cjm_analytics.reports.intervals import interval_error_bars
from cjm_analytics.reports.sql import has_tables, report_query


def constraint_name(con: duckdb.DuckDBPyConnection) -> str | None:
    """'from -> to' of tonight's constraint transition, or None when none was computed."""
    if not has_tables(con, "constraint_stage"):
        return None
    row = con.execute(
        "SELECT transition FROM constraint_stage WHERE finding = 'constraint'"
    ).fetchone()
    return row[0] if row else None


def constraint_data(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per transition: rate, benchmark, extra successes (with interval), constraint flag."""
    return report_query(con, "constraint")


def constraint_figure(frame: pl.DataFrame) -> go.Figure:
    """Extra successes per transition at its benchmark; the constraint in a strong colour.

    Error bars show stage_what_if's conservative low/high range (not an exact interval).
    """
    colors = ["#d62728" if flag else "#9bb7d4" for flag in frame["is_constraint"].to_list()]
    fig = go.Figure(
        go.Bar(
            x=frame["transition"].to_list(),
            y=frame["extra_success_count"].to_list(),
            marker={"color": colors},
            customdata=list(
                zip(
                    frame["conversion_rate"].to_list(),
                    frame["benchmark_rate"].to_list(),
                    strict=True,
                )
            ),
            hovertemplate="%{x}: +%{y:,.0f} successes (rate %{customdata[0]:.1%} -> benchmark %{customdata[1]:.1%})",
            error_y=interval_error_bars(
                frame, "extra_success_count", "extra_success_low", "extra_success_high"
            ),
        )
    )
    fig.update_layout(
        title="What if each transition reached its benchmark? Extra successes (the constraint in red)",
        yaxis={"title": "extra successes"},
        height=460,
    )
    return fig
