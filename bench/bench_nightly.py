"""The whole nightly run (ingest -> warehouse -> stitch -> stages -> mining -> report ->
publish) at a size, and the incremental night (1% new events) against a full rebuild.

A night runs `cjm_analytics.pipeline.run_night` (plain Python, the steps the Prefect flow
calls as tasks; Prefect's own start-up is not the pipeline's cost and is left out). Each
night is one child process (bench/common.py), so its peak RSS is its own.

A work folder holds `journey.yaml` (the demo company's config with the bench's paths and
warehouse settings) and `raw/<source>/` with symlinks to the cached generated files, so a
night reads exactly the files the floor reads.

    .venv/bin/python bench/bench_nightly.py --size 1m --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from common import DATA_DIR, REPO, SIZES, Repeated, measure

DEMO_CONFIG = REPO / "data" / "demo" / "journey.yaml"
SOURCES = ("web", "crm", "calls")


def write_config(work: Path, raw_dirs: list[Path], warehouse: dict[str, Any] | None = None) -> Path:
    """`work/journey.yaml` reading `work/raw/` (symlinks to `raw_dirs`' files); its path."""
    work.mkdir(parents=True, exist_ok=True)
    for raw in raw_dirs:
        link_raw(work, raw)
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    data["paths"] = {
        "lake": "lake",
        "warehouse": "warehouse/cjm.duckdb",
        "reports": "reports",
        "runs": "runs",
    }
    if warehouse:
        data["warehouse"] = {**data.get("warehouse", {}), **warehouse}
    for source in data["sources"].values():  # the 100M data is gzip: *.jsonl.gz, *.csv.gz
        source["path"] += "" if source["path"].endswith("*") else "*"
    path = work / "journey.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def link_raw(work: Path, raw: Path) -> int:
    """Symlink every file of `raw/<source>/` into `work/raw/<source>/`; how many."""
    count = 0
    for source in SOURCES:
        target = work / "raw" / source
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted((raw / source).glob("*")):
            link = target / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
                count += 1
    return count


def night(config: str, as_of: str, full_rebuild: bool = False) -> dict[str, Any]:
    """Child: one night; its step seconds and the counts it saw."""
    from cjm_analytics.config import load_config
    from cjm_analytics.pipeline import run_night

    marks: list[tuple[str, float]] = []
    cfg = load_config(config)
    result = run_night(
        cfg,
        datetime.fromisoformat(as_of),
        full_rebuild,
        on_step=lambda step: marks.append((step, time.process_time())),
    )
    marks.append(("end", time.process_time()))
    if not result.succeeded:
        raise RuntimeError(f"night failed: {result.record}")
    kept = ("rows_read_count", "rows_loaded_count", "rows_rejected_count", "files_loaded_count",
            "files_skipped_count", "event_count", "customer_count", "journey_count",
            "touchpoint_count", "variant_count", "constraint_transition")  # fmt: skip
    return {
        "step_seconds": result.step_seconds,
        "step_cpu_seconds": {a[0]: b[1] - a[1] for a, b in pairwise(marks)},
        "night_seconds": sum(result.step_seconds.values()),
        **{k: result.facts.get(k) for k in kept},
    }


def fresh_work(size: str, name: str) -> Path:
    work = DATA_DIR / "work" / size / name
    shutil.rmtree(work, ignore_errors=True)
    return work


def nightly(
    size: str, data: Path, as_of: str, times: int, warehouse: dict[str, Any] | None
) -> tuple[Repeated, Path]:
    """`times` first nights, each on an empty lake and warehouse; the last work folder."""
    runs = Repeated()
    work = data
    for i in range(times):
        work = fresh_work(size, f"night-{i}")
        config = write_config(work, [data / "base" / "raw"], warehouse)
        runs.runs.append(
            measure("bench_nightly.py", "night", {"config": str(config), "as_of": as_of})
        )
    return runs, work


def incremental(work: Path, data: Path, as_of: str, times: int = 1) -> dict[str, Repeated]:
    """After a night in `work`: add the increment, run an incremental night, then a full
    rebuild of the same files (each `times` times; incremental nights repeat by undoing
    nothing, so only the first one adds data: repeats are of the full rebuild only)."""
    link_raw(work, data / "increment" / "raw")
    config = str(work / "journey.yaml")
    inc = Repeated([measure("bench_nightly.py", "night", {"config": config, "as_of": as_of})])
    published = work / "warehouse" / "cjm.duckdb"
    carried = work / "incremental-night.duckdb"
    shutil.copy(published, carried)
    full = Repeated(
        [
            measure(
                "bench_nightly.py",
                "night",
                {"config": config, "as_of": as_of, "full_rebuild": True},
            )
            for _ in range(times)
        ]
    )
    return {"incremental": inc, "full_rebuild": full}


def incremental_files(work: Path) -> tuple[Path, Path]:
    """(the incremental night's warehouse, the full rebuild's) after `incremental(work)`."""
    return work / "incremental-night.duckdb", work / "warehouse" / "cjm.duckdb"


#: Differ between a night and a full rebuild by design, and are not model results: ingest
#: bookkeeping (load times), and what changed since the night before (the rebuild's night
#: before is the incremental night itself, whose night before was the base night).
NOT_COMPARED = (
    "ingest_files",
    "ingest_rejects",
    "night_changed_customers",
    "stage_changes",
    "conversion_decomposition",
    "alerts",
)


def require_same_night(incremental_file: Path, rebuilt_file: Path) -> None:
    """The incremental night must equal the full rebuild of the same files, table by table:
    a fast wrong answer stops the benchmark."""
    from common import BenchFailure
    from compare_warehouses import DEFAULT_SKIP, compare

    problems = compare(str(incremental_file), str(rebuilt_file), DEFAULT_SKIP + NOT_COMPARED)
    if problems:
        raise BenchFailure(
            "the incremental night differs from the full rebuild: " + "; ".join(problems)
        )


def main() -> None:
    from bench_ingest import data_dir, ensure_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="1m")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    meta = ensure_data(args.size)
    data = data_dir(args.size)
    runs, work = nightly(args.size, data, meta["base"]["as_of"], args.repeat, None)
    for r in runs.runs:
        print(
            json.dumps({"wall": r.wall_seconds, "rss_mb": r.peak_rss_mb, **r.result}, default=str)
        )
    pair = incremental(work, data, meta["increment"]["as_of"])
    for name, rep in pair.items():
        r = rep.runs[0]
        print(
            name,
            json.dumps({"wall": r.wall_seconds, "rss_mb": r.peak_rss_mb, **r.result}, default=str),
        )


if __name__ == "__main__":
    main()
