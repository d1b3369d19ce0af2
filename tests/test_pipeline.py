"""The whole night, for real: generate -> ingest -> build -> stages -> mining -> changes ->
report -> publish, twice (a normal night, then a full rebuild)."""

from __future__ import annotations

import sys
import threading

import pytest
from _tiny_night import TinyNights, demo_copy, tiny_nights

from cjm_analytics import warehouse
from cjm_analytics.history import load_runs

EXPECTED_TABLES = {
    # ingest + identity
    "stg_events", "ingest_files", "ingest_rejects", "events", "identity_map",
    # stages
    "touchpoints", "journeys", "stage_funnel", "stage_funnel_by_segment", "constraint_stage",
    "stage_what_if", "stage_sentiment", "abandonment_last_touchpoints", "dropoff_drivers",
    # mining
    "dfg_stage_edges", "stage_variants", "conformance_conversion", "deviations",
    "discovered_model_edges",  # written at publish, when the discovery is finished (ADR 0123)
    # this area
    "runs", "stage_history", "segment_history", "stage_changes", "conversion_decomposition", "alerts",
}  # fmt: skip


@pytest.fixture(scope="module")
def nights() -> TinyNights:
    return tiny_nights()


def test_both_nights_succeed_and_are_recorded(nights: TinyNights) -> None:
    runs = load_runs(nights.cfg.runs_dir)
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert [r.is_full_rebuild for r in runs] == [False, True]
    first = nights.first.record
    # every source row is accounted for; the full rebuild reads every file again
    assert first.rows_read_count == first.rows_loaded_count + first.rows_rejected_count
    assert first.rows_read_count and first.rows_read_count > 0
    assert nights.second.record.rows_read_count == first.rows_read_count


def test_published_warehouse_has_every_layer(nights: TinyNights) -> None:
    with warehouse.connection(nights.cfg.warehouse_path, read_only=True) as con:
        # stg_events is a view over the lake (ADR 0090): information_schema lists views too
        listed = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        tables = {r[0] for r in con.execute(listed).fetchall()}
        assert tables >= EXPECTED_TABLES
        runs = con.execute("SELECT run_id, status FROM runs ORDER BY started_at").fetchall()
        nights_seen = con.execute("SELECT count(DISTINCT run_id) FROM stage_history").fetchone()[0]  # type: ignore[index]
        previous = con.execute("SELECT DISTINCT previous_run_id FROM stage_changes").fetchall()
        customers = con.execute("SELECT count(DISTINCT customer_id) FROM events").fetchone()[0]  # type: ignore[index]
    assert runs == [
        (nights.first.record.run_id, "succeeded"),
        (nights.second.record.run_id, "succeeded"),
    ]
    assert nights_seen == 2
    assert previous == [(nights.first.record.run_id,)]
    assert customers == nights.second.record.customer_count


def test_full_rebuild_keeps_customer_ids_and_swaps_the_lake(nights: TinyNights) -> None:
    previous = nights.cfg.warehouse_path.with_name(nights.cfg.warehouse_path.name + ".previous")
    query = "SELECT DISTINCT customer_id FROM events WHERE customer_id IS NOT NULL"
    with warehouse.connection(previous, read_only=True) as con:
        before = {r[0] for r in con.execute(query).fetchall()}
    with warehouse.connection(nights.cfg.warehouse_path, read_only=True) as con:
        after = {r[0] for r in con.execute(query).fetchall()}
    assert before and before == after  # same data, same people, same ids
    lake = nights.cfg.lake_dir
    assert sorted(p.name for p in lake.parent.iterdir() if p.name.startswith(lake.name)) == [
        "lake",
        "lake.previous",
    ]


def test_each_night_has_its_report_and_models(nights: TinyNights) -> None:
    for result in (nights.first, nights.second):
        assert result.report_path is not None and result.report_path.is_file()
        assert result.report_path.parent.name.endswith(result.record.run_id)
        models = nights.cfg.runs_dir / result.record.run_id
        assert (models / "stage_history.parquet").is_file()
        assert any(p.suffix in {".pnml", ".ptml", ".bpmn"} for p in models.iterdir())
    assert nights.first.report_path != nights.second.report_path


def test_as_of_is_the_given_night(nights: TinyNights) -> None:
    assert nights.second.record.as_of is not None and nights.first.record.as_of is not None
    assert (nights.second.record.as_of - nights.first.record.as_of).days == 7


def test_published_warehouse_offers_the_funnel_macros_read_only(nights: TinyNights) -> None:
    with warehouse.connection(nights.cfg.warehouse_path, read_only=True) as con:
        rows = con.execute(
            "SELECT * FROM cjm_funnel_ordered('touchpoints', ['page_view', 'product_view'], 86400.0)"
        ).fetchall()
    assert len(rows) == 2  # one row per step


def test_warm_imports_load_the_later_steps_libraries_and_never_fail_the_build(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import sys

    from cjm_analytics import pipeline

    monkeypatch.setattr(
        pipeline, "WARM_IMPORTS", ("cjm_missing_module", *pipeline.WARM_IMPORTS, "json:nothing")
    )
    with caplog.at_level(logging.DEBUG, logger="cjm_analytics.pipeline"):
        pipeline._warm_imports().join()
    assert sys.getswitchinterval() == pytest.approx(0.005)  # given back by the thread
    assert {"pm4py", "scipy.stats", "plotly.graph_objects"} <= set(sys.modules)
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 2, failed


def test_a_failed_discovery_fails_the_night_at_publish_and_leaves_no_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the discovery runs on its thread from the mining step to publish (ADR 0123): its error
    # must still fail the night, name the discovery, and leave nothing half-published
    from cjm_analytics import mining
    from cjm_analytics.config import load_config
    from cjm_analytics.errors import MiningError
    from cjm_analytics.pipeline import _DISCOVERIES, run_night

    mining_done = threading.Event()

    def planted(*_: object) -> None:
        mining_done.wait(timeout=120)  # fail once the mining step is over
        raise RuntimeError("planted discovery failure")

    def on_step(step: str) -> None:
        if step == "changes":
            mining_done.set()

    monkeypatch.setattr(mining, "discover_from", planted)
    cfg = load_config(demo_copy("cjm-discovery-fails-"))
    with pytest.raises(MiningError, match="process model discovery failed: RuntimeError: planted"):
        run_night(cfg, on_step=on_step)
    runs = load_runs(cfg.runs_dir)
    assert [(r.status, r.failed_step) for r in runs] == [("failed", "publish")]
    assert not cfg.warehouse_path.exists()
    assert sorted(p.name for p in cfg.warehouse_path.parent.iterdir()) == ["cjm.duckdb.lock"]
    assert _DISCOVERIES == {}
    assert sys.getswitchinterval() == pytest.approx(0.005)  # given back when the thread ended
