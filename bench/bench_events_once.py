"""CPU of load_lake + stitch into a fresh warehouse file (ADR 0090: `events` written once).

    .venv/bin/python bench/bench_events_once.py --out bench/data/events-once --label after

Needs a lake in `<out>/lake` (for example copied from a bench_stitch_synthetic.py run). The
identity state is reset first, so every run is a first night. The warehouse is kept as
`<out>/<label>.duckdb` so that two runs' `events` can be compared (EXCEPT ALL both ways).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("CJM_PII_SALT", "bench-salt-not-a-secret-0123456789")

from bench_stitch_synthetic import config_for

from cjm_analytics import warehouse
from cjm_analytics.identity import stitch
from cjm_analytics.ingest import lake


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(out: Path, label: str) -> None:
    cfg = config_for(out)
    with lake.open_state(cfg) as state:
        state.execute("DROP TABLE IF EXISTS identity_state_map")
        state.execute("DROP TABLE IF EXISTS identity_customers")
    database = out / f"{label}.duckdb"
    database.unlink(missing_ok=True)
    with warehouse.connection(database) as con:
        began, cpu = time.perf_counter(), cpu_seconds()
        lake.load_lake(con, cfg)
        middle = cpu_seconds()
        stitch(con, cfg)
        end = cpu_seconds()
        events = con.execute("SELECT count(*) FROM events").fetchone()
    print(f"{label}: load_lake cpu {middle - cpu:.1f} s, stitch cpu {end - middle:.1f} s, "
          f"total cpu {end - cpu:.1f} s, wall {time.perf_counter() - began:.1f} s, "
          f"events {events[0]:,}, file {database.stat().st_size / 1e6:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--label", required=True)
    args = parser.parse_args()
    main(args.out.resolve(), args.label)
