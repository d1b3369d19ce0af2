"""The mining bundle at volume: this product (DuckDB SQL + pm4py on aggregates) vs pm4py alone.

Bundle: directly-follows graph with start/end activities, performance DFG (mean and median
seconds per edge), variants, and the inductive miner's process tree. Both sides read the
same seeded synthetic log (Parquet) and run in their own subprocess, so wall time and peak
RSS are measured separately. The results must be identical (edge counts, start/end counts,
variants, tree; edge times to 1e-9 relative), otherwise the run fails loudly.

    .venv/bin/python bench/bench_mining.py --events 1000000 10000000

`bench_rows(events)` returns the result rows (used by the table printed here).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ACTIVITIES = [
    "ad_click",
    "landing_view",
    "product_view",
    "add_to_cart",
    "checkout_started",
    "support_call",
    "order_placed",
    "review_posted",
]
NOISE_THRESHOLD = 0.2

# A journey walks forward through the 8 activities, one step per 1 or 2 touchpoints; a
# touchpoint has a 6% chance to step back and 4% to jump ahead. Lengths 3..12. All
# randomness is hash(seed, journey, position): same seed, same log, on any machine.
GENERATOR_SQL = """
copy (
    with journeys as (
        select
            j,
            'J' || lpad(j::varchar, 9, '0') as journey_id,
            (3 + hash(?, j, 'len') % 10)::bigint as len,
            (1 + hash(?, j, 'speed') % 2)::bigint as speed,
            timestamp '2024-01-01' + to_seconds((hash(?, j, 'start') % 15552000)::bigint) as start_at
        from range(?) as r(j)
    ),
    steps as (
        select *, unnest(range(len)) as k from journeys
    ),
    final as (
        select
            journey_id,
            k + 1 as touchpoint_seq,
            (?::varchar[])[1 + least(7, greatest(0, k // speed + case
                when hash(?, j, k, 'noise') % 100 < 6 then -1
                when hash(?, j, k, 'noise') % 100 < 10 then 1
                else 0 end))] as event_name,
            start_at + to_seconds(k * 3600 + (hash(?, j, k, 'gap') % 3000)::bigint) as event_at
        from steps
    )
    select * from final order by journey_id, touchpoint_seq
) to '{path}' (format parquet)
"""
MEAN_LENGTH = 7.5


def generate_log(path: Path, events: int, seed: int = 7) -> None:
    """Write a seeded synthetic journey log of about `events` touchpoints to Parquet."""
    from cjm_analytics import warehouse

    journeys = max(1, round(events / MEAN_LENGTH))
    with warehouse.connection() as con:
        con.execute(
            GENERATOR_SQL.format(path=str(path).replace("'", "''")),
            [seed, seed, seed, journeys, ACTIVITIES, seed, seed, seed],
        )


def run_ours(parquet: Path, out: Path) -> dict[str, float]:
    """This product: load into DuckDB, SQL marts, inductive miner on variant counts."""
    from cjm_analytics import schema, warehouse
    from cjm_analytics.mining import (
        dfg_counts,
        discover_tree,
        load_designed_journey,
        mining_models,
        variant_counts,
    )

    _import_pm4py_untimed()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    con = warehouse.connect()
    con.execute(schema.create_table_sql("touchpoints", schema.TOUCHPOINT_COLUMNS))
    con.execute(schema.create_table_sql("journeys", schema.JOURNEY_COLUMNS))
    con.execute(
        "insert into touchpoints (journey_id, touchpoint_seq, event_name, event_at) "
        "select journey_id, touchpoint_seq, event_name, event_at from read_parquet(?)",
        [str(parquet)],
    )
    con.execute("insert into journeys (journey_id) select distinct journey_id from touchpoints")
    load_designed_journey(con, None)
    timings["load_seconds"] = time.perf_counter() - start

    start, cpu_start = time.perf_counter(), _cpu_seconds()
    models = [
        "mining_event_codes",
        "journey_steps",
        "dfg_edges",
        "journey_start_events",
        "journey_end_events",
        "variants",
    ]
    warehouse.run_models(con, mining_models(models))
    dfg = dfg_counts(con)
    performance = {
        (a, b): (mean, median)
        for a, b, mean, median in con.execute(
            "select from_event_name, to_event_name, mean_duration_seconds, median_duration_seconds from dfg_edges"
        ).fetchall()
    }
    starts = dict(
        con.execute("select event_name, journey_count from journey_start_events").fetchall()
    )
    ends = dict(con.execute("select event_name, journey_count from journey_end_events").fetchall())
    variants = variant_counts(con)
    timings["sql_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    tree = str(discover_tree(variants, NOISE_THRESHOLD))
    timings["discovery_seconds"] = time.perf_counter() - start
    timings["bundle_cpu_seconds"] = _cpu_seconds() - cpu_start
    _dump(out, dfg, starts, ends, performance, dict(variants), tree)
    return timings


def _import_pm4py_untimed() -> None:
    """Import the pm4py modules the miner uses before timing (both sides pay it untimed)."""
    from pm4py.algo.discovery.inductive.variants import im, imf  # noqa: F401
    from pm4py.objects.process_tree.utils import generic  # noqa: F401


def run_pm4py(parquet: Path, out: Path) -> dict[str, float]:
    """pm4py's own calls on a pandas frame sorted by journey and time."""
    import pandas as pd
    import pm4py

    keys = {"case_id_key": "journey_id", "activity_key": "event_name", "timestamp_key": "event_at"}
    timings: dict[str, float] = {}
    start = time.perf_counter()
    frame = pd.read_parquet(parquet, columns=["journey_id", "event_name", "event_at"])
    timings["load_seconds"] = time.perf_counter() - start

    start, cpu_start = time.perf_counter(), _cpu_seconds()
    dfg, starts, ends = pm4py.discover_dfg(frame, **keys)
    performance_dfg = pm4py.discover_performance_dfg(frame, **keys)[0]
    variants = pm4py.get_variants(frame, **keys)
    timings["sql_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    tree = str(
        pm4py.discover_process_tree_inductive(frame, noise_threshold=NOISE_THRESHOLD, **keys)
    )
    timings["discovery_seconds"] = time.perf_counter() - start
    timings["bundle_cpu_seconds"] = _cpu_seconds() - cpu_start
    performance = {edge: (v["mean"], v["median"]) for edge, v in performance_dfg.items()}
    _dump(
        out,
        dict(dfg),
        dict(starts),
        dict(ends),
        performance,
        {k: int(v) for k, v in variants.items()},
        tree,
    )
    return timings


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _dump(out: Path, *results: Any) -> None:
    with out.open("wb") as handle:
        pickle.dump(results, handle)


