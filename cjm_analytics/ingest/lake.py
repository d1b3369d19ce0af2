"""The event lake: immutable Parquet files, plus a small DuckDB state file with the manifest.

Layout (see docs/adr/0006-lake-and-manifest.md):

    <lake>/events/source=<name>/event_date=<YYYY-MM-DD>/part-<sha256[:16]>-<i>.parquet
    <lake>/state.duckdb    ingest_files, lake_files, loaded_event_ids, ingest_rejects,
                           file_hashes (input files' stat cache),
                           identity_map, identity_customers (cjm_analytics/identity)

A file's Parquet parts are written first; then one transaction records the file in the
manifest, its parts, its event ids and its rejects. A kill before the commit leaves parts
that no manifest row lists (never read, overwritten by the rerun, which writes the same
names); a kill after it leaves a finished file that the rerun skips.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig
from cjm_analytics.schema import LAKE_EVENT_COLUMNS, create_table_sql

STATE_FILE = "state.duckdb"
EVENTS_DIR = "events"

INGEST_FILE_COLUMNS: dict[str, str] = {
    "source_file": "VARCHAR",
    "source": "VARCHAR",
    "sha256": "VARCHAR",
    "status": "VARCHAR",  # loaded | empty
    "message": "VARCHAR",
    "rows_read": "BIGINT",
    "rows_loaded": "BIGINT",
    "rows_rejected": "BIGINT",
    "events_loaded": "BIGINT",
    "loaded_at": "TIMESTAMP",
    # the as-of the file's rows were checked against: later events were "in the future"
    "future_after": "TIMESTAMP",
}
REJECT_COLUMNS: dict[str, str] = {
    "source": "VARCHAR",
    "source_file": "VARCHAR",
    "source_row": "BIGINT",
    "column_name": "VARCHAR",
    "reason": "VARCHAR",
    "raw_line": "VARCHAR",  # emails and phone numbers masked (pii.redact)
    "rejected_at": "TIMESTAMP",
}
_STATE_TABLES: dict[str, dict[str, str]] = {
    "ingest_files": INGEST_FILE_COLUMNS,
    "lake_files": {
        "sha256": "VARCHAR",
        "source": "VARCHAR",
        "path": "VARCHAR",
        "event_count": "BIGINT",
    },
    "loaded_event_ids": {"source": "VARCHAR", "event_id": "VARCHAR", "source_file": "VARCHAR"},
    "ingest_rejects": REJECT_COLUMNS,
    # the stat cache of input files' content hashes (file_sha256, ADR 0112)
    "file_hashes": {
        "path": "VARCHAR",
        "device": "UBIGINT",
        "inode": "UBIGINT",
        "size_bytes": "BIGINT",
        "mtime_ns": "BIGINT",
        "ctime_ns": "BIGINT",
        "sha256": "VARCHAR",
        "hashed_at_ns": "BIGINT",
    },
}
#: A file changed less than this long before it was hashed is not cached: a later write
#: in the same timestamp tick would leave its times as they were (git's "racy" files).
RACY_NANOSECONDS = 2_000_000_000


def state_path(cfg: JourneyConfig) -> Path:
    return cfg.lake_dir / STATE_FILE


def open_state(cfg: JourneyConfig, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The lake's state file (created with its tables when missing)."""
    cfg.lake_dir.mkdir(parents=True, exist_ok=True)
    settings = cfg.warehouse
    con = warehouse.connect(
        state_path(cfg),
        read_only=read_only,
        memory_limit=settings.memory_limit,
        threads=settings.threads,
        temp_directory=cfg.resolve(settings.temp_directory) if settings.temp_directory else None,
    )
    if not read_only:
        existing = {
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        for name, columns in _STATE_TABLES.items():
            if name not in existing:
                con.execute(create_table_sql(name, columns))
        # lakes from before future_after was recorded (their files read loaded_at instead)
        con.execute("ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS future_after TIMESTAMP")
    return con


def first_ingested(state_file: Path) -> dict[tuple[str, str], datetime]:
    """(source, sha256) -> the as-of that content's rows were first checked against (naive
    UTC), from a lake's manifest; empty when there is none. A full rebuild checks "future"
    events of a file against this moment, as the night that first loaded it did."""
    if not state_file.is_file():
        return {}
    with warehouse.connection(state_file, read_only=True) as con:
        rows = con.execute(
            "SELECT source, sha256, min(coalesce(future_after, loaded_at)) FROM ingest_files "
            "GROUP BY source, sha256"
        ).fetchall()
    return {(source, sha): at for source, sha, at in rows}


def _stat_key(path: Path, stat: os.stat_result) -> list[Any]:
    return [
        str(path.absolute()),
        stat.st_dev,
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ctime_ns,
    ]


def file_sha256(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """The sha256 of a file's content, read again only when the file may have changed.

    The state keeps each file's hash with its device, inode, size, modification and change
    times when it was hashed (like git's index, rsync's quick check plus the change time,
    which no tool can set back). A file whose stat is unchanged is not read again: a night
    no longer reads every old input file in full only to learn that it is already loaded.
    A file written to during the read, or less than `RACY_NANOSECONDS` before it, is
    hashed but not cached. `--full-rebuild` starts a new state, so it reads every file.
    """
    before = path.stat()
    key = _stat_key(path, before)
    known = con.execute(
        "SELECT sha256 FROM file_hashes WHERE path = ? AND device = ? AND inode = ? "
        "AND size_bytes = ? AND mtime_ns = ? AND ctime_ns = ?",
        key,
    ).fetchone()
    if known is not None:
        return str(known[0])
    started = time.time_ns()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    sha256 = digest.hexdigest()
    after = path.stat()
    settled = max(after.st_mtime_ns, after.st_ctime_ns) < started - RACY_NANOSECONDS
    if _stat_key(path, after) == key and settled:
        con.execute("BEGIN")
        con.execute("DELETE FROM file_hashes WHERE path = ?", key[:1])
        con.execute(
            "INSERT INTO file_hashes VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [*key, sha256, started]
        )
        con.execute("COMMIT")
    return sha256


def is_loaded(con: duckdb.DuckDBPyConnection, source: str, sha256: str) -> str | None:
    """The file that already brought this content into the lake, if any."""
    row = con.execute(
        "SELECT source_file FROM ingest_files WHERE source = ? AND sha256 = ?", [source, sha256]
    ).fetchall()
    return str(row[0][0]) if row else None


def write_parts(
    events: pa.Table, lake_dir: Path, source: str, sha256: str
) -> list[tuple[str, int]]:
    """Write one file's events as Parquet parts by event date; returns (relative path, rows)."""
    if events.num_rows == 0:
        return []
    base = lake_dir / EVENTS_DIR / f"source={source}"
    dates = pc.cast(events["event_at"], pa.date32())
    table = events.append_column("event_date", dates)
    written: list[tuple[str, int]] = []

    def visit(written_file: ds.WrittenFile) -> None:
        rows = written_file.metadata.num_rows if written_file.metadata is not None else 0
        written.append((str(Path(written_file.path).relative_to(lake_dir)), rows))

    ds.write_dataset(
        table,
        base,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("event_date", pa.date32())]), flavor="hive"),
        basename_template=f"part-{sha256[:16]}-{{i}}.parquet",
        existing_data_behavior="overwrite_or_ignore",
        file_visitor=visit,
        use_threads=False,
        # one partition per event date: a log spanning years has more than Arrow's default 1024
        max_partitions=max(1024, len(pc.unique(dates))),
    )
    return sorted(written)


