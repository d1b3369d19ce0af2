"""Stitch the synthetic company and score it against its truth, with wall and CPU seconds.

    .venv/bin/python bench/bench_stitch_synthetic.py --customers 100000 --seed 7 --out bench/data/stitch-100k

Runs generate -> ingest -> load_lake -> stitch -> score_stitching on data/demo/journey.yaml
(paths pointed into `--out`). With `--reuse`, the files, lake and warehouse of an earlier run
in `--out` are kept and only `stitch` (twice: first night, then the same night with state)
and the score run again. CPU seconds are the process's user + system time (all threads):
on a shared, loaded machine wall time mostly measures the other processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("CJM_PII_SALT", "bench-salt-not-a-secret-0123456789")

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig, parse_config
from cjm_analytics.identity import score_stitching, stitch
from cjm_analytics.ingest import ingest, lake
from cjm_analytics.synthetic import generate

CONFIG = Path(__file__).resolve().parents[1] / "data" / "demo" / "journey.yaml"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, work: Callable[[], Any]) -> Any:
    began, cpu = time.perf_counter(), cpu_seconds()
    result = work()
    print(f"{label}: wall {time.perf_counter() - began:.1f} s, cpu {cpu_seconds() - cpu:.1f} s")
    return result


def config_for(out: Path) -> JourneyConfig:
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    data["paths"] = {"lake": "lake", "warehouse": "warehouse/cjm.duckdb", "reports": "reports",
                     "runs": "runs"}  # fmt: skip
    return parse_config(data, out)


def main(customers: int, seed: int, out: Path, reuse: bool) -> None:
    cfg = config_for(out)
    database = out / "stitch.duckdb"
    if not reuse:
        for stale in (out / "lake", database):
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
        timed("generate", lambda: generate(out, customers=customers, seed=seed))
        as_of = json.loads((out / "truth.json").read_text())["as_of"]
        from datetime import UTC, datetime

        moment = datetime.fromisoformat(as_of).replace(tzinfo=UTC)
        timed("ingest", lambda: ingest(cfg, as_of=moment))
    with warehouse.connection(database) as con:
        if not reuse:
            timed("load_lake", lambda: lake.load_lake(con, cfg))
        state = lake.state_path(cfg)
        with lake.open_state(cfg) as s:
            s.execute("DROP TABLE IF EXISTS identity_state_map")
            s.execute("DROP TABLE IF EXISTS identity_customers")
        assert state.exists()
        first = timed("stitch (first night)", lambda: stitch(con, cfg))
        again = timed("stitch (same night, with state)", lambda: stitch(con, cfg))
        print(f"  events {first.event_count:,}, identifiers {first.identifier_count:,}, "
              f"customers {first.customer_count:,}, iterations {first.iterations}, "
              f"merges on rerun {again.merge_count}")  # fmt: skip
        score = timed("score", lambda: score_stitching(con, out / "truth_identifiers.parquet", cfg))
    truth = json.loads((out / "truth.json").read_text())
    print(f"  precision {score.precision:.4f}, recall {score.recall:.4f}, "
          f"recall ceiling (score) {score.recall_ceiling:.4f}, "
          f"recall ceiling (truth.json) {truth['identifiers'].get('reach', {}).get('recall_ceiling')}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    main(args.customers, args.seed, args.out.resolve(), args.reuse)
