"""The ad-hoc event funnel chart: data twin `event_funnel_data` and `event_funnel_figure`."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl
from rich.table import Table

from cjm_analytics.funnels import event_funnel


def event_funnel_data(events: Any, steps: list[Any], **kwargs: Any) -> pl.DataFrame:
    """One row per step (and breakdown value): `event_funnel`'s columns plus `label`
    ("2. book_demo") and `dropped_count` (units that reached the step but not the next)."""
    frame = event_funnel(events, steps, **kwargs)
    by = ["breakdown_value"] if "breakdown_value" in frame.columns else []
    following = pl.col("unit_count").shift(-1)
    if by:
        following = following.over(by)
    return frame.with_columns(
        label=pl.format("{}. {}", pl.col("step"), pl.col("event_name")),
        dropped_count=(pl.col("unit_count") - following.fill_null(pl.col("unit_count"))).cast(
            pl.Int64
        ),
    )


def event_funnel_figure(frame: pl.DataFrame) -> go.Figure:
    """A plotly funnel: one trace per breakdown value, hover shows rates and median time."""
    fig = go.Figure()
    groups = (
        frame.partition_by("breakdown_value", maintain_order=True)
        if "breakdown_value" in frame.columns
        else [frame]
    )
    for part in groups:
        name = part["breakdown_value"][0] if "breakdown_value" in part.columns else "units"
        fig.add_trace(
            go.Funnel(
                name=name or "(none)",
                y=part["label"].to_list(),
                x=part["unit_count"].to_list(),
                textinfo="value+percent initial",
                customdata=list(
                    zip(
                        part["conversion_rate_from_previous"].fill_null(0).to_list(),
                        part["median_time_from_previous_seconds"].fill_null(0).to_list(),
                        strict=True,
                    )
                ),
                hovertemplate=(
                    "%{y}<br>%{x} units<br>%{customdata[0]:.1%} of previous step"
                    "<br>median %{customdata[1]:.0f} s from previous<extra>%{fullData.name}</extra>"
                ),
            )
        )
    fig.update_layout(title="Event funnel", legend_title_text="breakdown", template="plotly_white")
    return fig


def funnel_table(frame: pl.DataFrame, title: str = "event funnel") -> Table:
    """The funnel frame as a rich table for the terminal (rates as %, times in seconds)."""
    table = Table(title=title)
    has_breakdown = "breakdown_value" in frame.columns
    columns = (["breakdown"] if has_breakdown else []) + [
        "step", "event", "units", "from previous", "from start", "avg s", "median s",
    ]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("breakdown", "event") else "right")
    for row in frame.iter_rows(named=True):
        cells = [
            str(row["step"]),
            row["event_name"],
            f"{row['unit_count']:,}",
            _pct(row["conversion_rate_from_previous"]),
            _pct(row["conversion_rate_from_start"]),
            _num(row["avg_time_from_previous_seconds"]),
            _num(row["median_time_from_previous_seconds"]),
        ]
        table.add_row(*([repr(row["breakdown_value"])] if has_breakdown else []), *cells)
    return table


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"
