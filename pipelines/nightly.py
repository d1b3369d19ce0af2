"""The nightly Prefect flow: one task per step, each calling one `cjm_analytics.pipeline`
function. Orchestration only; no SQL and no logic here.

Run one night locally (Prefect's temporary server, nothing to start first):

    python -m pipelines.nightly --config data/demo/journey.yaml

Retries sit on the I/O steps (reading source files, writing the report). No task is
cached: every step writes to DuckDB or to files, and a cache hit would skip the write.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from cjm_analytics import pipeline, warehouse
from cjm_analytics.config import load_config
from cjm_analytics.pipeline import Facts, Night
from cjm_analytics.reports.summary import night_markdown

DEFAULT_CONFIG = "data/demo/journey.yaml"


@task(name="ingest", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def ingest_task(night: Night) -> Facts:
    return pipeline.ingest_step(night)


@task(name="build warehouse", cache_policy=NO_CACHE)
def build_task(night: Night) -> Facts:
    return pipeline.build_step(night)


@task(name="stages and journeys", cache_policy=NO_CACHE)
def stages_task(night: Night) -> Facts:
    return pipeline.stages_step(night)


@task(name="mining", cache_policy=NO_CACHE)
def mining_task(night: Night) -> Facts:
    return pipeline.mining_step(night)


@task(name="history and changes", cache_policy=NO_CACHE)
def changes_task(night: Night, facts: Facts) -> Facts:
    return pipeline.changes_step(night, facts)


@task(name="report", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def report_task(night: Night, facts: Facts) -> Facts:
    return pipeline.report_step(night, facts)


@task(name="publish", cache_policy=NO_CACHE)
def publish_task(night: Night, facts: Facts) -> Facts:
    record = pipeline.publish_step(night, facts)
    return {"status": record.status, "ended_at": record.ended_at}


@task(name="summary artifact", cache_policy=NO_CACHE)
def summary_task(night: Night, facts: Facts) -> str:
    report = Path(facts["report_path"]) if facts.get("report_path") else None
    with warehouse.connection(night.cfg.warehouse_path, read_only=True) as con:
        markdown = night_markdown(con, {"run_id": night.run_id, **facts}, report)
    create_markdown_artifact(markdown=markdown, key="cjm-nightly-summary", description="the night")
    if facts.get("alerts"):
        alerts = "\n".join(f"- {a}" for a in facts["alerts"])
        create_markdown_artifact(markdown=f"# Alerts\n\n{alerts}\n", key="cjm-alerts")
    if report is not None:
        create_link_artifact(
            link=report.resolve().as_uri(), link_text="the night's report", key="cjm-report"
        )
    return markdown


@flow(name="cjm-nightly")
def nightly(
    config_path: str = DEFAULT_CONFIG, as_of: datetime | None = None, full_rebuild: bool = False
) -> dict[str, Any]:
    """One night: ingest -> build -> stages -> mining -> changes -> report -> publish."""
    night = pipeline.start_night(load_config(config_path), as_of, full_rebuild)
    facts: Facts = {}
    step = "ingest"
    try:
        facts |= ingest_task(night)
        step = "build"
        facts |= build_task(night)
        step = "stages"
        facts |= stages_task(night)
        step = "mining"
        facts |= mining_task(night)
        step = "changes"
        facts |= changes_task(night, facts)
        step = "report"
        facts |= report_task(night, facts)
        step = "publish"
        facts |= publish_task(night, facts)
    except Exception as error:
        pipeline.fail_night(night, facts, step, error)
        raise
    for alert in facts.get("alerts", []):
        get_run_logger().warning("alert: %s", alert)
    summary_task(night, facts)
    return {"run_id": night.run_id, "warehouse_path": str(night.cfg.warehouse_path), **facts}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one nightly cjm-analytics flow.")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--as-of", type=datetime.fromisoformat, default=None)
    parser.add_argument("--full-rebuild", action="store_true")
    args = parser.parse_args(argv)
    nightly(config_path=args.config, as_of=args.as_of, full_rebuild=args.full_rebuild)


if __name__ == "__main__":
    main()
