"""SIGKILL a nightly run at 15 points across ingest, build, stages, mining, changes, report and
publish (normal nights and full rebuilds), then check what it left and run again.

After every kill: the published warehouse is absent (no night yet), the last complete night,
or the killed run's night when the kill came after the file was replaced, never a mix (its
`runs` row, its history rows, its report and its table counts all belong to one run); the
lake's manifest agrees with its Parquet parts (no duplicate event, no orphan part counted,
rows read = loaded + rejected). Finally a normal rerun finishes and its marts equal those of
a reference that ran the same nights without kills.

The kills are real kill -9 in forked children of tests/reliability/crash_driver.py (see its
docstring): one Python start for all the runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cjm_analytics.synthetic import generate

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CUSTOMERS, SEED, DAYS = 40, 5, 14


def kill(name: str, target: str, expect: str, nth: int = 1, **more: Any) -> dict[str, Any]:
    return {"kind": "kill", "name": name, "target": target, "when": "after", "nth": nth,
            "expect": expect, **more}  # fmt: skip


LAKE = "cjm_analytics.ingest.lake"
#: (kill point, what the published warehouse must be afterwards: absent | old | new)
FIRST_NIGHT = [
    kill("ingest: parts of the first file written, manifest not", f"{LAKE}:write_parts", "absent"),
    kill("ingest: second file committed", f"{LAKE}:commit_file", "absent", nth=2),
    kill("build: lake loaded into the new file", "cjm_analytics.ingest:load_lake", "absent"),
    kill("build: identity state saved", "cjm_analytics.identity.full:_save_state", "absent"),
    kill("stages: journeys built", "cjm_analytics.journeys:build_journey_models", "absent"),
    kill("mining: process tree discovered", "cjm_analytics.mining:discover_tree", "absent"),
    kill("changes: what changed built", "cjm_analytics.changes:build_changes", "absent"),
    kill("report: plotly.js written", "cjm_analytics.reports.build:write_plotly_js", "absent"),
    kill("publish: history saved beside run.json", "cjm_analytics.history:persist_night", "absent"),
    kill(
        "publish: before the file replace",
        "os:replace",
        "absent",
        when="before",
        match=".building-",
    ),
    kill("publish: file replaced, run.json not yet", "cjm_analytics.warehouse:publish", "new"),
]
LATER_NIGHTS = [
    kill("ingest: first new file committed", f"{LAKE}:commit_file", "old"),
    kill("publish: old night linked as .previous", "os:link", "old", match=".previous"),
    kill("full rebuild: ingest into the new lake", f"{LAKE}:commit_file", "old", nth=2, full_rebuild=True),
    kill("full rebuild: lake moved to .previous, new lake not in place", "pathlib:Path.rename", "new",
         match=".previous", full_rebuild=True),
]  # fmt: skip


def company(root: Path) -> tuple[Path, Path]:
    """A small generated company; its last web file is held back for the later nights."""
    demo = root / "demo"
    demo.mkdir(parents=True)
    shutil.copy(REPO / "data" / "demo" / "journey.yaml", demo / "journey.yaml")
    generate(demo, CUSTOMERS, SEED, days=DAYS)
    last = sorted((demo / "raw" / "web").glob("*.jsonl"))[-1]
    held = root / "held" / "raw" / "web"
    held.mkdir(parents=True)
    last.rename(held / last.name)
    return demo / "journey.yaml", root / "held"


def drive(tmp_path: Path, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    plan, out = tmp_path / "plan.json", tmp_path / "out.json"
    plan.write_text(json.dumps({"config": "", "steps": steps}))
    done = subprocess.run(
        [sys.executable, str(HERE / "crash_driver.py"), str(plan), str(out)],
        env=dict(os.environ), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    root = tmp_path_factory.mktemp("crash")
    config, held = company(root / "killed")
    reference, reference_held = company(root / "reference")
    add = {"kind": "add_files", "name": "add", "from": str(held), "to": str(config.parent)}
    add_ref = {"kind": "add_files", "name": "add", "from": str(reference_held),
               "to": str(reference.parent)}  # fmt: skip
    steps = [
        *({**k, "config": str(config)} for k in FIRST_NIGHT),
        {"kind": "run", "name": "first night", "config": str(config), "expect": "new"},
        add,
        *({**k, "config": str(config)} for k in LATER_NIGHTS),
        {"kind": "run", "name": "rerun", "config": str(config), "expect": "new"},
        {"kind": "run", "name": "reference first night", "config": str(reference)},
        add_ref,
        {
            "kind": "run",
            "name": "reference rebuild",
            "config": str(reference),
            "full_rebuild": True,
        },
        {"kind": "run", "name": "reference night", "config": str(reference)},
    ]
    results = drive(root, [s for s in steps])
    expected = [s for s in steps if s["kind"] != "add_files"]
    for result, step in zip(results, expected, strict=True):
        result["expect"] = step.get("expect")
    return results


@pytest.mark.slow
def test_every_kill_point_was_reached(crashed: list[dict[str, Any]]) -> None:
    kills = [r for r in crashed if r["kind"] == "kill"]
    assert len(kills) == len(FIRST_NIGHT) + len(LATER_NIGHTS) == 15
    assert [(r["name"], r["status"]) for r in kills] == [(r["name"], -9) for r in kills]
    runs = [r for r in crashed if r["kind"] == "run"]
    assert [(r["name"], r["status"]) for r in runs] == [(r["name"], 0) for r in runs]


def test_published_warehouse_is_one_complete_night(crashed: list[dict[str, Any]]) -> None:
    complete = next(r for r in crashed if r["kind"] == "run")["warehouse"]["tables"]
    published: str | None = None
    ever_published: set[str] = set()
    for result in crashed:
        if result["expect"] is None:
            continue  # the reference folder
        tonight = result["runs"][-1][0]  # run ids sort by start: the run just made
        found = result["warehouse"]
        expected = {"absent": None, "old": published, "new": tonight}[result["expect"]]
        assert found.get("run_id") == expected, result["name"]
        # a night once published is recorded as succeeded by the next run, even when its
        # own run was killed before it could save that (the published file says so)
        statuses = dict(result["runs"])
        assert {statuses[r] for r in ever_published - {tonight}} <= {"succeeded"}, result["name"]
        # and every other killed run is recorded as failed: only tonight's may be running
        assert [s for _, s in result["runs"][:-1] if s == "running"] == [], result["name"]
        if not found["exists"]:
            continue
        published = found["run_id"]
        ever_published.add(published)
        if result["kind"] == "run":  # the history of every night analysts saw is kept
            assert ever_published <= set(found["history_run_ids"]), result["name"]
        assert found["tables"] == complete, result["name"]
        assert found["recorded_journey_count"] == found["count"]["journeys"], result["name"]
        assert found["recorded_customer_count"] == found["customer_count"], result["name"]
        assert found["report_exists"] and found["report_of_this_run"], result["name"]
        assert published in found["history_run_ids"], result["name"]
        assert found["events_duplicated"] == 0, result["name"]


def test_lake_and_manifest_stay_consistent(crashed: list[dict[str, Any]]) -> None:
    for result in crashed:
        lake = result["lake"]
        if not lake.get("has_state"):
            continue
        assert lake["missing_parts"] == [], result["name"]
        counted = {lake[k] for k in ("events_loaded", "part_events", "loaded_ids",
                                     "distinct_loaded_ids", "parquet_rows", "parquet_distinct_ids")}  # fmt: skip
        assert len(counted) == 1, (result["name"], lake)
        assert lake["rows_read"] == lake["rows_loaded"] + lake["rows_rejected"], result["name"]
        assert lake["reject_rows"] == lake["rows_rejected"], result["name"]


def test_rerun_finishes_with_the_marts_of_a_night_never_killed(
    crashed: list[dict[str, Any]],
) -> None:
    rerun = next(r for r in crashed if r["name"] == "rerun")
    reference = crashed[-1]
    assert rerun["lake"]["rows_read"] == reference["lake"]["rows_read"] > 0
    assert rerun["warehouse"]["count"]["stg_events"] == rerun["lake"]["parquet_rows"]
    assert rerun["building_files"] == [] and rerun["rebuild_lakes"] == []
    differing = {
        table
        for table, digest in reference["warehouse"]["digest"].items()
        if rerun["warehouse"]["digest"].get(table) != digest
    }
    assert differing == set()