def commit_file(
    con: duckdb.DuckDBPyConnection,
    record: dict[str, object],
    parts: list[tuple[str, int]],
    rejects: pa.Table,
) -> None:
    """Record one finished file in the manifest, in one transaction with its ids and rejects."""
    con.execute("BEGIN")
    try:
        columns = list(INGEST_FILE_COLUMNS)
        con.execute(
            f"INSERT INTO ingest_files ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [record[c] for c in columns],
        )
        con.register(
            "new_parts",
            pa.table(
                {
                    "path": pa.array([path for path, _ in parts], pa.string()),
                    "event_count": pa.array([rows for _, rows in parts], pa.int64()),
                }
            ),
        )
        con.execute(
            "INSERT INTO lake_files SELECT ?, ?, path, event_count FROM new_parts",
            [record["sha256"], record["source"]],
        )
        con.unregister("new_parts")
        con.execute(
            "INSERT INTO loaded_event_ids SELECT ?, event_id, ? FROM file_events",
            [record["source"], record["source_file"]],
        )
        con.register("new_rejects", rejects)
        con.execute("INSERT INTO ingest_rejects SELECT * FROM new_rejects")
        con.unregister("new_rejects")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def load_lake(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """Create the view `stg_events` and the tables `ingest_files`, `ingest_rejects`.

    Grains: stg_events one row per loaded lake event (key source, event_id); ingest_files one
    row per loaded input file (key source, sha256); ingest_rejects one row per rejected input
    row (key source_file, source_row). Only Parquet parts listed in the manifest are read.
    """
    parts: list[tuple[str, str, str]] = []
    if not state_path(cfg).exists():
        tables = {"ingest_files": None, "ingest_rejects": None, "lake_files": None}
    else:
        lake_dir = cfg.lake_dir.absolute()  # resolved once, not per part
        with warehouse.connection(state_path(cfg), read_only=True) as state:
            tables = {
                name: state.sql(f"SELECT * FROM {name}").to_arrow_table()
                for name in ("ingest_files", "ingest_rejects")
            }
            parts = [
                (source, sha256, str(lake_dir / p))  # absolute: the view outlives the cwd
                for source, sha256, p in state.execute(
                    "SELECT source, sha256, path FROM lake_files ORDER BY path"
                ).fetchall()
            ]
    con.execute("BEGIN")
    # every part of one input file is written at once, with one schema: one footer per file
    one_per_file = {(source, sha256): path for source, sha256, path in parts}
    _create_stg_events(con, [path for _, _, path in parts], list(one_per_file.values()))
    _write_event_parts(con, parts)
    for name, columns_spec in (
        ("ingest_files", INGEST_FILE_COLUMNS),
        ("ingest_rejects", REJECT_COLUMNS),
    ):
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(create_table_sql(name, columns_spec))
        data = tables.get(name)
        if data is not None:
            con.register("state_rows", data)
            con.execute(f"INSERT INTO {name} SELECT * FROM state_rows")
            con.unregister("state_rows")
    con.execute("COMMIT")


def _create_stg_events(
    con: duckdb.DuckDBPyConnection, paths: list[str], schema_paths: list[str]
) -> None:
    """`stg_events` as a VIEW over the manifest's Parquet parts (ADR 0090): the wide event
    table is written once, as `events`, by identity.stitch (which then points this view at
    `events`, as a full rebuild renames the lake); not copied here first."""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'stg_events' "
        "AND table_schema = 'main' AND table_catalog = current_database()"
    ).fetchall()
    if kind:
        con.execute("DROP VIEW stg_events" if kind[0][0] == "VIEW" else "DROP TABLE stg_events")
    con.execute(f"CREATE VIEW stg_events AS {parts_select_sql(con, paths, schema_paths)}")


