"""Safe publishing: analysts keep last night while a run works; a failed run changes nothing;
the published file opens in DuckDB 1.5 clients.

The pipeline's own steps (publish, history, changes, report) run for real; the steps other
modules own are replaced by small fakes that write a marker table, so these cases test the
publishing mechanics alone (tests/test_pipeline.py runs the real steps end to end).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cjm_analytics import pipeline, warehouse
from cjm_analytics.config import JourneyConfig, parse_config
from cjm_analytics.errors import WarehouseError
from cjm_analytics.history import load_runs

ANALYST = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)  # like an analyst's DBeaver session
    print("ready", flush=True)
    for _ in sys.stdin:
        print(con.execute("SELECT night FROM night_marker").fetchone()[0], flush=True)
    """
)


def tiny_config(root: Path) -> JourneyConfig:
    data = {
        "paths": {
            "lake": "lake",
            "warehouse": "warehouse/cjm.duckdb",
            "reports": "reports",
            "runs": "runs",
        },
        "sources": {
            "web": {
                "path": "raw/*.csv",
                "format": "csv",
                "channel": "web",
                "columns": {"event_name": "e", "event_at": "t"},
                "identifiers": {"cookie": "c"},
            }
        },
        "stages": [{"name": "visit"}, {"name": "buy", "success": True}],
        "segments": ["device"],
        "alerts": [{"kind": "constraint_moved"}],
    }
    return parse_config(data, root)


def fake_steps(monkeypatch: pytest.MonkeyPatch, marker: str, fail_at: str | None = None) -> None:
    """Replace the steps owned by other modules; `fail_at` makes that step raise."""

    def ingest(night: pipeline.Night) -> dict[str, Any]:
        return {"rows_read_count": 10, "rows_loaded_count": 9, "rows_rejected_count": 1}

    def build(night: pipeline.Night) -> dict[str, Any]:
        with pipeline.open_build(night) as con:
            con.execute("CREATE TABLE night_marker AS SELECT ? AS night", [marker])
        return {"customer_count": 3}

    def stages(night: pipeline.Night) -> dict[str, Any]:
        with pipeline.open_build(night) as con:
            con.execute(
                "CREATE TABLE stage_funnel AS SELECT * FROM (VALUES "
                "('visit', 1, 3, 1, 1, 1, 1/3, 0.06, 0.79, 1/3), ('buy', 2, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL)) "
                "t(stage, stage_order, reached_count, converted_count, abandoned_count, in_progress_count, "
                "conversion_rate, conversion_rate_low, conversion_rate_high, abandonment_rate)"
            )
            con.execute(
                "CREATE TABLE journeys AS SELECT * FROM (VALUES ('j1', 'c1', true, 'mobile'), "
                "('j2', 'c2', false, 'desktop'), ('j3', 'c3', false, 'mobile')) "
                "t(journey_id, customer_id, is_converted, device)"
            )
        return {
            "as_of": datetime(2026, 6, 2),
            "journey_count": 3,
            "constraint_transition": "visit -> buy",
        }

    def mining(night: pipeline.Night) -> dict[str, Any]:
        return {}

    for name, fake in {
        "ingest": ingest,
        "build": build,
        "stages": stages,
        "mining": mining,
    }.items():
        if name == fail_at:

            def fake(night: pipeline.Night, step: str = name) -> dict[str, Any]:
                raise RuntimeError(f"planted failure in {step}")

        monkeypatch.setattr(pipeline, f"{name}_step", fake)


def published_marker(cfg: JourneyConfig) -> str:
    with warehouse.connection(cfg.warehouse_path, read_only=True) as con:
        return con.execute("SELECT night FROM night_marker").fetchone()[0]  # type: ignore[index]


