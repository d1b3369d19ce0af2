"""The data, the floor, and generate + ingest.

- `ensure_data(size)`: the synthetic company at a size (bench/common.py SIZES), generated
  once into the git-ignored `bench/data/<size>-seed<seed>/` with a small increment batch
  (about 1% more events, one week after the base period, ids rewritten so they are new
  customers), plus `meta.json` with what generating took (wall time, peak RSS).
- the floor (`floor`): DuckDB reading the same raw files once, all three sources, every
  column as text (explicit dialects, nothing skipped), into a scratch file, then sorting
  the events by a customer key and time.
- `ingest_once(config)`: the product's `ingest(cfg)` into an empty lake.

    .venv/bin/python bench/bench_ingest.py --size 1m    # generate (cached) + ingest vs floor
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

from common import DATA_DIR, SEED, SIZES, BenchFailure, Clock, customers_for, measure

INCREMENT_SHARE = 0.01
INCREMENT_DAYS = 7
#: valid events per customer the generator writes over a 7-day period (measured: 2.48).
EVENTS_PER_CUSTOMER_IN_A_WEEK = 2.48


def id_rewrites(tag: str, mobile_prefix: str) -> list[tuple[re.Pattern[str], str]]:
    """Rules that give a batch of generated files identifiers of their own: event, record
    and call ids, cookies, user and contact ids and emails get `tag`; mobiles (`+49 1..`)
    start with `mobile_prefix` instead; the shared switchboard (+49 30 ...) stays shared.

    The generator numbers ids from 1 for any seed, so without this the increment would
    repeat event ids (deduplicated: nothing new) and merge strangers into existing
    customers; the 100M copies (replicate.py) use the same rules with a tag per copy."""
    rules = (
        (r"evt_", f"evt_{tag}"),
        (r"anon-", f"anon-{tag}"),
        (r"\bu(\d{8})\b", f"u{tag}\\1"),
        (r"\bR(\d{9})\b", f"R{tag}\\1"),
        (r"CRM-", f"CRM-{tag}"),
        (r"CALL-", f"CALL-{tag}"),
        (r"@", f"@{tag}."),
        (r"\+49 1", mobile_prefix),
    )
    return [(re.compile(p), r) for p, r in rules]


#: the increment's identifiers: tag `i`, mobiles +49 8..
INCREMENT_REWRITES = id_rewrites("i", "+49 8")
WEB_COLUMNS = ("event_id", "anonymous_id", "user_id", "event", "timestamp", "url", "device",
               "utm_source", "utm_medium", "utm_campaign", "email", "product_category")  # fmt: skip


def data_dir(size: str, seed: int = SEED) -> Path:
    return DATA_DIR / f"{size}-seed{seed}"


def generate_base(out: str, customers: int, seed: int, days: int = 120) -> dict[str, Any]:
    """Child: the synthetic company into `out` (raw/ + truth files)."""
    from cjm_analytics.synthetic import generate

    summary = generate(Path(out), customers=customers, seed=seed, days=days)
    return {
        "customers": customers,
        "seed": seed,
        "valid_event_count": summary.event_count,
        "row_counts": summary.row_counts,
        "as_of": summary.as_of.isoformat(),
        "generate_seconds": summary.elapsed_seconds,
    }


def generate_increment(out: str, base_events: int, seed: int, start: str) -> dict[str, Any]:
    """Child: about 1% more events, a week after the base period, with new identifiers."""
    from cjm_analytics.synthetic import generate

    scratch = Path(out) / "_scratch"
    customers = max(10, round(INCREMENT_SHARE * base_events / EVENTS_PER_CUSTOMER_IN_A_WEEK))
    summary = generate(
        scratch, customers, seed + 1000, start=date.fromisoformat(start), days=INCREMENT_DAYS
    )
    for path in sorted(scratch.glob("raw/*/*")):
        text = path.read_text(encoding="utf-8")
        for pattern, replacement in INCREMENT_REWRITES:
            text = pattern.sub(replacement, text)
        target = (
            Path(out) / path.relative_to(scratch).parent / f"{path.stem}-increment{path.suffix}"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    shutil.rmtree(scratch)
    return {
        "customers": customers,
        "valid_event_count": summary.event_count,
        "row_counts": summary.row_counts,
        "as_of": summary.as_of.isoformat(),
    }


def ensure_data(size: str, seed: int = SEED) -> dict[str, Any]:
    """The cached data of a size (generated now when missing); its meta.json."""
    if size == "100m":  # ten disjoint copies of the 10m company (replicate.py says why)
        from replicate import ensure_100m

        return ensure_100m()
    folder = data_dir(size, seed)
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        return {**json.loads(meta_path.read_text()), "cached": True}
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished earlier attempt
    base = measure("bench_ingest.py", "generate_base",
                   {"out": str(folder / "base"), "customers": customers_for(size), "seed": seed})  # fmt: skip
    start = base.result["as_of"][:10]
    increment = measure("bench_ingest.py", "generate_increment",
                        {"out": str(folder / "increment"), "seed": seed, "start": start,
                         "base_events": base.result["valid_event_count"]})  # fmt: skip
    meta = {
        "size": size,
        "base": base.result,
        "increment": increment.result,
        "generate_wall_seconds": base.wall_seconds,
        "generate_peak_rss_mb": base.peak_rss_mb,
        "raw_bytes": sum(p.stat().st_size for p in (folder / "base" / "raw").rglob("*")),
        "generated_at": datetime.now().isoformat(timespec="seconds"),
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return {**meta, "cached": False}


def _read_sql(raw: Path) -> dict[str, str]:
    """One CREATE TABLE per source: every column as text, dialects as journey.yaml's."""
    web_columns = ", ".join(f"'{c}': 'VARCHAR'" for c in WEB_COLUMNS)
    return {
        "web": f"CREATE TABLE web AS SELECT * FROM read_json('{raw}/web/*.jsonl*', "
        f"format='newline_delimited', columns={{{web_columns}}}, ignore_errors=true)",
        "crm": f"CREATE TABLE crm AS SELECT * FROM read_csv('{raw}/crm/*.csv*', delim=',', "
        "quote='\"', header=true, all_varchar=true, strict_mode=false, null_padding=true)",
        "calls": f"CREATE TABLE calls AS SELECT * FROM read_csv('{raw}/calls/*.csv*', delim=';', "
        "quote='\"', header=true, all_varchar=true, strict_mode=false, null_padding=true)",
    }


