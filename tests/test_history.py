"""Run history: records survive rebuilds, failed runs are kept, only succeeded nights feed trends."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from cjm_analytics import history, warehouse
from cjm_analytics.history import RunRecord


def tiny_night(con: duckdb.DuckDBPyConnection, visit_converted: int) -> None:
    """Two stages, three journeys (two web, one crm): the tables history reads."""
    con.execute(
        "CREATE OR REPLACE TABLE stage_funnel AS SELECT * FROM (VALUES "
        f"('visit', 1, 3, {visit_converted}, 1, 0, {visit_converted} / 3, 0.1, 0.9, 1 / 3), "
        f"('buy', 2, {visit_converted}, NULL, 0, 0, NULL, NULL, NULL, 0.0)) "
        "t(stage, stage_order, reached_count, converted_count, abandoned_count, in_progress_count, "
        "conversion_rate, conversion_rate_low, conversion_rate_high, abandonment_rate)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE journeys AS SELECT * FROM (VALUES "
        "('j1', true, 'web', 'mobile'), ('j2', false, 'web', NULL), ('j3', false, 'crm', 'desktop')) "
        "t(journey_id, is_converted, first_touch_channel, device)"
    )


def test_run_record_round_trip_and_broken_records_skipped(tmp_path: Path) -> None:
    record = RunRecord(
        run_id="20260101T020000Z-abcd", started_at=datetime(2026, 1, 1, 2), rows_read_count=7
    )
    history.save_run(tmp_path, record)
    (tmp_path / "20260102T020000Z-dead").mkdir()
    (tmp_path / "20260102T020000Z-dead" / "run.json").write_text("{half", encoding="utf-8")
    assert history.load_runs(tmp_path) == [record]


def test_history_tables_hold_succeeded_nights_and_tonight(tmp_path: Path) -> None:
    con = warehouse.connect()
    # night 1 succeeded, night 2 failed after saving its history, night 3 is tonight
    for run_id, status, converted in (("r1", "succeeded", 2), ("r2", "failed", 1)):
        tiny_night(con, converted)
        history.install_history(
            con, tmp_path, run_id, datetime(2026, 1, 1), ["first_touch_channel", "device", "region"]
        )
        history.persist_night(con, tmp_path, run_id)
        history.save_run(
            tmp_path, RunRecord(run_id=run_id, started_at=datetime(2026, 1, 1), status=status)
        )
    tiny_night(con, 3)
    history.install_history(
        con, tmp_path, "r3", datetime(2026, 1, 3), ["first_touch_channel", "device", "region"]
    )
    nights = con.execute(
        "SELECT run_id, converted_count FROM stage_history WHERE stage = 'visit' ORDER BY run_id"
    ).fetchall()
    assert nights == [("r1", 2), ("r3", 3)]  # the failed night is not a trend point
    # tonight per segment: device has (none), desktop, mobile; first_touch_channel crm, web
    # ("region" is not a journeys column, so it is left out)
    segments = con.execute(
        "SELECT segment, segment_value, journey_count, converted_count FROM segment_history "
        "WHERE run_id = 'r3' ORDER BY ALL"
    ).fetchall()
    assert segments == [
        ("device", "(none)", 1, 0),
        ("device", "desktop", 1, 0),
        ("device", "mobile", 1, 1),
        ("first_touch_channel", "crm", 1, 0),
        ("first_touch_channel", "web", 2, 1),
    ]


def test_runs_table_lists_failed_runs_and_tonight(tmp_path: Path) -> None:
    failed = RunRecord(
        run_id="r1", started_at=datetime(2026, 1, 1), status="failed", failed_step="ingest"
    )
    history.save_run(tmp_path, failed)
    tonight = RunRecord(
        run_id="r2", started_at=datetime(2026, 1, 2), status="succeeded", customer_count=5
    )
    con = warehouse.connect()
    history.install_runs(con, tmp_path, tonight)
    rows = con.execute("SELECT run_id, status, failed_step, customer_count FROM runs").fetchall()
    assert rows == [("r1", "failed", "ingest", None), ("r2", "succeeded", None, 5)]


@pytest.mark.parametrize("name", ["a'; DROP TABLE x; --", "1abc", "region"])
def test_segment_names_outside_journeys_are_ignored(name: str) -> None:
    con = warehouse.connect()
    tiny_night(con, 1)
    assert history.segment_columns(con, [name, "device"]) == ["device"]