def test_analyst_session_keeps_last_night_while_the_run_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(tmp_path)
    fake_steps(monkeypatch, "night 1")
    pipeline.run_night(cfg)
    night_1_inode = cfg.warehouse_path.stat().st_ino
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(cfg.warehouse_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout is not None and analyst.stdin is not None
        assert analyst.stdout.readline().strip() == "ready"
        fake_steps(monkeypatch, "night 2")
        result = pipeline.run_night(cfg)  # would fail at once if it opened the published file
        assert result.succeeded
        analyst.stdin.write("query\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().strip() == "night 1"  # the open session: its snapshot
        assert published_marker(cfg) == "night 2"  # a new session: the new night
    finally:
        analyst.kill()
        analyst.wait()
    previous = cfg.warehouse_path.with_name("cjm.duckdb.previous")
    with warehouse.connection(previous, read_only=True) as con:
        assert con.execute("SELECT night FROM night_marker").fetchone()[0] == "night 1"  # type: ignore[index]
    # last night's file under its second name, not a copy of it
    assert previous.stat().st_ino == night_1_inode
    assert cfg.warehouse_path.stat().st_ino != night_1_inode


@pytest.mark.parametrize("fail_at", ["ingest", "build", "mining"])
def test_failed_run_leaves_last_night_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    cfg = tiny_config(tmp_path)
    fake_steps(monkeypatch, "night 1")
    pipeline.run_night(cfg)
    before = cfg.warehouse_path.read_bytes()
    fake_steps(monkeypatch, "night 2", fail_at=fail_at)
    with pytest.raises(RuntimeError, match="planted failure"):
        pipeline.run_night(cfg)
    assert cfg.warehouse_path.read_bytes() == before
    assert published_marker(cfg) == "night 1"
    leftovers = sorted(p.name for p in cfg.warehouse_path.parent.iterdir())
    assert leftovers == ["cjm.duckdb", "cjm.duckdb.lock"]  # no half-built file
    runs = load_runs(cfg.runs_dir)
    assert [(r.status, r.failed_step) for r in runs] == [("succeeded", None), ("failed", fail_at)]
    assert "planted failure" in (runs[-1].error_message or "")


def test_next_night_records_the_failed_run_in_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(tmp_path)
    fake_steps(monkeypatch, "night 1", fail_at="build")
    with pytest.raises(RuntimeError):
        pipeline.run_night(cfg)
    fake_steps(monkeypatch, "night 2")
    pipeline.run_night(cfg)
    with warehouse.connection(cfg.warehouse_path, read_only=True) as con:
        rows = con.execute(
            "SELECT status, failed_step, rows_rejected_count FROM runs ORDER BY started_at"
        ).fetchall()
    assert rows == [("failed", "build", 1), ("succeeded", None, 1)]  # ingest facts kept


def test_stale_half_built_file_of_a_killed_run_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(tmp_path)
    cfg.warehouse_path.parent.mkdir(parents=True)
    stale = pipeline.building_path(cfg.warehouse_path, "20260101T000000Z-dead")
    stale.write_bytes(b"half a night")
    fake_steps(monkeypatch, "night 1")
    pipeline.run_night(cfg)
    assert not stale.exists()
    assert published_marker(cfg) == "night 1"


def test_published_file_opens_with_duckdb_1_5_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(tmp_path)
    fake_steps(monkeypatch, "night 1")
    pipeline.run_night(cfg)
    with warehouse.connection(cfg.warehouse_path, read_only=True) as con:
        tags = con.execute(
            "SELECT tags FROM duckdb_databases() WHERE path = ?", [str(cfg.warehouse_path)]
        ).fetchone()[0]  # type: ignore[index]
    assert tags["storage_version"] == "v1.5.0+"


def test_one_run_at_a_time_per_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_config(tmp_path)
    fake_steps(monkeypatch, "night 1")
    first = pipeline.start_night(cfg)
    with pytest.raises(WarehouseError, match="another nightly run is building"):
        pipeline.start_night(cfg)  # would otherwise delete the first run's half-built file
    pipeline.fail_night(first, {}, "ingest", RuntimeError("stopped by the operator"))
    result = pipeline.run_night(cfg)  # the lock is free again
    assert result.succeeded


def test_only_the_build_file_skips_fsyncs_and_publish_syncs_it(tmp_path: Path) -> None:
    # ADR 0117: the night's file is written without DuckDB's fsyncs and flushed once by
    # publish; every other file keeps DuckDB's default
    build, target = tmp_path / "w.building-x.duckdb", tmp_path / "w.duckdb"
    with warehouse.connect(build, fsync=False) as con:
        assert con.execute("SELECT current_setting('fsync_mode')").fetchone() == ("none",)
        con.execute("CREATE TABLE t AS SELECT 1 AS a")
    with warehouse.connect(tmp_path / "other.duckdb") as con:
        assert con.execute("SELECT current_setting('fsync_mode')").fetchone() == ("STANDARD",)
    warehouse.publish(build, target)
    with warehouse.connection(target, read_only=True) as con:
        assert con.execute("SELECT a FROM t").fetchall() == [(1,)]
    warehouse.sync_file(tmp_path / "gone.duckdb")  # a failed night's file: nothing to do
