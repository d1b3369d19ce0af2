"""What a night left on disk, read-only: the published warehouse, the lake and its manifest,
the run records, and leftovers. Shared by the crash, idempotence and PII tests.

`state_facts(cfg)` returns plain JSON-able facts; `mart_digest(con)` returns one content
digest per warehouse table with the run's own columns (ids, clock times) left out, so two
nights over the same data compare equal table by table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from cjm_analytics import history, warehouse
from cjm_analytics.config import JourneyConfig
from cjm_analytics.ingest import lake

#: Tables about the run itself or about earlier nights (their content depends on how many
#: nights succeeded before, not on the data of this night).
RUN_TABLES = frozenset(
    {
        "runs",
        "stage_history",
        "segment_history",
        "stage_changes",
        "conversion_decomposition",
        "alerts",
        "build_info",  # how this night was built (incremental or not, and why)
        "night_changed_customers",  # against the night published before it
    }
)
#: Columns that hold the wall clock or the run's id, not data.
RUN_COLUMNS = frozenset(
    {
        "run_id",
        "previous_run_id",
        "loaded_at",
        "rejected_at",
        "merged_at",
        "future_after",
        "started_at",
        "ended_at",
        "report_path",
    }
)


def tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables "  # stg_events is a view (ADR 0090)
            "WHERE table_schema = 'main' AND table_catalog = current_database() ORDER BY 1"
        ).fetchall()
    ]


def mart_digest(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """One row per data table: (row count, order-free sum of row hashes over data columns)."""
    digest = {}
    for table in tables(con):
        if table in RUN_TABLES:
            continue
        columns = [
            # floating sums depend on the order threads add them up: compare 9 digits
            f'round("{name}", 9)' if kind in ("DOUBLE", "FLOAT") else f'"{name}"'
            for name, kind in con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = ? ORDER BY column_index",
                [table],
            ).fetchall()
            if name not in RUN_COLUMNS
        ]
        row_hash = "hash(" + ", ".join(columns) + ")"
        count, total = con.execute(
            f'SELECT count(*), coalesce(sum({row_hash}::HUGEINT), 0) FROM "{table}"'
        ).fetchone()  # type: ignore[misc]
        digest[table] = (int(count), str(total))
    return digest


def warehouse_facts(path: Path) -> dict[str, Any]:
    """The published night: its run id, the counts it recorded and the counts it holds."""
    if not path.exists():
        return {"exists": False}
    with warehouse.connection(path, read_only=True) as con:
        names = tables(con)
        run = con.execute(
            "SELECT run_id, journey_count, customer_count, report_path FROM runs "
            "WHERE status = 'succeeded' ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        count = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in names}  # type: ignore[index]
        history_runs = sorted(
            r[0] for r in con.execute("SELECT DISTINCT run_id FROM stage_history").fetchall()
        )
        return {
            "exists": True,
            "tables": names,
            "run_id": run[0] if run else None,
            "recorded_journey_count": run[1] if run else None,
            "recorded_customer_count": run[2] if run else None,
            "report_exists": bool(run and run[3] and Path(run[3]).is_file()),
            "report_of_this_run": bool(run and run[3] and run[0] in run[3]),
            "count": count,
            "customer_count": con.execute(
                "SELECT count(DISTINCT customer_id) FROM journeys"
            ).fetchone()[0],  # type: ignore[index]
            "history_run_ids": history_runs,
            "events_duplicated": con.execute(
                "SELECT count(*) - count(DISTINCT (source, event_id)) FROM events"
            ).fetchone()[0],  # type: ignore[index]
            "digest": mart_digest(con),
        }


def lake_facts(cfg: JourneyConfig) -> dict[str, Any]:
    """The manifest against the Parquet parts on disk: what is counted, what is orphaned."""
    state = lake.state_path(cfg)
    if not state.exists():
        return {"exists": cfg.lake_dir.exists(), "has_state": False}
    with warehouse.connection(state, read_only=True) as con:
        listed = [r[0] for r in con.execute("SELECT path FROM lake_files").fetchall()]
        one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        facts: dict[str, Any] = {
            "exists": True,
            "has_state": True,
            "files": one("SELECT count(*) FROM ingest_files"),
            "rows_read": one("SELECT coalesce(sum(rows_read), 0) FROM ingest_files"),
            "rows_loaded": one("SELECT coalesce(sum(rows_loaded), 0) FROM ingest_files"),
            "rows_rejected": one("SELECT coalesce(sum(rows_rejected), 0) FROM ingest_files"),
            "events_loaded": one("SELECT coalesce(sum(events_loaded), 0) FROM ingest_files"),
            "reject_rows": one("SELECT count(*) FROM ingest_rejects"),
            "part_events": one("SELECT coalesce(sum(event_count), 0) FROM lake_files"),
            "loaded_ids": one("SELECT count(*) FROM loaded_event_ids"),
            "distinct_loaded_ids": one(
                "SELECT count(DISTINCT (source, event_id)) FROM loaded_event_ids"
            ),
            "missing_parts": [p for p in listed if not (cfg.lake_dir / p).is_file()],
        }
        on_disk = {
            str(p.relative_to(cfg.lake_dir))
            for p in (cfg.lake_dir / lake.EVENTS_DIR).rglob("*.parquet")
        }
        facts["orphan_parts"] = len(on_disk - set(listed))
        paths = [str(cfg.lake_dir / p) for p in listed]
        if paths:
            facts["parquet_rows"], facts["parquet_distinct_ids"] = con.execute(
                "SELECT count(*), count(DISTINCT (source, event_id)) FROM read_parquet(?, hive_partitioning = false)",
                [paths],
            ).fetchone()  # type: ignore[misc]
        else:
            facts["parquet_rows"] = facts["parquet_distinct_ids"] = 0
    return facts


def state_facts(cfg: JourneyConfig) -> dict[str, Any]:
    target = cfg.warehouse_path
    return {
        "warehouse": warehouse_facts(target),
        "lake": lake_facts(cfg),
        "runs": [(r.run_id, r.status) for r in history.load_runs(cfg.runs_dir)],
        "building_files": sorted(p.name for p in target.parent.glob(f"{target.stem}.building-*")),
        "rebuild_lakes": sorted(
            p.name for p in cfg.lake_dir.parent.glob(f"{cfg.lake_dir.name}.rebuild-*")
        ),
    }
