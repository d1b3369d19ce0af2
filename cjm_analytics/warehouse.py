"""The one place that opens DuckDB: connections, the sql/ model runner, and publishing.

Rules this module enforces (see docs/adr):
- one read-write connection per process and per thread; analysts open the published file
  read-only;
- models are plain SELECT statements in `sql/<layer>/<relation>.sql`, run in layer order
  (staging, intermediate, marts) and, inside a layer, in dependency order;
- config values reach SQL as DuckDB variables (`getvariable('name')`) or bound
  parameters, never pasted into SQL text;
- a night is published by building a new file and `os.replace`-ing it over the old one,
  so readers always see one whole night.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from cjm_analytics.errors import WarehouseError

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
LAYERS: tuple[str, ...] = ("staging", "intermediate", "marts")
#: DuckDB 1.5 clients (analysts' CLI, DBeaver) must be able to open the published file.
STORAGE_COMPATIBILITY = "v1.5.0"
_VARIABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def connect(
    path: str | Path | None = None,
    *,
    read_only: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
    temp_directory: str | Path | None = None,
    fsync: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open DuckDB (in memory when `path` is None) with the pipeline's settings.

    `fsync=False` is for a file nobody reads until `publish`, which syncs it once (the
    night's build file, ADR 0117): DuckDB's commits then leave writing to the OS."""
    config: dict[str, Any] = {}
    if path is not None and not read_only:
        config["storage_compatibility_version"] = STORAGE_COMPATIBILITY
        if not fsync:
            config["fsync_mode"] = "none"
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    if temp_directory:
        config["temp_directory"] = str(temp_directory)
    database = ":memory:" if path is None else str(path)
    try:
        con = duckdb.connect(database, read_only=read_only, config=config)
    except duckdb.IOException as exc:
        raise WarehouseError(
            f"cannot open DuckDB file {database} ({'read-only' if read_only else 'read-write'}): "
            f"{exc}. Another process may hold it read-write; analysts should open the "
            f"published warehouse with read_only=True"
        ) from None
    _disable_progress_bar(con)
    con.execute("SET TimeZone = 'UTC'")
    return con


def quote_identifier(name: str) -> str:
    """A table or column name as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """`with transaction(con):` BEGIN, then COMMIT, or ROLLBACK if the block raises."""
    con.execute("BEGIN")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _disable_progress_bar(con: duckdb.DuckDBPyConnection) -> None:
    """No progress bar on stdout. Inside Jupyter without ipywidgets DuckDB refuses to touch
    the setting at all ("required package 'ipywidgets' is missing"); there the bar cannot
    render either, so the refusal is harmless and an analyst's notebook must still connect."""
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException as exc:
        if "ipywidgets" not in str(exc):
            raise