def compare(ours: Path, theirs: Path) -> None:
    """Raise AssertionError naming the first result that differs."""
    a = pickle.loads(ours.read_bytes())
    b = pickle.loads(theirs.read_bytes())
    for name, x, y in zip(("dfg", "start activities", "end activities"), a[:3], b[:3], strict=True):
        if x != y:
            raise AssertionError(f"{name} differ between this product and pm4py")
    if a[3].keys() != b[3].keys():
        raise AssertionError("performance DFG edges differ")
    for edge, (mean, median) in a[3].items():
        if not (
            math.isclose(mean, b[3][edge][0], rel_tol=1e-9)
            and math.isclose(median, b[3][edge][1], rel_tol=1e-9)
        ):
            raise AssertionError(f"edge time of {edge} differs: {(mean, median)} vs {b[3][edge]}")
    if a[4] != b[4]:
        raise AssertionError("variants differ")
    if a[5] != b[5]:
        raise AssertionError(f"process trees differ:\n{a[5]}\n{b[5]}")


def _side(name: str, parquet: Path, out: Path) -> dict[str, Any]:
    """Run one side in a fresh subprocess; its timings plus peak RSS."""
    completed = subprocess.run(
        [sys.executable, __file__, "--side", name, "--parquet", str(parquet), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{name} side failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def bench_rows(events: int, workdir: Path | None = None) -> list[dict[str, Any]]:
    """One row per side for a log of about `events` touchpoints (results checked identical)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp)
        parquet = folder / "log.parquet"
        generate_log(parquet, events)
        rows = [
            _side(name, parquet, folder / f"{name}.pickle") for name in ("cjm_analytics", "pm4py")
        ]
        compare(folder / "cjm_analytics.pickle", folder / "pm4py.pickle")
        stats = pickle.loads((folder / "pm4py.pickle").read_bytes())
    for row, name in zip(rows, ("cjm_analytics", "pm4py"), strict=True):
        row.update(side=name, events=events, variants=len(stats[4]), edges=len(stats[0]))
        row["bundle_seconds"] = row["sql_seconds"] + row["discovery_seconds"]
    return rows


def _child(side: str, parquet: Path, out: Path) -> None:
    timings = (run_ours if side == "cjm_analytics" else run_pm4py)(parquet, out)
    timings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--side", choices=["cjm_analytics", "pm4py"])
    parser.add_argument("--parquet", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.side:
        _child(args.side, args.parquet, args.out)
        return
    header = (
        f"{'events':>11} {'side':<14} {'load s':>7} {'DFG+perf+variants s':>20} {'IM s':>6} "
        f"{'bundle s':>9} {'bundle CPU s':>13} {'peak RSS MB':>12}"
    )
    print(header)
    for events in args.events:
        rows = bench_rows(events)
        for row in rows:
            print(
                f"{row['events']:>11,} {row['side']:<14} {row['load_seconds']:>7.2f} {row['sql_seconds']:>20.2f} "
                f"{row['discovery_seconds']:>6.2f} {row['bundle_seconds']:>9.2f} {row['bundle_cpu_seconds']:>13.2f} "
                f"{row['peak_rss_mb']:>12.0f}"
            )
        speedup = rows[1]["bundle_seconds"] / rows[0]["bundle_seconds"]
        cpu_ratio = rows[1]["bundle_cpu_seconds"] / rows[0]["bundle_cpu_seconds"]
        print(
            f"{'':>11} results identical; {rows[0]['variants']:,} variants, {rows[0]['edges']} edges; "
            f"bundle {speedup:.1f}x faster (wall), {cpu_ratio:.1f}x less CPU; load avg {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
