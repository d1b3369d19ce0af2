"""The nightly Prefect flow under Prefect's test harness (one temporary server per session),
and `cjm demo`, which runs the same flow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _tiny_night import demo_copy
from prefect.artifacts import Artifact
from prefect.testing.utilities import prefect_test_harness
from typer.testing import CliRunner

from cjm_analytics import pipeline, warehouse
from cjm_analytics.cli import app
from cjm_analytics.config import load_config
from cjm_analytics.demo import truth_as_of
from cjm_analytics.history import load_runs
from pipelines.nightly import nightly


@pytest.fixture(scope="session")
def prefect() -> Iterator[None]:
    """One Prefect test server for the whole session (starting one costs ~15 s)."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_flow_runs_one_night_and_publishes_artifacts(prefect: None) -> None:
    config_path = demo_copy("cjm-flow-")
    cfg = load_config(config_path)
    result: dict[str, Any] = nightly(config_path=str(config_path), as_of=truth_as_of(cfg))
    assert result["status"] == "succeeded"
    with warehouse.connection(cfg.warehouse_path, read_only=True) as con:
        runs = con.execute("SELECT run_id, status FROM runs").fetchall()
    assert runs == [(result["run_id"], "succeeded")]
    summary = Artifact.get("cjm-nightly-summary")
    assert summary is not None and result["run_id"] in str(summary.data)
    assert "Stage funnel" in str(summary.data)
    link = Artifact.get("cjm-report")
    assert link is not None and "index.html" in str(link.data)


def test_failed_flow_records_the_run_and_publishes_nothing(
    prefect: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = demo_copy("cjm-flow-fail-")
    cfg = load_config(config_path)

    def broken_mining(night: pipeline.Night) -> dict[str, Any]:
        raise RuntimeError("planted mining failure")

    monkeypatch.setattr(pipeline, "mining_step", broken_mining)
    with pytest.raises(RuntimeError, match="planted mining failure"):
        nightly(config_path=str(config_path), as_of=truth_as_of(cfg))
    runs = load_runs(cfg.runs_dir)
    assert [(r.status, r.failed_step) for r in runs] == [("failed", "mining")]
    assert [p.name for p in cfg.warehouse_path.parent.iterdir()] == [
        "cjm.duckdb.lock"
    ]  # nothing published


def test_cjm_demo_runs_the_flow_and_prints_the_night(prefect: None) -> None:
    config_path = demo_copy("cjm-demo-")  # raw data present: demo does not generate
    outcome = CliRunner().invoke(app, ["demo", "--config", str(config_path)])
    assert outcome.exit_code == 0, outcome.output
    assert "Stage funnel" in outcome.output
    assert "Constraint:" in outcome.output
    assert "index.html" in outcome.output.replace("\n", "")


def test_prefect_yaml_deploys_the_flow_on_the_demo_schedule() -> None:
    import importlib

    import yaml
    from _tiny_night import REPO
    from prefect import Flow

    deployment = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))["deployments"][
        0
    ]
    module_path, name = deployment["entrypoint"].split(":")
    flow = getattr(importlib.import_module(module_path.removesuffix(".py").replace("/", ".")), name)
    assert isinstance(flow, Flow) and flow is nightly
    schedule = load_config(REPO / deployment["parameters"]["config_path"]).schedule
    assert deployment["schedules"][0]["cron"] == schedule.cron
    assert deployment["schedules"][0]["timezone"] == schedule.timezone