@contextmanager
def connection(
    path: str | Path | None = None, **kwargs: Any
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect()` as a context manager that always closes."""
    con = connect(path, **kwargs)
    try:
        yield con
    finally:
        con.close()


def set_variables(con: duckdb.DuckDBPyConnection, variables: Mapping[str, Any]) -> None:
    """Expose values to SQL models as `getvariable('name')`; values are bound, never pasted."""
    for name, value in variables.items():
        if not _VARIABLE_NAME.match(name):
            raise WarehouseError(f"invalid SQL variable name {name!r}: use lower_snake_case")
        con.execute(f"SET VARIABLE {name} = ?", [value])


@dataclass(frozen=True)
class Model:
    """One sql/ model: `layer/name.sql` becomes the table `name`."""

    layer: str
    name: str
    path: Path

    @functools.cached_property
    def sql(self) -> str:
        """The model's SELECT, read once per Model (a process runs the models it loaded)."""
        return self.path.read_text(encoding="utf-8").strip().rstrip(";")


def discover_models(sql_dir: Path = SQL_DIR, layers: tuple[str, ...] = LAYERS) -> list[Model]:
    """All models in layer order, and inside a layer in dependency order."""
    ordered: list[Model] = []
    for layer in layers:
        folder = sql_dir / layer
        models = (
            [Model(layer, p.stem, p) for p in sorted(folder.glob("*.sql"))]
            if folder.is_dir()
            else []
        )
        ordered.extend(_dependency_order(models))
    return ordered


def _dependency_order(models: list[Model]) -> list[Model]:
    """Topological order of models by the relation names their SQL mentions."""
    by_name = {m.name: m for m in models}
    # the relation names a model mentions: its words (a name is a word: [a-z0-9_]), once
    deps = {
        m.name: set(re.findall(r"\w+", _strip_comments(m.sql))) & set(by_name) - {m.name}
        for m in models
    }
    ordered: list[Model] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise WarehouseError(f"sql models form a cycle through {name!r}")
        visiting.add(name)
        for dep in sorted(deps[name]):
            visit(dep)
        visiting.discard(name)
        done.add(name)
        ordered.append(by_name[name])

    for name in sorted(by_name):
        visit(name)
    return ordered


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


#: Models whose SQL returns the input of a Python function that writes the table (model
#: name -> "module:function", called with the connection and the model): for a computation
#: SQL does slowly: the Kaplan-Meier estimate per segment group (ADR 0121); or for a model
#: whose one statement spills: `touchpoints`, written in ranges of customers (ADR 0126).
FINISHED_IN_PYTHON: dict[str, str] = {
    "touchpoints": "cjm_analytics.journeys:materialize_touchpoints",
    "int_stage_time_to_next": "cjm_analytics.journeys:materialize_time_to_next",
}


def run_models(
    con: duckdb.DuckDBPyConnection,
    models: list[Model] | None = None,
) -> list[str]:
    """Materialize each model as a table, each in its own transaction; returns table names."""
    built: list[str] = []
    for model in models if models is not None else discover_models():
        began, began_cpu = time.perf_counter(), time.process_time()
        try:
            with transaction(con):
                if model.name in FINISHED_IN_PYTHON:
                    _finisher(model.name)(con, model)
                else:
                    con.execute(f'CREATE OR REPLACE TABLE "{model.name}" AS {model.sql}')
        except duckdb.Error as exc:
            raise WarehouseError(f"sql model {model.layer}/{model.name}.sql failed: {exc}") from exc
        built.append(model.name)
        log.debug(
            "model %s/%s: %.2f s, %.2f CPU s",
            model.layer,
            model.name,
            time.perf_counter() - began,
            time.process_time() - began_cpu,
        )
    return built


def _finisher(name: str) -> Callable[[duckdb.DuckDBPyConnection, Model], None]:
    module, function = FINISHED_IN_PYTHON[name].split(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


def run_sql_tests(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> dict[str, int]:
    """Run sql/tests/*.sql (queries that must return no rows); returns failing row counts."""
    failures: dict[str, int] = {}
    folder = sql_dir / "tests"
    for path in sorted(folder.glob("*.sql")) if folder.is_dir() else []:
        query = path.read_text(encoding="utf-8").strip().rstrip(";")
        count = con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]  # type: ignore[index]
        if count:
            failures[path.stem] = int(count)
    return failures


def publish(built: Path, target: Path, keep_previous: bool = True) -> Path:
    """Atomically replace `target` by the finished file `built` (same folder, closed).

    Readers holding the old file open keep their snapshot; new connections see the new
    night. The previous file is kept as `<target>.previous` for rollback: a second name
    (hard link) of the old file, not a copy; nothing writes to a published file, so the two
    names can share it. Where hard links are refused, it is copied.

    `built` is flushed to disk before the rename, and the folder after it: a machine that
    crashes right after publishing still has the whole new night under the name (the
    build file is written without DuckDB's fsyncs, ADR 0117).
    """
    built, target = Path(built), Path(target)
    if not built.is_file():
        raise WarehouseError(f"nothing to publish: {built} does not exist")
    target.parent.mkdir(parents=True, exist_ok=True)
    stale_wal = target.with_name(target.name + ".wal")
    if stale_wal.exists():
        stale_wal.unlink()
    if keep_previous and target.exists():
        previous = target.with_name(target.name + ".previous")
        staged = previous.with_name(previous.name + ".tmp")
        staged.unlink(missing_ok=True)
        try:
            os.link(target, staged)
        except OSError:  # a file system without hard links
            shutil.copy2(target, staged)
        os.replace(staged, previous)
    sync_file(built)
    os.replace(built, target)
    sync_file(target.parent)
    return target


def sync_file(path: Path) -> None:
    """Flush a file's (or a folder's entries') writes to stable storage; a file gone
    meanwhile (a failed night's, removed) has nothing left to flush."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
