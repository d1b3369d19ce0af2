"""Where journeys go: a Sankey of the most frequent stage paths (with an "other" bucket
that says how many journeys it holds) and the process map (the stage-level directly-follows
graph with counts and times)."""

from __future__ import annotations

import itertools
import math

import duckdb
import plotly.graph_objects as go
import polars as pl

from cjm_analytics.reports.sql import format_seconds, report_query

TOP_PATHS = 10
TOP_EDGES = 30


def path_sankey_data(con: duckdb.DuckDBPyConnection, top_n: int = TOP_PATHS) -> pl.DataFrame:
    """One row per kept stage path (rank 1..top_n) plus one "other" row (rank 0) if any."""
    return report_query(con, "path_sankey", [top_n])


def _sankey_links(frame: pl.DataFrame) -> tuple[list[str], dict[tuple[int, int], int]]:
    """Nodes ("start", "1. awareness", ...) and link weights from the kept paths."""
    nodes: dict[str, int] = {"start": 0}
    links: dict[tuple[int, int], int] = {}

    def node(label: str) -> int:
        return nodes.setdefault(label, len(nodes))

    for row in frame.iter_rows(named=True):
        if row["is_other"]:
            label = f"other paths: {row['journey_count']:,} journeys ({row['journey_share']:.0%})"
            chain = ["start", label]
        else:
            chain = ["start"] + [f"{i + 1}. {stage}" for i, stage in enumerate(row["stage_path"])]
        for a, b in itertools.pairwise(chain):
            key = (node(a), node(b))
            links[key] = links.get(key, 0) + row["journey_count"]
    return list(nodes), links


def path_sankey_figure(frame: pl.DataFrame) -> go.Figure:
    """Top stage paths as a Sankey; the "other" node holds every journey not on them."""
    labels, links = _sankey_links(frame)
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={"label": labels, "pad": 12, "thickness": 14},
            link={
                "source": [a for a, _ in links],
                "target": [b for _, b in links],
                "value": list(links.values()),
            },
        )
    )
    kept = frame.filter(~pl.col("is_other"))
    fig.update_layout(
        title=f"Top {kept.height} stage paths ({kept['journey_share'].sum():.0%} of journeys)",
        height=520,
    )
    return fig


def process_map_data(con: duckdb.DuckDBPyConnection, top_n: int = TOP_EDGES) -> pl.DataFrame:
    """One row per stage-to-stage edge (the top_n most frequent): count, median and p90 time."""
    return report_query(con, "process_map", [top_n])


def _positions(frame: pl.DataFrame) -> dict[str, float]:
    """x position of each stage: its stage order, unknown stages after the last one."""
    pos: dict[str, float] = {}
    for stage_col, order_col in (
        ("from_stage", "from_stage_order"),
        ("to_stage", "to_stage_order"),
    ):
        for stage, order in frame.select(stage_col, order_col).iter_rows():
            if order is not None:
                pos[stage] = float(order)
    last = max(pos.values(), default=0.0)
    for stage in sorted(set(frame["from_stage"]) | set(frame["to_stage"])):
        if stage not in pos:
            last += 1
            pos[stage] = last
    return pos


def process_map_figure(frame: pl.DataFrame) -> go.Figure:
    """Stages on a line in journey order; forward edges arc above, backward edges below.

    Line width grows with the edge count; the main edges are labelled "count · median time",
    every edge shows both on hover.
    """
    pos = _positions(frame)
    fig = go.Figure()
    widest = max(int(frame["transition_count"].max() or 1), 1)  # type: ignore[arg-type]
    mid_x, mid_y, mid_text, mid_label = [], [], [], []
    for row in frame.iter_rows(named=True):
        x0, x1 = pos[row["from_stage"]], pos[row["to_stage"]]
        if x0 == x1:
            continue  # a stage followed by itself: loops are counted in the mining tables
        bend = 0.35 * (x1 - x0)
        path = f"M {x0},0 Q {(x0 + x1) / 2},{bend} {x1},0"
        width = 1 + 7 * math.log1p(row["transition_count"]) / math.log1p(widest)
        color = "rgba(31,119,180,0.55)" if x1 > x0 else "rgba(214,39,40,0.55)"
        fig.add_shape(type="path", path=path, line={"width": width, "color": color})
        mid_x.append((x0 + x1) / 2)
        mid_y.append(bend / 2)
        mid_text.append(
            f"{row['from_stage']} → {row['to_stage']}: {row['transition_count']:,} "
            f"(median {format_seconds(row['median_duration_seconds'])})"
        )
        is_major = row["transition_count"] >= 0.05 * widest  # label the main edges only
        median = format_seconds(row["median_duration_seconds"])
        mid_label.append(f"{row['transition_count']:,} · {median}" if is_major else "")
    fig.add_trace(
        go.Scatter(
            x=mid_x,
            y=mid_y,
            mode="markers+text",
            text=mid_label,
            textposition="top center",
            textfont={"size": 10},
            marker={"size": 6, "color": "grey"},
            hovertext=mid_text,
            hoverinfo="text",
            name="edges",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=list(pos.values()),
            y=[0] * len(pos),
            mode="markers+text",
            text=list(pos),
            textposition="bottom center",
            marker={"size": 22, "color": "#444"},
            name="stages",
        )
    )
    fig.update_layout(
        title="Process map: stage to stage (blue forward, red back; labels: journeys · median time)",
        height=520,
        showlegend=False,
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
    return fig
