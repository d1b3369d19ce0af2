"""One self-contained report folder per night: an index page and a page per topic, all
sharing ONE `plotly.min.js` written into the folder, so the folder works offline, can be
zipped or mailed, and does not repeat 4.8 MB of JavaScript per chart.

A chart whose tables are missing from the warehouse (a step that did not run) is listed on
the index as not available, with the tables it needs; it never breaks the report.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import plotly.graph_objects as go
import plotly.offline
import polars as pl

from cjm_analytics.reports import conformance, constraint, emotion, funnel, paths, segments
from cjm_analytics.reports import time_in_stage as time_module
from cjm_analytics.reports import trends as trends_module
from cjm_analytics.reports.overview import html_table, overview_sections
from cjm_analytics.reports.sql import has_tables

PLOTLY_JS = "plotly.min.js"


@dataclass(frozen=True)
class Chart:
    """A chart: its data twin, its figure, and the tables it needs."""

    slug: str
    needs: tuple[str, ...]
    data: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]
    figure: Callable[[pl.DataFrame], go.Figure]
    caption: str


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    charts: tuple[Chart, ...]
    table: Callable[[duckdb.DuckDBPyConnection], str] | None = None  # HTML below the charts


def _findings_table(con: duckdb.DuckDBPyConnection) -> str:
    if not has_tables(con, "constraint_stage"):
        return ""
    findings = con.sql(
        "SELECT finding, transition, value, value_unit, explanation FROM constraint_stage ORDER BY finding"
    ).pl()
    return "<h2>The constraint and what it is not</h2>" + html_table(findings)


def _emotion_table(con: duckdb.DuckDBPyConnection) -> str:
    if not has_tables(con, "stage_sentiment"):
        return ""
    return "<h2>Scores and counts per stage</h2>" + html_table(emotion.emotion_line_data(con))


CHARTS: dict[str, Chart] = {
    c.slug: c
    for c in (
        Chart(
            "stage_funnel",
            ("stage_funnel",),
            funnel.stage_funnel_data,
            funnel.stage_funnel_figure,
            "reached(k): journeys whose furthest stage is at or beyond k; conversion(k) = "
            "reached(k+1) / reached(k) with a Wilson 95% interval; abandonment(k): furthest "
            "stage k and no touchpoint for longer than the abandonment timeout.",
        ),
        Chart(
            "segment_funnel",
            ("stage_funnel_by_segment",),
            segments.segment_funnel_data,
            segments.segment_funnel_figure,
            "Conversion to the next stage per segment value (cells with few journeys are noisy).",
        ),
        Chart(
            "path_sankey",
            ("stage_variants",),
            paths.path_sankey_data,
            paths.path_sankey_figure,
            "The most frequent stage paths; the 'other paths' node holds every other journey.",
        ),
        Chart(
            "process_map",
            ("dfg_stage_edges", "stage_funnel"),
            paths.process_map_data,
            paths.process_map_figure,
            "Directly-follows graph of stage visits: how often one stage is followed by another, "
            "and the median time between entering them.",
        ),
        Chart(
            "time_in_stage",
            ("int_journey_stage_facts",),
            time_module.time_in_stage_data,
            time_module.time_in_stage_figure,
            "From entering a stage to entering the next one, for journeys that moved on: the "
            "durations the Kaplan-Meier median of the funnel is taken over (a sample of at "
            "most 2,000 per stage).",
        ),
        Chart(
            "emotion_line",
            ("stage_sentiment", "stage_funnel"),
            emotion.emotion_line_data,
            emotion.emotion_line_figure,
            "The emotion line of the journey map, from data: satisfaction scores and the share "
            "of failed calls and negative outcomes at each stage.",
        ),
        Chart(
            "conformance",
            ("conformance_conversion", "stage_funnel"),
            conformance.conformance_data,
            conformance.conformance_figure,
            "Journeys that leave the designed map (skipped stages, steps back, loops, channel "
            "switches) against those that follow it.",
        ),
        Chart(
            "deviation_kinds",
            ("deviations",),
            conformance.deviation_kinds_data,
            conformance.deviation_kinds_figure,
            "A journey with several kinds of deviation counts once in each.",
        ),
        Chart(
            "trends",
            ("stage_history",),
            trends_module.trends_data,
            trends_module.trends_figure,
            "Each recorded night's stage conversion (from the run history).",
        ),
        Chart(
            "constraint",
            ("stage_what_if", "constraint_stage"),
            constraint.constraint_data,
            constraint.constraint_figure,
            "Extra successes if a transition rose to its benchmark (its best rate in a segment "
            "or recent cohort with enough journeys, at the interval's lower bound), carried "
            "through the later stages. The largest gain is the constraint.",
        ),
    )
}

PAGES: tuple[Page, ...] = (
    Page("funnel", "Stage funnel", (CHARTS["stage_funnel"], CHARTS["segment_funnel"])),
    Page("constraint", "The constraint and its what-if", (CHARTS["constraint"],), _findings_table),
    Page("paths", "Paths and process map", (CHARTS["path_sankey"], CHARTS["process_map"])),
    Page("time_in_stage", "Time in stage", (CHARTS["time_in_stage"],)),
    Page("emotion", "Emotion line", (CHARTS["emotion_line"],), _emotion_table),
    Page(
        "conformance",
        "Conformance to the designed journey",
        (CHARTS["conformance"], CHARTS["deviation_kinds"]),
    ),
    Page("trends", "Trends over nights", (CHARTS["trends"],)),
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem 2rem; color: #222; }
nav a { margin-right: 1rem; } table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; } .note { color: #666; max-width: 60rem; }
.alert { color: #a00; font-weight: 600; } .chart { margin-bottom: 2rem; }
"""


