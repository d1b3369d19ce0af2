"""Run history: one record per nightly run (failed ones too) and per-night funnel numbers.

History lives outside the warehouse, in `paths.runs` (one folder per run), because each
night builds a brand-new warehouse file. Every new warehouse gets a copy of it as tables:

- `runs`: one row per run (id, as-of, start, end, status, rows read/loaded/rejected,
  customers, journeys, the constraint transition, the error of a failed run);
- `stage_history`: one row per succeeded run and stage (the night's `stage_funnel`);
- `segment_history`: one row per succeeded run, segment and segment value (journeys and
  conversions, for the traffic-mix decomposition in `changes.py`).

A run folder is `runs/<run_id>/` with `run.json` (written at start, rewritten at the end)
and, once the night is complete, `stage_history.parquet` and `segment_history.parquet`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cjm_analytics import warehouse
from cjm_analytics.config import IDENTIFIER_PATTERN

HISTORY_SQL = warehouse.SQL_DIR / "history"
RUN_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed")

#: The `runs` table (also the fields of `run.json`).
RUN_COLUMNS: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "as_of": pl.Datetime("us"),
    "started_at": pl.Datetime("us"),
    "ended_at": pl.Datetime("us"),
    "status": pl.String(),
    "is_full_rebuild": pl.Boolean(),
    "rows_read_count": pl.Int64(),
    "rows_loaded_count": pl.Int64(),
    "rows_rejected_count": pl.Int64(),
    "customer_count": pl.Int64(),
    "journey_count": pl.Int64(),
    "constraint_transition": pl.String(),
    "failed_step": pl.String(),
    "error_message": pl.String(),
    "report_path": pl.String(),
}


def utc_now() -> datetime:
    """Now, as a naive UTC datetime (the warehouse stores UTC without a zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id(started_at: datetime) -> str:
    """A sortable, unique run id: `20261123T020000.000123Z-1a2b`."""
    return started_at.strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(2)


@dataclass
class RunRecord:
    """One nightly run, as recorded in `runs/<run_id>/run.json` and the `runs` table."""

    run_id: str
    started_at: datetime
    as_of: datetime | None = None
    ended_at: datetime | None = None
    status: str = "running"
    is_full_rebuild: bool = False
    rows_read_count: int | None = None
    rows_loaded_count: int | None = None
    rows_rejected_count: int | None = None
    customer_count: int | None = None
    journey_count: int | None = None
    constraint_transition: str | None = None
    failed_step: str | None = None
    error_message: str | None = None
    report_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("started_at", "as_of", "ended_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return json.dumps(data, indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        data = json.loads(text)
        for key in ("started_at", "as_of", "ended_at"):
            data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def run_dir(runs_dir: Path, run_id: str) -> Path:
    return Path(runs_dir) / run_id


def save_run(runs_dir: Path, record: RunRecord) -> Path:
    """Write `run.json` atomically (a crash leaves the old record or the new one)."""
    folder = run_dir(runs_dir, record.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.json"
    tmp = path.with_name("run.json.tmp")
    tmp.write_text(record.to_json(), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_runs(runs_dir: Path) -> list[RunRecord]:
    """All recorded runs, oldest first (run ids sort by start time)."""
    records = []
    for path in sorted(Path(runs_dir).glob("*/run.json")):
        try:
            records.append(RunRecord.from_json(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError):
            continue  # a half-written record of a killed run: its .tmp never replaced it
    return records


def runs_frame(records: list[RunRecord]) -> pl.DataFrame:
    """One row per run, with the `runs` table's columns."""
    rows = [{name: getattr(r, name) for name in RUN_COLUMNS} for r in records]
    return pl.DataFrame(rows, schema=RUN_COLUMNS)


def _history_sql(name: str) -> str:
    return (HISTORY_SQL / f"{name}.sql").read_text(encoding="utf-8").strip().rstrip(";")


def _succeeded_files(runs_dir: Path, name: str, exclude: str) -> list[str]:
    ok = {r.run_id for r in load_runs(runs_dir) if r.status == "succeeded" and r.run_id != exclude}
    return [str(p) for p in sorted(Path(runs_dir).glob(f"*/{name}.parquet")) if p.parent.name in ok]


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def segment_columns(con: duckdb.DuckDBPyConnection, segments: list[str]) -> list[str]:
    """The configured segments that `journeys` has as columns (validated identifiers)."""
    present = set(_table_columns(con, "journeys"))
    return [s for s in segments if re.match(IDENTIFIER_PATTERN, s) and s in present]


def night_segment_sql(columns: list[str]) -> str:
    """Journeys and conversions per segment value of this night (generated: validated names)."""
    if not columns:
        return (
            "SELECT getvariable('run_id') AS run_id, getvariable('as_of') AS as_of, "
            "'all' AS segment, 'all' AS segment_value, count(*) AS journey_count, "
            "count(*) FILTER (WHERE is_converted) AS converted_count FROM journeys"
        )
    casts = ", ".join(f'coalesce(CAST("{c}" AS VARCHAR), \'(none)\') AS "{c}"' for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    return _history_sql("night_segment_history").format(casts=casts, names=names)


def install_history(
    con: duckdb.DuckDBPyConnection,
    runs_dir: Path,
    run_id: str,
    as_of: datetime,
    segments: list[str],
) -> None:
    """Create `stage_history` and `segment_history`: past succeeded nights plus this one."""
    warehouse.set_variables(con, {"run_id": run_id, "as_of": as_of})
    night = {
        "stage_history": _history_sql("night_stage_history"),
        "segment_history": night_segment_sql(segment_columns(con, segments)),
    }
    for table, query in night.items():
        con.execute("BEGIN")
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {query}")
        past = _succeeded_files(runs_dir, table, exclude=run_id)
        if past:
            con.execute(
                f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?, union_by_name = true)",
                [past],
            )
        con.execute("COMMIT")


def persist_night(con: duckdb.DuckDBPyConnection, runs_dir: Path, run_id: str) -> None:
    """Save this night's rows of the history tables beside its `run.json`."""
    folder = run_dir(runs_dir, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    for table in ("stage_history", "segment_history"):
        target = folder / f"{table}.parquet"
        tmp = folder / f"{table}.parquet.tmp"
        con.sql(f"SELECT * FROM {table} WHERE run_id = ?", params=[run_id]).write_parquet(str(tmp))
        os.replace(tmp, target)


def install_runs(con: duckdb.DuckDBPyConnection, runs_dir: Path, current: RunRecord) -> None:
    """Create `runs`: every recorded run, with the current one as it will be published."""
    records = [r for r in load_runs(runs_dir) if r.run_id != current.run_id] + [current]
    frame = runs_frame(records)  # noqa: F841 (read by DuckDB below)
    con.execute("BEGIN")
    con.execute("CREATE OR REPLACE TABLE runs AS SELECT * FROM frame ORDER BY started_at")
    con.execute("COMMIT")
