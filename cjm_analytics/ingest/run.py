"""`ingest(cfg)`: every new file of every source into the lake, with per-file accounting."""

from __future__ import annotations

import glob
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from cjm_analytics import pii
from cjm_analytics.config import CsvDialect, JourneyConfig, SourceConfig
from cjm_analytics.errors import IngestError
from cjm_analytics.ingest import lake
from cjm_analytics.ingest._sql import generated_names, run
from cjm_analytics.ingest.csv_source import EmptyFileError, delimiter_hint, read_csv_file
from cjm_analytics.ingest.jsonl_source import read_jsonl_file
from cjm_analytics.ingest.mapping import needed_columns, time_columns
from cjm_analytics.ingest.normalize import (
    FileContext,
    normalize,
    register_file_events,
    reject_loaded_duplicates,
)
from cjm_analytics.ingest.parquet_source import read_parquet_file, read_xes_file
from cjm_analytics.ingest.raw import RawFile, create_read_rejects


@dataclass(frozen=True)
class FileResult:
    """One input file's outcome. Invariant: rows_read = rows_loaded + rows_rejected."""

    source: str
    source_file: str
    status: str  # loaded | skipped | empty | failed
    sha256: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    events_loaded: int = 0
    message: str | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestSummary:
    """All files of one ingest run."""

    files: list[FileResult]

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def events_loaded(self) -> int:
        return sum(f.events_loaded for f in self.files)

    @property
    def files_loaded(self) -> int:
        return sum(f.status == "loaded" for f in self.files)

    @property
    def files_skipped(self) -> int:
        return sum(f.status == "skipped" for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]


#: Files in progress at once (ADR 0124): a file is read and checked while the file before
#: it is committed. The commits keep the files' order, so the lake and its manifest are
#: the same as with one file at a time.
INGEST_WORKERS = 2


def ingest(
    cfg: JourneyConfig,
    as_of: datetime | None = None,
    first_ingested: Mapping[tuple[str, str], datetime] | None = None,
) -> IngestSummary:
    """Load every file not yet in the manifest; events after `as_of` (default now) are rejected.

    `first_ingested` ((source, sha256) -> when that content was first ingested, from the
    manifest a full rebuild replaces): such a file is checked against that moment, not
    now, so a rebuild rejects exactly the "future" rows the nights before it rejected
    and gives the same lake (lake.first_ingested)."""
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    salt = cfg.pii_salt()
    files = [
        (name, source, path)
        for name, source in cfg.sources.items()
        for path in find_files(cfg, source)
    ]
    con = lake.open_state(cfg)
    try:
        results = _ingest_files(con, cfg, files, as_of, first_ingested, salt)
    finally:
        con.close()
    return IngestSummary(results)


class _Turns:
    """The order of the files' commits: file i commits after file i - 1 has finished. When
    a file fails unexpectedly, the files after it commit nothing."""

    def __init__(self, count: int) -> None:
        self._done = [threading.Event() for _ in range(count)]
        self.stopped = threading.Event()

    def wait_for(self, index: int) -> None:
        if index > 0:
            self._done[index - 1].wait()
        if self.stopped.is_set():
            raise IngestError("ingest stopped: an earlier file failed")

    def done(self, index: int) -> None:
        self._done[index].set()


def _ingest_files(
    con: duckdb.DuckDBPyConnection,
    cfg: JourneyConfig,
    files: list[tuple[str, SourceConfig, Path]],
    as_of: datetime,
    first: Mapping[tuple[str, str], datetime] | None,
    salt: str,
) -> list[FileResult]:
    """Every file on a connection of its own (the TEMP tables of reading and checking are
    per connection), INGEST_WORKERS at a time; results in the files' order."""
    turns = _Turns(len(files))
    opening = threading.Lock()

    def one(index: int, name: str, source: SourceConfig, path: Path) -> FileResult:
        try:
            with opening:
                cursor = con.cursor()
            try:
                sha = lake.file_sha256(cursor, path)
                file_as_of = _first_ingested(first, name, sha, as_of)
                return _ingest_file(
                    cursor,
                    cfg,
                    name,
                    source,
                    path,
                    file_as_of,
                    salt,
                    sha,
                    my_turn=lambda: turns.wait_for(index),
                )
            finally:
                cursor.close()
        except BaseException:
            turns.stopped.set()
            raise
        finally:
            turns.done(index)

    with ThreadPoolExecutor(max_workers=INGEST_WORKERS, thread_name_prefix="cjm-ingest") as pool:
        futures = [pool.submit(one, i, *file) for i, file in enumerate(files)]
        try:
            return [future.result() for future in futures]
        except BaseException:
            turns.stopped.set()
            pool.shutdown(cancel_futures=True)
            raise


