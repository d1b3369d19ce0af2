"""End to end on the synthetic company: the stage funnel names the planted constraint.

The generator (cjm_analytics.synthetic) plants a transition whose conversion is lifted in
one segment (device = desktop) and depressed elsewhere, and writes it to truth.json. Small
data, one seed; bench/bench_constraint.py runs every plantable transition over more seeds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cjm_analytics import warehouse
from cjm_analytics.config import load_config
from cjm_analytics.identity import stitch
from cjm_analytics.ingest import ingest
from cjm_analytics.ingest.lake import load_lake
from cjm_analytics.journeys import build_journey_models, constraint_summary
from cjm_analytics.synthetic import generate

REPO = Path(__file__).resolve().parent.parent


def test_planted_constraint_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    summary = generate(data, customers=3000, seed=11, constraint="consideration->intent")
    shutil.copy(REPO / "data" / "demo" / "journey.yaml", data / "journey.yaml")
    cfg = load_config(data / "journey.yaml")
    ingest(cfg, as_of=summary.as_of)
    with warehouse.connection(tmp_path / "build.duckdb") as con:
        load_lake(con, cfg)
        stitch(con, cfg)
        build_journey_models(con, cfg, summary.as_of)
        findings = constraint_summary(con)
    truth = json.loads(summary.truth_path.read_text())
    planted = " -> ".join(truth["stories"]["constraint"]["transition"])
    assert planted == "consideration -> intent"
    assert findings["constraint"]["transition"] == planted