def page_html(title: str, body: str, company: str = "") -> str:
    """A whole page: navigation, the shared plotly.min.js, and the body."""
    nav = '<a href="index.html">Overview</a>' + "".join(
        f'<a href="{p.slug}.html">{html.escape(p.title)}</a>' for p in PAGES
    )
    heading = f"{html.escape(company)}: {html.escape(title)}" if company else html.escape(title)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{heading}</title><style>{_STYLE}</style>"
        f'<script src="{PLOTLY_JS}"></script></head>'
        f"<body><nav>{nav}</nav><h1>{heading}</h1>{body}</body></html>\n"
    )


def chart_html(chart: Chart, con: duckdb.DuckDBPyConnection, div_id: str | None = None) -> str:
    """One chart's div (or a note saying why it is missing)."""
    if not has_tables(con, *chart.needs):
        return f"<p class='note'>{chart.slug}: not available (needs tables {', '.join(chart.needs)}).</p>"
    frame = chart.data(con)
    if frame.height == 0:
        return f"<p class='note'>{chart.slug}: no rows tonight.</p>"
    figure = chart.figure(frame)
    div = figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id or f"chart-{chart.slug}",
        config={"displaylogo": False, "responsive": True},
    )
    return f"<div class='chart' data-chart='{chart.slug}'>{div}<p class='note'>{html.escape(chart.caption)}</p></div>"


def write_plotly_js(out_dir: Path) -> Path:
    """plotly.js, once per report folder (the bundled copy: no network needed)."""
    target = out_dir / PLOTLY_JS
    if not target.exists():
        target.write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    return target


def build_report(con: duckdb.DuckDBPyConnection, out_dir: Path, company: str = "") -> Path:
    """Write the night's report folder; returns the path of its `index.html`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_plotly_js(out_dir)
    for page in PAGES:
        body = "".join(chart_html(chart, con) for chart in page.charts)
        body += page.table(con) if page.table else ""
        (out_dir / f"{page.slug}.html").write_text(
            page_html(page.title, body, company), encoding="utf-8"
        )
    index_body = overview_sections(con) + chart_html(
        CHARTS["stage_funnel"], con, "overview-stage-funnel"
    )
    index = out_dir / "index.html"
    index.write_text(
        page_html("the night's customer journey report", index_body, company), encoding="utf-8"
    )
    return index