def _first_ingested(
    first: Mapping[tuple[str, str], datetime] | None, source: str, sha: str, as_of: datetime
) -> datetime:
    """The moment this content was first ingested (aware UTC), if earlier than `as_of`."""
    if not first:
        return as_of
    earlier = first.get((source, sha))
    return min(as_of, earlier.replace(tzinfo=UTC)) if earlier is not None else as_of


def find_files(cfg: JourneyConfig, source: SourceConfig) -> list[Path]:
    """The files a source's glob matches (relative to journey.yaml), in name order."""
    pattern = str(cfg.resolve(source.path))
    return sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())


def _display_path(cfg: JourneyConfig, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(cfg.base_dir.resolve()))
    except ValueError:
        return str(path)


def _ingest_file(
    con: duckdb.DuckDBPyConnection,
    cfg: JourneyConfig,
    name: str,
    source: SourceConfig,
    path: Path,
    as_of: datetime,
    salt: str,
    sha: str,
    my_turn: Callable[[], None],
) -> FileResult:
    """Read and check one file, then (after `my_turn()` returns: the earlier files are
    committed) reject the ids earlier files loaded and commit it."""
    shown = _display_path(cfg, path)
    ctx = FileContext(name, shown, as_of, salt, cfg.pii.default_country_code)
    prepared: tuple[RawFile, pa.Table] | FileResult | str | None = None
    if lake.is_loaded(con, name, sha) is None:  # else skipped below: nothing to read
        try:
            create_read_rejects(con)
            raw = read_source_file(con, cfg, source, path)
            prepared = (raw, normalize(con, raw, source, ctx))
        except EmptyFileError as exc:
            prepared = _as_shown(exc, path, shown)
        except (IngestError, duckdb.Error) as exc:
            prepared = _failed(name, shown, sha, exc, path)
    my_turn()
    # again in file order: an earlier file of this run may have brought the same content
    earlier = lake.is_loaded(con, name, sha)
    if earlier is not None:
        note = None if earlier == shown else f"same content as {earlier}"
        return FileResult(name, shown, "skipped", sha, message=note)
    if isinstance(prepared, FileResult):
        return prepared
    if prepared is None:  # not loaded before its turn, so not after it either
        raise AssertionError(f"{shown}: left out of the manifest")
    if isinstance(prepared, str):
        return _commit_empty(con, name, shown, sha, prepared, as_of)
    raw, events = prepared
    try:
        events = reject_loaded_duplicates(con, events, name)
    except duckdb.Error as exc:
        return _failed(name, shown, sha, exc, path)
    return _commit(con, cfg, raw, ctx, sha, events)


def _failed(name: str, shown: str, sha: str, exc: Exception, path: Path) -> FileResult:
    return FileResult(name, shown, "failed", sha, message=_as_shown(exc, path, shown))


def _as_shown(exc: Exception, path: Path, shown: str) -> str:
    """An error's message with the file named as the manifest shows it."""
    return str(exc).replace(str(path), shown)


def read_source_file(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, source: SourceConfig, path: Path
) -> RawFile:
    """Dispatch to the reader of the source's format; applies `join` when configured."""
    if source.join is None:
        return _read_format(con, path, source.format, source, source.csv, source.explode)
    join_path = cfg.resolve(source.join.path)
    join_raw = _read_format(con, join_path, source.join.format, source, source.join.csv)
    _keep_join_rows(con, join_path)
    raw = _read_format(con, path, source.format, source, source.csv, source.explode)
    return _apply_join(con, raw, join_raw.columns, source)


