"""Identity stitching at size: N customers built directly as stg_events, then `stitch`;
or the incremental night: `stitch` against `stitch_incremental` on the cached bench data.

    .venv/bin/python bench/bench_stitch.py --customers 1000000
    CJM_PII_SALT=bench-salt-0123456789abcdef \
        .venv/bin/python bench/bench_stitch.py --incremental 1m --work /tmp/stitch-work/bench

Synthetic mode: each customer gets 1-4 cookies (one logs in with the user id), a user id, an
email on a login event, and every third one a CRM contact with email and phone; 1% of CRM
rows use one switchboard phone. No files, no ingest: this measures the graph work and the
`events` write.

Incremental mode (ADR 0091): bench/data/<size>-seed7's base is ingested and built (load_lake
+ stitch) as night 1, then its increment is ingested; night 2 is then built from copies of
night 1's warehouse file and identity state, once with `stitch` and once with
`stitch_incremental`, each `--repeat` times, and the two warehouses and states are compared.
Prints CPU seconds (process_time: all threads) of load_lake, the stitch and its state save.
The increment's customers are all new (ADR 0072); `--held-out` measures returning customers
instead: night 1 is the whole lake less 1% of its events (by a hash of the key), night 2
adds them back (stg_events as a table; the new rows are found by key, not by file).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("CJM_PII_SALT", "bench-salt-not-a-secret-0123456789")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cjm_analytics import warehouse
from cjm_analytics.config import parse_config
from cjm_analytics.identity import stitch
from cjm_analytics.ingest import lake
from cjm_analytics.schema import LAKE_EVENT_COLUMNS, create_table_sql

EVENTS_SQL = """
INSERT INTO stg_events (event_id, source, event_name, event_at, channel, cookie_id, user_id,
    email_hash, phone_hash, contact_id)