SORT_SQL = """
CREATE TABLE sorted_events AS
with events as (
    select coalesce(user_id, anonymous_id) as customer_key, event as event_name,
           try_cast(timestamp as timestamptz) as event_at
    from web
    union all
    select coalesce(contact_id, phone), activity, try_cast(occurred_at as timestamp) from crm
    union all
    select caller_phone, 'call_' || outcome, try_cast(queued_at as timestamp) from calls
)
select * from events order by customer_key, event_at
"""


def floor(raw: str, scratch: str, memory_limit: str | None = None) -> dict[str, Any]:
    """Child: DuckDB reads the raw files once (all columns, all sources), then sorts events."""
    from cjm_analytics import warehouse

    folder = Path(scratch)
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "floor.duckdb"
    database.unlink(missing_ok=True)
    con = warehouse.connect(database, memory_limit=memory_limit, temp_directory=folder / "tmp")
    con.execute("SET preserve_insertion_order = false")
    result: dict[str, Any] = {"rows": {}}
    clock = Clock()
    for name, sql in _read_sql(Path(raw)).items():
        con.execute(sql)
        result["rows"][name] = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
    result["read_seconds"], result["read_cpu_seconds"] = clock.lap()
    con.execute(SORT_SQL)
    result["sort_seconds"], result["sort_cpu_seconds"] = clock.lap()
    result["sorted_rows"] = con.execute("SELECT count(*) FROM sorted_events").fetchone()[0]  # type: ignore[index]
    con.close()
    database.unlink(missing_ok=True)
    return result


def ingest_once(config: str) -> dict[str, Any]:
    """Child: `ingest(cfg)` of every raw file into the config's (empty) lake."""
    from cjm_analytics.config import load_config
    from cjm_analytics.ingest import ingest

    clock = Clock()
    summary = ingest(load_config(config))
    if summary.failed:
        raise BenchFailure(f"ingest failed: {summary.failed[0]}")
    wall, cpu = clock.lap()
    return {
        "ingest_seconds": wall,
        "ingest_cpu_seconds": cpu,
        "rows_read": summary.rows_read,
        "rows_loaded": summary.rows_loaded,
        "rows_rejected": summary.rows_rejected,
        "events_loaded": summary.events_loaded,
        "files": len(summary.files),
    }


def main() -> None:
    from bench_nightly import write_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="1m")
    args = parser.parse_args()
    meta = ensure_data(args.size)
    work = DATA_DIR / "work" / args.size / "ingest"
    shutil.rmtree(work, ignore_errors=True)
    raw = data_dir(args.size) / "base" / "raw"
    measured_floor = measure(
        "bench_ingest.py", "floor", {"raw": str(raw), "scratch": str(work / "floor")}
    )
    config = write_config(work, [raw])
    measured_ingest = measure("bench_ingest.py", "ingest_once", {"config": str(config)})
    read = measured_floor.result["read_seconds"]
    print(
        json.dumps(
            {"data": meta, "floor": measured_floor.result, "ingest": measured_ingest.result},
            indent=2,
        )
    )
    print(
        f"generate {meta['generate_wall_seconds']:.1f} s + ingest {measured_ingest.wall_seconds:.1f} s "
        f"vs DuckDB read {read:.1f} s: ingest {measured_ingest.wall_seconds / read:.1f}x the read"
    )


if __name__ == "__main__":
    main()