def _read_format(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    format_: str,
    source: SourceConfig,
    dialect: CsvDialect,
    explode: str | None = None,
) -> RawFile:
    if not path.is_file():
        raise IngestError(f"{path}: file not found")
    if format_ == "csv":
        raw = read_csv_file(con, path, dialect)
        missing = [c for c in needed_columns(source) if c not in raw.columns]
        if missing and source.join is None:
            raise IngestError(
                f"{path}: column(s) {missing} named in journey.yaml are not in the header "
                f"{list(raw.columns)[:40]}{delimiter_hint(path, dialect)}"
            )
        return raw
    if format_ == "jsonl":
        return read_jsonl_file(con, path, needed_columns(source), explode)
    if format_ == "parquet":
        return read_parquet_file(con, path, time_columns(source), needed_columns(source))
    return read_xes_file(con, path, time_columns(source))


def _keep_join_rows(con: duckdb.DuckDBPyConnection, join_path: Path) -> None:
    bad = con.execute(
        "SELECT source_row, reason FROM read_rejects ORDER BY source_row LIMIT 1"
    ).fetchall()
    if bad:
        raise IngestError(f"join file {join_path}: row {bad[0][0]}: {bad[0][1]}; fix the join file")
    con.execute("CREATE OR REPLACE TEMP TABLE join_rows AS SELECT * FROM raw_rows")
    create_read_rejects(con)


def _apply_join(
    con: duckdb.DuckDBPyConnection, main: RawFile, join_names: dict[str, str], source: SourceConfig
) -> RawFile:
    """raw_rows := main rows joined to the join file's rows on `join.on` (join columns win)."""
    assert source.join is not None
    join_columns = [
        r[0]
        for r in con.execute("SELECT name FROM pragma_table_info('join_rows')").fetchall()
        if r[0] not in ("source_row", "line")
    ]
    renamed = generated_names(len(join_columns), "j")
    keys = source.join.on
    missing = [k for k in keys if k not in main.columns or k not in join_names]
    if missing:
        raise IngestError(f"join.on: key column(s) {missing} must be in both files")
    on = " AND ".join(f"m.{main.columns[k]} = j.{join_names[k]}" for k in keys)
    key_list = ", ".join(join_names[k] for k in keys)
    dup = con.execute(
        f"SELECT min(source_row), count(*) FROM join_rows GROUP BY {key_list} HAVING count(*) > 1 LIMIT 1"
    ).fetchall()
    if dup:
        raise IngestError(
            f"join file {source.join.path}: row {dup[0][0]}: the key {keys} occurs {dup[0][1]} times; keys must be unique"
        )
    selected = ", ".join(f"j.{c} AS {r}" for c, r in zip(join_columns, renamed, strict=True))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE raw_rows AS SELECT m.*, {selected}, j.source_row IS NOT NULL AS has_join_match "
        f"FROM raw_rows m LEFT JOIN join_rows j ON {on} ORDER BY m.source_row"
    )
    if source.join.how == "inner":
        run(
            con,
            f"INSERT INTO read_rejects SELECT source_row, NULL, 'no row in the join file with the same ' || $keys, "
            f"{main.raw_line_sql} FROM raw_rows WHERE NOT has_join_match",
            {**main.params, "keys": ", ".join(keys)},
        )
        con.execute("DELETE FROM raw_rows WHERE NOT has_join_match")
    columns = dict(main.columns)
    for source_name, generated in join_names.items():
        if source_name not in keys:
            columns[source_name] = renamed[join_columns.index(generated)]
    return RawFile(columns, main.raw_line_sql, main.params, main.element_sql)


def _commit_empty(
    con: duckdb.DuckDBPyConnection,
    name: str,
    shown: str,
    sha: str,
    message: str,
    as_of: datetime,
) -> FileResult:
    record = _record(name, shown, sha, "empty", message, as_of, 0, 0, 0, 0)
    register_file_events(con, pa.table({"event_id": pa.array([], pa.string())}))
    lake.commit_file(con, record, [], _rejects_table([]))
    return FileResult(name, shown, "empty", sha, message=message)


def _record(
    name: str,
    shown: str,
    sha: str,
    status: str,
    message: str | None,
    as_of: datetime,
    *counts: int,
) -> dict[str, object]:
    read, loaded, rejected, events = counts
    return {
        "source_file": shown,
        "source": name,
        "sha256": sha,
        "status": status,
        "message": message,
        "rows_read": read,
        "rows_loaded": loaded,
        "rows_rejected": rejected,
        "events_loaded": events,
        "loaded_at": datetime.now(UTC).replace(tzinfo=None),
        "future_after": as_of.astimezone(UTC).replace(tzinfo=None),
    }