def parts_select_sql(
    con: duckdb.DuckDBPyConnection, paths: list[str], schema_paths: list[str] | None = None
) -> str:
    """A SELECT of the lake event columns (LAKE_EVENT_COLUMNS, in order) from these Parquet
    parts, read in the order given; with no parts, a SELECT of no rows. The columns stored
    are read from the footers of `schema_paths` (default: every part), which must cover
    every schema among the parts: at 10M the lake has about 4,000 parts from 32 files."""
    if not paths:
        columns = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in LAKE_EVENT_COLUMNS.items())
        return f"SELECT {columns} WHERE false"
    # a column added to the contract later (source_event_seq, ADR 0063) is NULL in the
    # parts written before it
    schemas = {
        tuple(sorted(map(tuple, r[0])))
        for r in con.execute(
            "SELECT list((name, duckdb_type)) FROM parquet_schema(?) GROUP BY file_name",
            [schema_paths or paths],
        ).fetchall()
    }
    stored = {column[0] for schema in schemas for column in schema}
    columns = ", ".join(
        f"CAST({c if c in stored else 'NULL'} AS {t}) AS {c}" for c, t in LAKE_EVENT_COLUMNS.items()
    )
    # a view cannot hold bound parameters: the manifest's paths (not config values) are
    # written as SQL string literals, quotes doubled
    listed = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
    # with one schema among the parts, binding reads one footer; union_by_name reads every
    # part's (10M: 3,993 parts, 0.45-0.62 -> 0.04 s)
    union = "true" if len(schemas) > 1 else "false"
    return (
        f"SELECT {columns} "
        f"FROM read_parquet([{listed}], hive_partitioning = false, union_by_name = {union})"
    )


#: TEMP table of load_lake: every Parquet part of stg_events with the file content it came
#: from (source, sha256: the key of ingest_files' loaded files), for readers that need only
#: some files' events (the incremental stitch reads tonight's new files only).
EVENT_PARTS = "stg_event_parts"


def _write_event_parts(con: duckdb.DuckDBPyConnection, parts: list[tuple[str, str, str]]) -> None:
    names = ("source", "sha256", "path")
    rows = pa.table(
        {name: pa.array([part[i] for part in parts], pa.string()) for i, name in enumerate(names)}
    )
    con.register("event_parts_rows", rows)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {EVENT_PARTS} AS SELECT * FROM event_parts_rows")
    con.unregister("event_parts_rows")
