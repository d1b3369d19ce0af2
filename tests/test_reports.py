"""Report data twins on hand-built tables, and the report folder's layout."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cjm_analytics import warehouse
from cjm_analytics.reports import (
    build_report,
    conformance,
    emotion,
    funnel,
    paths,
    segments,
    trends,
)
from cjm_analytics.reports import time_in_stage as time_module
from cjm_analytics.reports.build import PAGES, PLOTLY_JS


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """A warehouse with the few rows each chart reads (numbers worked out per test)."""
    con = warehouse.connect()
    con.execute(
        "CREATE TABLE stage_funnel AS SELECT * FROM (VALUES "
        "('a', 1, 100, 80, 15, 5, 0.8, 0.71, 0.87, 0.15), "
        "('b', 2, 80, 50, 20, 10, 0.625, 0.52, 0.72, 0.25), "
        "('c', 3, 50, NULL, NULL, NULL, NULL, NULL, NULL, NULL)) "
        "t(stage, stage_order, reached_count, converted_count, abandoned_count, in_progress_count, "
        "conversion_rate, conversion_rate_low, conversion_rate_high, abandonment_rate)"
    )
    con.execute(
        "CREATE TABLE stage_variants AS SELECT * FROM (VALUES "
        "(['a', 'b', 'c'], 50), (['a', 'b'], 30), (['a'], 15), (['b'], 5)) t(stage_path, journey_count)"
    )
    con.execute(
        "CREATE TABLE dfg_stage_edges AS SELECT * FROM (VALUES "
        "('a', 'b', 80, 3600.0, 7200.0), ('b', 'c', 50, 86400.0, 90000.0), ('b', 'a', 10, 60.0, 120.0), "
        "('x', 'a', 1, 1.0, 1.0)) "
        "t(from_stage, to_stage, transition_count, median_duration_seconds, p90_duration_seconds)"
    )
    con.execute(
        "CREATE TABLE int_journey_stage_facts AS SELECT * FROM (VALUES "
        "('j1', 'a', 1, 10800.0), ('j1', 'b', 2, NULL), ('j2', 'a', 1, NULL), "
        "('j3', 'b', 2, 86400.0), ('j3', 'c', 3, NULL)) "
        "t(journey_id, stage, stage_order, time_to_next_seconds)"
    )
    con.execute(
        "CREATE TABLE stage_history AS SELECT * FROM (VALUES "
        "('r1', TIMESTAMP '2026-06-01', 'a', 1, 100, 0.8, 0.7, 0.9, 0.1), "
        "('r2', TIMESTAMP '2026-06-02', 'a', 1, 110, 0.7, 0.6, 0.8, 0.2), "
        "('r2', TIMESTAMP '2026-06-02', 'c', 3, 50, NULL, NULL, NULL, NULL)) "
        "t(run_id, as_of, stage, stage_order, reached_count, conversion_rate, conversion_rate_low, "
        "conversion_rate_high, abandonment_rate)"
    )
    con.execute(
        "CREATE TABLE stage_funnel_by_segment AS SELECT * FROM (VALUES "
        "('device', 'mobile', 'a', 1, 60, 0.7, 0.6, 0.8), ('device', 'mobile', 'c', 3, 30, NULL, NULL, NULL), "
        "('device', 'desktop', 'a', 1, 40, 0.9, 0.8, 0.95), ('device', 'tablet', 'a', 1, 3, 1.0, 0.4, 1.0), "
        "('cohort_week', '2026-03-02', 'a', 1, 100, 0.8, 0.7, 0.9)) "
        "t(dimension, segment_value, stage, stage_order, reached_count, conversion_rate, "
        "conversion_rate_low, conversion_rate_high)"
    )
    con.execute(
        "CREATE TABLE stage_sentiment AS SELECT * FROM (VALUES "
        "('a', 1, 4.5, 10, NULL, 0, 0.1, 20, 0.05, 40), ('b', 2, 3.0, 5, 8.0, 3, 0.4, 10, 0.3, 20)) "
        "t(stage, stage_order, csat_avg, csat_count, nps_avg, nps_count, failed_call_rate, call_count, "
        "negative_outcome_rate, outcome_count)"
    )
    con.execute(
        "CREATE TABLE conformance_conversion AS SELECT * FROM (VALUES "
        "('overall', NULL, 'conforming', 60, 30, 0.5, 0.38, 0.62), ('overall', NULL, 'deviating', 40, 10, 0.25, 0.14, 0.4), "
        "('stage', 'b', 'conforming', 70, 45, 0.64, 0.53, 0.74)) "
        "t(scope, stage, path_group, journey_count, converted_count, conversion_rate, conversion_rate_low, "
        "conversion_rate_high)"
    )
    con.execute(
        "CREATE TABLE deviations AS SELECT * FROM (VALUES "
        "(1, 'skipped_stage', 'c', 'b', NULL, 1, 15), (1, 'skipped_stage', 'c', 'a', NULL, 1, 15), "
        "(2, 'loop', 'a', 'a', NULL, 2, 10)) "
        "t(stage_variant_id, deviation_kind, at_stage, affected_stage, channel, occurrence_count, journey_count)"
    )
    decimals = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE data_type LIKE 'DECIMAL%'"
    ).fetchall()
    for table, column in decimals:  # SQL literals like 0.8 are DECIMAL; the marts hold DOUBLE
        con.execute(f'ALTER TABLE {table} ALTER "{column}" TYPE DOUBLE')
    yield con
    con.close()


def test_sankey_keeps_top_paths_and_counts_the_rest_as_other(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # top 2 of 100 journeys: [a,b,c] 50 and [a,b] 30; other = 15 + 5 = 20 journeys (20%)
    frame = paths.path_sankey_data(con, top_n=2)
    assert frame.select("path_rank", "journey_count", "is_other").rows() == [
        (1, 50, False),
        (2, 30, False),
        (0, 20, True),
    ]
    assert frame["journey_share"].to_list() == pytest.approx([0.5, 0.3, 0.2])
    labels, links = paths._sankey_links(frame)
    named = {(labels[a], labels[b]): v for (a, b), v in links.items()}
    # start -> 1.a carries both kept paths (80); 2.b -> 3.c only the first (50)
    assert named == {
        ("start", "1. a"): 80,
        ("1. a", "2. b"): 80,
        ("2. b", "3. c"): 50,
        ("start", "other paths: 20 journeys (20%)"): 20,
    }


def test_sankey_without_a_tail_has_no_other_row(con: duckdb.DuckDBPyConnection) -> None:
    assert not paths.path_sankey_data(con, top_n=10)["is_other"].any()


def test_process_map_edges_in_count_order_with_positions(con: duckdb.DuckDBPyConnection) -> None:
    frame = paths.process_map_data(con, top_n=3)
    assert frame.select(
        "from_stage", "to_stage", "transition_count", "from_stage_order", "to_stage_order"
    ).rows() == [
        ("a", "b", 80, 1, 2),
        ("b", "c", 50, 2, 3),
        ("b", "a", 10, 2, 1),
    ]
    # a stage the funnel does not know ('x') goes after the last known one
    assert paths._positions(paths.process_map_data(con))["x"] == 4.0


def test_time_in_stage_shows_the_movers_durations(con: duckdb.DuckDBPyConnection) -> None:
    # j1 moved from a to b in 3 h, j3 from b to c in 1 d; j2 never left a and the last
    # stages have no next one (no duration: not shown)
    frame = time_module.time_in_stage_data(con)
    assert frame.select("journey_id", "stage", "time_in_stage_seconds").rows() == [
        ("j1", "a", 10800.0),
        ("j3", "b", 86400.0),
    ]
    assert time_module.time_in_stage_data(con, per_stage=0).height == 0


def test_segment_funnel_drops_small_groups_and_cohort_weeks(con: duckdb.DuckDBPyConnection) -> None:
    frame = segments.segment_funnel_data(con, min_journeys=10)
    assert frame.select("segment", "segment_value", "stage").rows() == [
        ("device", "desktop", "a"),
        ("device", "mobile", "a"),
    ]
    figure = segments.segment_funnel_figure(frame)
    assert list(figure.data[0].y) == ["device: desktop", "device: mobile"]


def test_trends_emotion_conformance_twins(con: duckdb.DuckDBPyConnection) -> None:
    assert trends.trends_data(con).select("run_id", "conversion_rate").rows() == [
        ("r1", 0.8),
        ("r2", 0.7),
    ]
    line = emotion.emotion_line_data(con)
    assert line.select("stage", "csat_mean", "failed_call_rate").rows() == [
        ("a", 4.5, 0.1),
        ("b", 3.0, 0.4),
    ]
    # NPS only at b: the figure still draws it (connectgaps), four series in all
    assert len(emotion.emotion_line_figure(line).data) == 4
    conf = conformance.conformance_data(con)
    assert conf.select("stage", "path_group", "conversion_rate").rows() == [
        ("overall", "conforming", 0.5),
        ("overall", "deviating", 0.25),
        ("b", "conforming", 0.64),
    ]
    # variant 1 has two skipped-stage rows but 15 journeys: counted once per kind
    kinds = conformance.deviation_kinds_data(con)
    assert kinds.rows() == [("skipped_stage", 15), ("loop", 10)]


def test_stage_funnel_figure_has_funnel_and_rates(con: duckdb.DuckDBPyConnection) -> None:
    frame = funnel.stage_funnel_data(con)
    assert frame["reached_count"].to_list() == [100, 80, 50]
    figure = funnel.stage_funnel_figure(frame)
    assert [trace.type for trace in figure.data] == ["funnel", "bar", "bar"]
    assert list(figure.data[1].x) == ["a", "b"]  # the last stage has no conversion


def test_report_folder_shares_one_plotly_js(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    index = build_report(con, tmp_path / "night", company="Test Co")
    folder = index.parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["index.html", PLOTLY_JS] + [f"{page.slug}.html" for page in PAGES]
    )
    for page in folder.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert f'<script src="{PLOTLY_JS}"></script>' in text
        assert len(text) < 1_000_000  # plotly.js (4.8 MB) is never inlined
        assert "cdn" not in text.lower()
    # every chart of this warehouse is drawn except the constraint (no stage_what_if table)
    body = "".join(p.read_text(encoding="utf-8") for p in folder.glob("*.html"))
    assert body.count("data-chart=") == 10
    assert "constraint: not available (needs tables stage_what_if, constraint_stage)" in body