def _commit(
    con: duckdb.DuckDBPyConnection,
    cfg: JourneyConfig,
    raw: RawFile,
    ctx: FileContext,
    sha: str,
    events: pa.Table,
) -> FileResult:
    raw_count = _count(con, "SELECT count(DISTINCT source_row) FROM raw_rows")
    read_rejected = _count(con, "SELECT count(*) FROM read_rejects")
    row_rejected = _count(con, "SELECT count(*) FROM row_rejects")
    loaded = pc.count_distinct(events["source_row"]).as_py()
    events_loaded = events.num_rows
    rows_read, rows_rejected = raw_count + read_rejected, read_rejected + row_rejected
    if rows_read != loaded + rows_rejected:
        raise AssertionError(
            f"{ctx.source_file}: {rows_read} rows read != {loaded} loaded + {rows_rejected} rejected"
        )
    rejects = _collect_rejects(con, raw, ctx)
    parts = lake.write_parts(events, cfg.lake_dir, ctx.source, sha)
    record = _record(
        ctx.source,
        ctx.source_file,
        sha,
        "loaded",
        None,
        ctx.as_of,
        rows_read,
        loaded,
        rows_rejected,
        events_loaded,
    )
    lake.commit_file(con, record, parts, rejects)
    reasons = Counter(reason_kind(r) for r in rejects.column("reason").to_pylist())
    return FileResult(
        ctx.source,
        ctx.source_file,
        "loaded",
        sha,
        rows_read,
        loaded,
        rows_rejected,
        events_loaded,
        reject_reasons=dict(reasons.most_common()),
    )


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchall()
    return int(row[0][0]) if row else 0


def _collect_rejects(con: duckdb.DuckDBPyConnection, raw: RawFile, ctx: FileContext) -> pa.Table:
    """read_rejects + row_rejects, one row each, with PII masked in the raw line (only the
    rejected rows of `raw_rows` and `checked` are read)."""
    rows = run(
        con,
        "SELECT source_row, column_name, reason, raw_line, [] AS pii_values FROM read_rejects "
        "UNION ALL "
        f"SELECT f.source_row, f.column_name, f.reason, {raw.raw_line_sql} AS raw_line, "
        "coalesce(p.pii_values, []) FROM row_rejects f "
        "JOIN (SELECT DISTINCT ON (source_row) * FROM raw_rows "
        "SEMI JOIN row_rejects USING (source_row)) USING (source_row) "
        "LEFT JOIN (SELECT source_row, list_distinct(list(email_text) || list(phone_text)) AS pii_values "
        "FROM checked SEMI JOIN row_rejects USING (source_row) GROUP BY source_row) p "
        "USING (source_row) ORDER BY 1",
        raw.params,
    ).fetchall()
    return _rejects_table(
        [
            (ctx.source, ctx.source_file, r[0], r[1], r[2], pii.redact(r[3], r[4] or []))
            for r in rows
        ]
    )


def _rejects_table(rows: list[tuple[object, ...]]) -> pa.Table:
    now = datetime.now(UTC).replace(tzinfo=None)
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in range(6)]
    return pa.table(
        {
            "source": pa.array(columns[0], pa.string()),
            "source_file": pa.array(columns[1], pa.string()),
            "source_row": pa.array(columns[2], pa.int64()),
            "column_name": pa.array(columns[3], pa.string()),
            "reason": pa.array(columns[4], pa.string()),
            "raw_line": pa.array(columns[5], pa.string()),
            "rejected_at": pa.array([now] * len(rows), pa.timestamp("us")),
        }
    )


_VALUE_IN_REASON = re.compile(r"'[^']*'|\b[0-9a-f]{12,}\b|[^ ]*\d[^ ]*")


def reason_kind(reason: str) -> str:
    """A reject reason without its values, for counting reasons of the same kind."""
    return re.sub(r"\s+", " ", _VALUE_IN_REASON.sub("…", reason)).strip()[:120]
