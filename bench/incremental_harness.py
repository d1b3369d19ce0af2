"""Profile the incremental night quickly: one first night kept as a base, then incremental
nights on copies of it, with the pipeline's debug log (every model's seconds) on stderr.

Not a benchmark (the benchmark's numbers come from bench/run.py): a night on a copied
folder rehashes every raw file once (the file-hash cache is keyed by absolute path), about
2 s at 10M that the benchmark's incremental night does not pay.

    .venv/bin/python bench/incremental_harness.py base            # once: the first night
    .venv/bin/python bench/incremental_harness.py inc 2> inc.log  # each try
    .venv/bin/python bench/incremental_harness.py full 2> full.log  # the full rebuild of a copy

`--memory-limit 3GB` gives the base (and the nights on its copies) the benchmark's DuckDB
memory limit; without it DuckDB takes 80% of the memory and nothing spills.
`--keep-fingerprint` lets an incremental night carry a base built by other code (the
code's fingerprint otherwise forces a full rebuild); use it only for code whose results
equal the base's. `--time-build` logs the build step's parts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_ingest import data_dir, ensure_data
from bench_nightly import link_raw, write_config
from common import BENCH_PII_SALT, DATA_DIR

QUIET = ("prefect", "httpx", "asyncio", "urllib3", "matplotlib", "PIL", "numexpr", "graphviz")


def _timed(module: Any, name: str) -> None:
    """Log the wall and CPU seconds of each call of module.name."""
    function = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        logging.getLogger("harness").info(
            "%s: %.2f s, %.2f CPU s", name, time.perf_counter() - wall, time.process_time() - cpu
        )
        return result

    setattr(module, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["base", "inc", "full"])
    parser.add_argument("--size", default="10m")
    parser.add_argument("--base", type=Path, default=DATA_DIR / "harness" / "base")
    parser.add_argument("--work", type=Path, default=DATA_DIR / "harness" / "work")
    parser.add_argument("--keep-fingerprint", action="store_true")
    parser.add_argument("--time-build", action="store_true")
    parser.add_argument(
        "--memory-limit", help="DuckDB memory_limit of the base night, e.g. 3GB (the benchmark's)"
    )
    args = parser.parse_args()
    os.environ.setdefault("CJM_PII_SALT", BENCH_PII_SALT)
    meta, data = ensure_data(args.size), data_dir(args.size)
    logging.basicConfig(
        level=logging.DEBUG, format="%(relativeCreated)8.0f %(name)s %(message)s", stream=sys.stderr
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)

    from cjm_analytics import incremental, pipeline
    from cjm_analytics.config import load_config

    if args.mode == "base":
        shutil.rmtree(args.base, ignore_errors=True)
        settings = {"memory_limit": args.memory_limit, "temp_directory": "tmp"}
        raw = [data / "base" / "raw"]
        config = write_config(args.base, raw, settings if args.memory_limit else None)
        as_of, work = "base", args.base
    else:
        shutil.rmtree(args.work, ignore_errors=True)
        subprocess.run(["cp", "-a", str(args.base), str(args.work)], check=True)
        link_raw(args.work, data / "increment" / "raw")
        config, as_of, work = args.work / "journey.yaml", "increment", args.work
        os.sync()
    if args.keep_fingerprint and args.mode == "inc":
        import duckdb

        published = args.base / "warehouse" / "cjm.duckdb"
        with duckdb.connect(str(published), read_only=True) as con:
            kept = con.execute("SELECT fingerprint FROM build_info").fetchone()[0]  # type: ignore[index]
        incremental.fingerprint = lambda cfg: kept  # type: ignore[assignment]
    if args.time_build:
        from cjm_analytics import identity, ingest

        for module, name in ((ingest, "load_lake"), (identity, "stitch_incremental"),
                             (pipeline, "_changed_customers"), (incremental, "start_build"),
                             (ingest, "ingest")):  # fmt: skip
            _timed(module, name)
    os.chdir(work)
    wall, cpu = time.perf_counter(), time.process_time()
    result = pipeline.run_night(
        load_config(str(config)),
        datetime.fromisoformat(meta[as_of]["as_of"]),
        args.mode == "full",
        on_step=lambda step: logging.getLogger("harness").info("step %s starts", step),
    )
    print(
        json.dumps(
            {
                "ok": result.succeeded,
                "wall": round(time.perf_counter() - wall, 2),
                "cpu": round(time.process_time() - cpu, 1),
                "steps": {k: round(v, 2) for k, v in result.step_seconds.items()},
                "sum": round(sum(result.step_seconds.values()), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