WITH people AS (SELECT range AS p FROM range(?)),
cookies AS (SELECT p, unnest(range(1 + p % 4)) AS k FROM people),
web AS (  -- a few page views per cookie, the first cookie logs in with the user id
    SELECT 'w' || p || '-' || k || '-' || v AS event_id, 'web' AS source, 'page_view' AS event_name,
        TIMESTAMP '2024-01-01' + to_seconds(p % 86400 + v) AS event_at, 'web' AS channel,
        'c' || p || '-' || k AS cookie_id,
        CASE WHEN k = 0 AND v = 0 THEN 'u' || p END AS user_id,
        CASE WHEN k = 0 AND v = 1 THEN 'm' || p END AS email_hash,
        NULL AS phone_hash, NULL AS contact_id
    FROM cookies, range(3) AS t(v)
),
crm AS (
    SELECT 'r' || p, 'crm', 'contact_created', TIMESTAMP '2024-01-02', 'crm', NULL, NULL,
        'm' || p, CASE WHEN p % 100 = 0 THEN 'switchboard' ELSE 'ph' || p END, 'k' || p
    FROM people WHERE p % 3 = 0
)
SELECT * FROM web UNION ALL SELECT * FROM crm
"""


def main(customers: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cfg = parse_config({"paths": {"lake": "lake"}, "sources": {"web": {
            "path": "x/*.csv", "format": "csv", "channel": "web",
            "columns": {"event_name": "e", "event_at": "t"}, "identifiers": {"cookie": "c"},
        }}}, Path(folder))  # fmt: skip
        with warehouse.connection(Path(folder) / "wh.duckdb") as con:
            con.execute(create_table_sql("stg_events", LAKE_EVENT_COLUMNS))
            began = time.perf_counter()
            con.execute(EVENTS_SQL, [customers])
            built = time.perf_counter() - began
            began = time.perf_counter()
            summary = stitch(con, cfg)
            first = time.perf_counter() - began
            began = time.perf_counter()
            again = stitch(con, cfg)
            second = time.perf_counter() - began
    print(
        f"{customers} customers, {summary.event_count} events, {summary.identifier_count} identifiers"
    )
    print(f"built stg_events in {built:.1f} s")
    print(f"stitch, first night (no state): {first:.1f} s -> {summary.customer_count} customers, "
          f"{summary.shared_identifier_count} shared, {summary.iterations} iterations")  # fmt: skip
    print(f"stitch, same night again (with state): {second:.1f} s -> {again.customer_count} customers, "
          f"{again.merge_count} merges")  # fmt: skip


def prepare_nights(data: Path, work: Path) -> tuple[Path, Path, Path]:
    """Night 1 built in `work`; returns (journey.yaml, night-1 warehouse, state snapshot
    after the increment was ingested). Reused when `work` already holds them."""
    from bench_nightly import link_raw, write_config

    from cjm_analytics.config import load_config
    from cjm_analytics.ingest import ingest, load_lake

    night1, state = work / "night1.duckdb", work / "state-night2.duckdb"
    config = work / "journey.yaml"
    if night1.exists() and state.exists():
        return config, night1, state
    shutil.rmtree(work, ignore_errors=True)
    meta = json.loads((data / "meta.json").read_text())
    cfg = load_config(write_config(work, [data / "base" / "raw"]))
    ingest(cfg, datetime.fromisoformat(meta["base"]["as_of"]))
    with warehouse.connection(work / "building.duckdb") as con:
        load_lake(con, cfg)
        stitch(con, cfg, now=datetime.fromisoformat(meta["base"]["as_of"]))
        con.execute("CHECKPOINT")
    (work / "building.duckdb").rename(night1)
    link_raw(work, data / "increment" / "raw")
    ingest(cfg, datetime.fromisoformat(meta["increment"]["as_of"]))
    shutil.copy(lake.state_path(cfg), state)
    return config, night1, state


#: CPU seconds spent saving the identity state (the bench wraps the two save functions)
SAVED = [0.0]


def time_state_saves() -> None:
    from cjm_analytics.identity import full, incremental

    # wrapped where they are called: stitch (full) and stitch_incremental (incremental)
    for module, name in ((full, "_save_state"), (incremental, "_save_state_increment")):
        original = getattr(module, name)

        def timed(*args: Any, _original: Any = original) -> None:
            began = time.process_time()
            _original(*args)
            SAVED[0] += time.process_time() - began

        setattr(module, name, timed)


def load_lake_view(con: Any, cfg: Any) -> None:
    from cjm_analytics.ingest import load_lake

    load_lake(con, cfg)


def night2(
    config: Path, night1: Path, state: Path, way: str, now: datetime, load: Any = load_lake_view
) -> dict[str, Any]:
    """One night 2 build from copies of night 1 (`load` makes its stg_events): CPU seconds."""
    from cjm_analytics import identity
    from cjm_analytics.config import load_config

    cfg = load_config(config)
    shutil.copy(state, lake.state_path(cfg))
    target = config.parent / f"{night1.stem}-night2-{way}.duckdb"
    shutil.copy(night1, target)
    SAVED[0] = 0.0
    with warehouse.connection(target) as con:
        began, wall = time.process_time(), time.perf_counter()
        load(con, cfg)
        loaded = time.process_time()
        run = identity.stitch if way == "full" else identity.stitch_incremental
        summary = run(con, cfg, now)
        stitched, wall = time.process_time(), time.perf_counter() - wall
        con.execute("CHECKPOINT")
        checkpoint = time.process_time() - stitched
    shutil.copy(lake.state_path(cfg), config.parent / f"{night1.stem}-state-{way}.duckdb")
    return {
        "load": loaded - began, "stitch": stitched - loaded, "state_save": SAVED[0],
        "checkpoint": checkpoint, "wall": wall, "mode": summary.mode,
        "fallback": summary.fallback_reason, "scope": summary.scope_customer_count,
        "events": summary.event_count, "customers": summary.customer_count,
    }  # fmt: skip


def same_state(a: Path, b: Path) -> list[str]:
    """Identity state tables that differ between two state files (EXCEPT ALL both ways)."""
    problems = []
    with warehouse.connection() as con:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        for table in ("identity_state_map", "identity_customers", "identity_state_rounds",
                      "identity_state_settings"):  # fmt: skip
            differ = con.execute(
                f"SELECT (SELECT count(*) FROM (FROM a.{table} EXCEPT ALL FROM b.{table})) + "
                f"(SELECT count(*) FROM (FROM b.{table} EXCEPT ALL FROM a.{table}))"
            ).fetchall()[0][0]
            if differ:
                problems.append(f"state {table}: {differ} rows differ")
    return problems


#: the held-out night 2: 1% of all lake events, chosen by a hash of their key
HELD_OUT = "hash(source || ':' || event_id) % 100 = 0"


def prepare_held_out(config: Path, state: Path) -> tuple[Path, Path]:
    """Night 1 of the returning-customers case: stg_events = the lake (base + increment)
    without the held-out 1%, stitched from an empty identity state; its file and state."""
    from cjm_analytics.config import load_config

    work = config.parent
    night1, held_state = work / "held-out.duckdb", work / "held-out-state.duckdb"
    if night1.exists() and held_state.exists():
        return night1, held_state
    cfg = load_config(config)
    shutil.copy(state, lake.state_path(cfg))
    with warehouse.connection(lake.state_path(cfg)) as con:
        for table in ("identity_state_map", "identity_customers", "identity_state_rounds",
                      "identity_state_settings"):  # fmt: skip
            con.execute(f"DROP TABLE IF EXISTS {table}")
    with warehouse.connection(work / "building.duckdb") as con:
        load_lake_view(con, cfg)
        con.execute("CREATE TABLE stg_all AS SELECT * FROM stg_events")
        con.execute("DROP VIEW stg_events")
        con.execute(f"CREATE TABLE stg_events AS SELECT * FROM stg_all WHERE NOT ({HELD_OUT})")
        stitch(con, cfg, now=datetime(2026, 6, 2))
        con.execute("CHECKPOINT")
    (work / "building.duckdb").rename(night1)
    shutil.copy(lake.state_path(cfg), held_state)
    return night1, held_state


def add_held_out(con: Any, cfg: Any) -> None:
    con.execute(f"INSERT INTO stg_events SELECT * FROM stg_all WHERE {HELD_OUT}")


def incremental_main(size: str, work: Path, repeat: int, held_out: bool) -> None:
    from compare_warehouses import compare

    data = Path(__file__).resolve().parent / "data" / f"{size}-seed7"
    config, night1, state = prepare_nights(data, work)
    load = load_lake_view
    if held_out:
        night1, state = prepare_held_out(config, state)
        load = add_held_out
    now = datetime.fromisoformat(json.loads((data / "meta.json").read_text())["increment"]["as_of"])
    time_state_saves()
    for i in range(repeat):
        for way in ("full", "incremental"):
            result = night2(config, night1, state, way, now, load)
            print(f"run {i + 1} {way}: " + ", ".join(
                f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
            ), flush=True)  # fmt: skip
    built = {way: work / f"{night1.stem}-night2-{way}.duckdb" for way in ("full", "incremental")}
    problems = compare(str(built["full"]), str(built["incremental"]), skip=("stitch_scope",))
    problems = [p for p in problems if p != "only in b: ['stitch_scope']"]
    problems += same_state(
        *(work / f"{night1.stem}-state-{way}.duckdb" for way in ("full", "incremental"))
    )
    print("night 2 full vs incremental:", problems or "identical")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--incremental", metavar="SIZE", help="e.g. 1m: bench/data/1m-seed7")
    parser.add_argument("--work", type=Path, default=Path("/tmp/stitch-work/bench"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--held-out",
        action="store_true",
        help="night 2 = 1%% of all events held out of night 1 (returning customers)",
    )
    args = parser.parse_args()
    if args.incremental:
        incremental_main(args.incremental, args.work, args.repeat, args.held_out)
    else:
        main(args.customers)
