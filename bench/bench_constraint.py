"""Does the stage funnel name the planted constraint? Synthetic data, several seeds and transitions.

For each planted transition and seed: generate Voltstore's exports (cjm_analytics.synthetic),
ingest them, stitch identities, build the stage models with data/demo/journey.yaml, and
compare `constraint_stage` (finding 'constraint') with truth.json. Prints one line per run
and a summary; exits 1 when a run names another transition.

    .venv/bin/python bench/bench_constraint.py --customers 20000 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from cjm_analytics import warehouse
from cjm_analytics.config import load_config
from cjm_analytics.identity import stitch
from cjm_analytics.ingest import ingest
from cjm_analytics.ingest.lake import load_lake
from cjm_analytics.journeys import build_journey_models, constraint_summary
from cjm_analytics.synthetic import generate

REPO = Path(__file__).resolve().parent.parent
TRANSITIONS = (
    "awareness->interest",
    "interest->consideration",
    "consideration->intent",
    "intent->purchase",
)


def run_once(workdir: Path, customers: int, seed: int, planted: str) -> dict[str, object]:
    """Generate, ingest, stitch and build once; returns what was planted and what was named."""
    data = workdir / "data"
    summary = generate(data, customers=customers, seed=seed, constraint=planted)
    shutil.copy(REPO / "data" / "demo" / "journey.yaml", data / "journey.yaml")
    cfg = load_config(data / "journey.yaml")
    truth = json.loads(summary.truth_path.read_text())
    ingest(cfg, as_of=summary.as_of)
    began = time.perf_counter()
    with warehouse.connection(workdir / "build.duckdb") as con:
        load_lake(con, cfg)
        stitch(con, cfg)
        build_journey_models(con, cfg, summary.as_of)
        findings = constraint_summary(con)
        gains = con.execute(
            "SELECT transition, round(extra_successes, 1) FROM stage_what_if ORDER BY from_stage_order"
        ).fetchall()
    named = (findings["constraint"]["transition"] or "").replace(" ", "")
    return {
        "planted": planted,
        "seed": seed,
        "named": named,
        "ok": named == planted,
        "lowest_rate": findings["lowest_rate"]["transition"],
        "gains": gains,
        "truth_constraint": truth.get("constraint") or truth.get("stories", {}).get("constraint"),
        "build_seconds": round(time.perf_counter() - began, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--transitions", nargs="+", default=list(TRANSITIONS))
    args = parser.parse_args(argv)
    results = []
    for planted in args.transitions:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix="cjm-constraint-") as tmp:
                result = run_once(Path(tmp), args.customers, seed, planted)
            results.append(result)
            print(json.dumps(result, default=str), flush=True)
    hits = sum(bool(r["ok"]) for r in results)
    print(f"{datetime.now():%H:%M} planted constraint named in {hits}/{len(results)} runs "
          f"({args.customers} customers each)")  # fmt: skip
    return 0 if hits == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
