"""The index page's sections: the night in numbers, the constraint, alerts, what changed
(beyond-noise stage changes, traffic mix vs rate), the funnel table and recent runs."""

from __future__ import annotations

import html
from datetime import datetime

import duckdb
import polars as pl

from cjm_analytics.changes import decomposition_totals
from cjm_analytics.reports.constraint import constraint_name
from cjm_analytics.reports.sql import has_tables


def _cell(value: object, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if column.endswith(("_rate", "_share", "_effect", "_change", "_low", "_high")):
            return (
                f"{value:.1%}"
                if "change" not in column and "effect" not in column
                else f"{value * 100:+.2f} pp"
            )
        return f"{value:,.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return html.escape(str(value))


def html_table(frame: pl.DataFrame) -> str:
    """A plain HTML table of a small frame (rates as percent, effects in points)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{_cell(v, c)}</td>" for c, v in zip(frame.columns, row, strict=True))
        + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def _numbers(con: duckdb.DuckDBPyConnection) -> str:
    parts = []
    if has_tables(con, "journeys"):
        journeys, customers = con.execute(
            "SELECT count(*), count(DISTINCT customer_id) FROM journeys"
        ).fetchone()  # type: ignore[misc]
        parts.append(f"{journeys:,} journeys of {customers:,} customers")
    if has_tables(con, "stage_history"):
        nights, as_of = con.execute(
            "SELECT count(DISTINCT run_id), max(as_of) FROM stage_history"
        ).fetchone()  # type: ignore[misc]
        parts.append(
            f"as of {as_of:%Y-%m-%d %H:%M} UTC; {nights} night(s) recorded" if as_of else ""
        )
    if has_tables(con, "ingest_rejects"):
        rejected = con.execute("SELECT count(*) FROM ingest_rejects").fetchone()[0]  # type: ignore[index]
        parts.append(f"{rejected:,} source rows rejected so far (table ingest_rejects)")
    return "<p>" + "; ".join(p for p in parts if p) + ".</p>"


def _constraint(con: duckdb.DuckDBPyConnection) -> str:
    name = constraint_name(con)
    if not name:
        return "<p class='note'>No constraint computed tonight.</p>"
    return f"<p><b>The constraint: {html.escape(name)}</b>. See the <a href='constraint.html'>what-if</a>.</p>"


def _alerts(con: duckdb.DuckDBPyConnection) -> str:
    if not has_tables(con, "alerts"):
        return "<p class='note'>Alerts were not evaluated.</p>"
    alerts = con.sql("SELECT kind, stage, message FROM alerts").pl()
    if alerts.height == 0:
        return "<p>No alert fired tonight.</p>"
    return (
        "<ul>"
        + "".join(f"<li class='alert'>{html.escape(m)}</li>" for m in alerts["message"])
        + "</ul>"
    )


def _changes(con: duckdb.DuckDBPyConnection) -> str:
    if not has_tables(con, "stage_changes", "conversion_decomposition"):
        return "<p class='note'>No history to compare with.</p>"
    changes = con.sql(
        "SELECT stage, previous_conversion_rate, conversion_rate, conversion_change, p_value, "
        "is_beyond_noise FROM stage_changes WHERE conversion_rate IS NOT NULL ORDER BY stage_order"
    ).pl()
    if changes["previous_conversion_rate"].is_null().all():
        return "<p>This is the first recorded night: nothing to compare with yet.</p>"
    totals = decomposition_totals(con.sql("FROM conversion_decomposition").pl())
    return (
        "<p>Stage conversion against the previous night (beyond noise: two-proportion z-test, p &lt; 0.05).</p>"
        + html_table(changes)
        + "<p>Change in overall conversion split into traffic mix (segment shares moved) and rate "
        "(conversion within segments moved), per segment; mix + rate = change.</p>"
        + html_table(totals)
    )


def _funnel(con: duckdb.DuckDBPyConnection) -> str:
    if not has_tables(con, "stage_funnel"):
        return "<p class='note'>No stage funnel.</p>"
    from cjm_analytics.reports.summary import funnel_table

    return html_table(funnel_table(con))


def _runs(con: duckdb.DuckDBPyConnection) -> str:
    if not has_tables(con, "runs"):
        return ""
    runs = con.sql(
        "SELECT run_id, as_of, status, rows_read_count, rows_rejected_count, customer_count, "
        "constraint_transition, failed_step FROM runs ORDER BY started_at DESC LIMIT 10"
    ).pl()
    return _section("Recent runs", html_table(runs))


def overview_sections(con: duckdb.DuckDBPyConnection) -> str:
    """The index page body (before the funnel chart)."""
    return (
        _numbers(con)
        + _section("The constraint", _constraint(con))
        + _section("Alerts", _alerts(con))
        + _section("What changed since the previous night", _changes(con))
        + _section("Stage funnel", _funnel(con))
        + _runs(con)
    )
