"""One nightly run in plain Python: the steps the Prefect flow calls as tasks.

ingest -> build a NEW warehouse file beside the published one (load the lake, stitch) ->
stages and journeys -> mining -> history and what changed -> report -> publish (CHECKPOINT,
close, atomic `os.replace`; the previous file stays as `<warehouse>.previous`).

Every step is a small function of a `Night` (what the run is) that returns the facts it
learned as a dict; `run_night` merges them and records the run in `paths.runs` whether it
succeeds or fails. A run that raises, or is killed, never touches the published file:
the half-built file is only ever `<warehouse stem>.building-<run_id>.duckdb`, removed by the
failure handler or by the next run.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from cjm_analytics import changes, history, incremental, warehouse
from cjm_analytics.config import JourneyConfig
from cjm_analytics.errors import WarehouseError
from cjm_analytics.history import RunRecord, utc_now

#: The lake's state file (manifest, identity state): see cjm_analytics/ingest/lake.py.
STATE_FILE = "state.duckdb"

if TYPE_CHECKING:  # mining is imported by the step that runs it
    from cjm_analytics.mining import Discovery

log = logging.getLogger(__name__)
STEPS: tuple[str, ...] = ("ingest", "build", "stages", "mining", "changes", "report", "publish")
Facts = dict[str, Any]


@dataclass(frozen=True)
class Night:
    """One nightly run: its id, the config it runs with and where it writes."""

    cfg: JourneyConfig
    run_id: str
    started_at: datetime
    as_of: datetime | None
    is_full_rebuild: bool
    build_path: Path
    out_dir: Path
    lake_swap: tuple[Path, Path] | None = None  # (rebuilt lake, published lake) on a full rebuild
    plan: incremental.Plan = incremental.NOT_PLANNED


@dataclass
class RunResult:
    """What a finished night reports back to the CLI, the flow and the tests."""

    record: RunRecord
    warehouse_path: Path
    report_path: Path | None
    facts: Facts = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.record.status == "succeeded"


def building_path(target: Path, run_id: str) -> Path:
    """The file a run builds beside the published warehouse."""
    return target.with_name(f"{target.stem}.building-{run_id}{target.suffix}")


_RUN_LOCKS: dict[str, int] = {}
#: run id -> the pm4py discovery its mining step left running; finished at publish, where
#: it writes `discovered_model_edges` (ADR 0123). Nothing after mining reads that table or
#: the model files, so the discovery runs beside changes, report and publish.
_DISCOVERIES: dict[str, Discovery] = {}


def _acquire_run_lock(target: Path, run_id: str) -> None:
    """One run per warehouse at a time: an exclusive lock on `<warehouse>.lock`, held until
    the run publishes or fails (the OS releases it if the process dies)."""
    path = target.with_name(target.name + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WarehouseError(
            f"another nightly run is building {target} (it holds {path}); "
            "wait for it to finish, or stop it first"
        ) from None
    _RUN_LOCKS[run_id] = fd


def _release_run_lock(run_id: str) -> None:
    fd = _RUN_LOCKS.pop(run_id, None)
    if fd is not None:
        os.close(fd)


def _remove_stale_builds(target: Path) -> None:
    for stale in target.parent.glob(f"{target.stem}.building-*{target.suffix}*"):
        stale.unlink(missing_ok=True)


def recover_lake_swap(lake_dir: Path, target: Path) -> list[Path]:
    """Finish or clean up what a killed full rebuild left (call under the run lock).

    A full rebuild publishes the warehouse, then renames the lake to `.previous` and its
    rebuilt lake `<lake>.rebuild-<run_id>` into place. Killed between those two renames, the
    lake is missing while the warehouse already shows that run: its rebuilt lake is put in
    place. Every other `.rebuild-*` folder is a rebuild that never published: removed.
    Returns the folders removed."""
    rebuilt = {
        p.name.split(".rebuild-", 1)[1]: p
        for p in lake_dir.parent.glob(f"{lake_dir.name}.rebuild-*")
    }
    if rebuilt and not lake_dir.exists():
        published = _published_run_id(target)
        if published in rebuilt:
            rebuilt.pop(published).rename(lake_dir)
            log.warning("moved the rebuilt lake of published run %s into %s", published, lake_dir)
    for stale in rebuilt.values():
        shutil.rmtree(stale)
    return list(rebuilt.values())


def recover_run_records(runs_dir: Path, target: Path) -> list[RunRecord]:
    """Runs still recorded as `running` when a new run holds the lock ended without saving
    their outcome (killed, or the machine stopped). The one the published file shows as its
    latest night was published before it died: saved as succeeded from the file's own
    `runs` row, so history, what-changed and `runs` count that night. The others are saved
    as failed. Returns the records rewritten."""
    published = _published_run(target)
    rewritten = []
    for record in history.load_runs(runs_dir):
        if record.status != "running":
            continue
        if published is not None and record.run_id == published.run_id:
            record = published
        else:
            record.status = "failed"
            record.error_message = "the run ended without recording its outcome (killed?)"
        history.save_run(runs_dir, record)
        rewritten.append(record)
        log.warning("run %s had no recorded outcome: recorded as %s", record.run_id, record.status)
    return rewritten


def _published_run_id(target: Path) -> str | None:
    published = _published_run(target)
    return published.run_id if published else None


def _published_run(target: Path) -> RunRecord | None:
    """The published file's latest succeeded run, from its `runs` table."""
    if not target.is_file():
        return None
    try:
        with warehouse.connection(target, read_only=True) as con:
            cursor = con.execute(
                "SELECT * FROM runs WHERE status = 'succeeded' ORDER BY started_at DESC LIMIT 1"
            )
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description or []]
    except duckdb.Error:
        return None  # not a warehouse of ours (no runs table): adopt nothing
    if row is None:
        return None
    known = {k: v for k, v in zip(names, row, strict=True) if k in RunRecord.__dataclass_fields__}
    return RunRecord(**known)


def start_night(
    cfg: JourneyConfig, as_of: datetime | None = None, full_rebuild: bool = False
) -> Night:
    """Record a new run as `running` and prepare where it builds (old half-built files go)."""
    started_at = utc_now()
    run_id = history.new_run_id(started_at)
    target = cfg.warehouse_path
    target.parent.mkdir(parents=True, exist_ok=True)
    _acquire_run_lock(target, run_id)
    try:
        _remove_stale_builds(target)  # safe: no other run holds the lock
        recover_lake_swap(cfg.lake_dir, target)
        recover_run_records(cfg.runs_dir, target)
        night = _prepare(cfg, run_id, started_at, as_of, full_rebuild)
        history.save_run(cfg.runs_dir, _record(night, {}, status="running"))
    except BaseException:
        _release_run_lock(run_id)
        raise
    return night


def _prepare(
    cfg: JourneyConfig,
    run_id: str,
    started_at: datetime,
    as_of: datetime | None,
    full_rebuild: bool,
) -> Night:
    lake_swap = None
    plan = incremental.plan(cfg, full_rebuild)
    log.info("night %s: %s", run_id, plan.reason)
    if full_rebuild:
        rebuilt = cfg.lake_dir.with_name(f"{cfg.lake_dir.name}.rebuild-{run_id}")
        lake_swap = (rebuilt, cfg.lake_dir)
        carry_identity_state(cfg.lake_dir / STATE_FILE, rebuilt / STATE_FILE)
        cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"lake": str(rebuilt)})})
    return Night(
        cfg=cfg,
        run_id=run_id,
        started_at=started_at,
        as_of=as_of,
        is_full_rebuild=full_rebuild,
        build_path=building_path(cfg.warehouse_path, run_id),
        out_dir=history.run_dir(cfg.runs_dir, run_id),
        lake_swap=lake_swap,
        plan=plan,
    )


def carry_identity_state(old_state: Path, new_state: Path) -> list[str]:
    """Copy the identity tables (`identity_*`) of the lake state into a rebuilt lake's state,
    so a full rebuild keeps every customer's id. Returns the tables copied."""
    new_state.parent.mkdir(parents=True, exist_ok=True)
    if not old_state.is_file():
        return []
    with warehouse.connection(old_state, read_only=True) as old:
        names = [
            row[0]
            for row in old.execute(
                "SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, 'identity_')"
            ).fetchall()
        ]
        tables = {name: old.sql(f'SELECT * FROM "{name}"').to_arrow_table() for name in names}
    with warehouse.connection(new_state) as new:
        for name, table in tables.items():
            new.register("carried", table)
            new.execute(f'CREATE TABLE "{name}" AS SELECT * FROM carried')
            new.unregister("carried")
    return names


def open_build(night: Night) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the night's new warehouse file, with the config's limits."""
    settings = night.cfg.warehouse
    temp = night.cfg.resolve(settings.temp_directory) if settings.temp_directory else None
    return warehouse.connect(
        night.build_path,
        memory_limit=settings.memory_limit,
        threads=settings.threads,
        temp_directory=temp,
        fsync=False,  # nobody reads it before publish, which syncs it once (ADR 0117)
    )


def _summary_facts(summary: Any, names: dict[str, str]) -> Facts:
    """Pick the counts a step's summary object offers (attribute -> fact name)."""
    facts: Facts = {}
    for attribute, fact in names.items():
        value = (
            summary.get(attribute)
            if isinstance(summary, dict)
            else getattr(summary, attribute, None)
        )
        if value is not None:
            facts[fact] = value
    return facts


def ingest_step(night: Night) -> Facts:
    """Ingest new source files into the lake (idempotent; a full rebuild starts a new lake)."""
    from cjm_analytics.ingest import ingest, lake

    # a full rebuild checks each known file against the moment it was first ingested
    first = lake.first_ingested(night.lake_swap[1] / STATE_FILE) if night.lake_swap else None
    published = night.plan.previous
    if published is None:
        summary = ingest(night.cfg, first_ingested=first)
    else:
        # an incremental night's file starts as a copy of the published one (2.4 GB at 10M
        # events), made while ingest reads the new source files, which the copy does not need
        night.build_path.unlink(missing_ok=True)  # a retried step copies again
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cjm-build-copy") as pool:
            copying = pool.submit(incremental.start_build, published, night.build_path)
            summary = ingest(night.cfg, first_ingested=first)
            copying.result()  # its error, if any, fails the step
    return _summary_facts(
        summary,
        {
            "rows_read": "rows_read_count",
            "rows_loaded": "rows_loaded_count",
            "rows_rejected": "rows_rejected_count",
            "files_loaded": "files_loaded_count",
            "files_skipped": "files_skipped_count",
        },
    )


def build_step(night: Night) -> Facts:
    """Create the new warehouse file: the lake's events, rejects, and stitched customers."""
    from cjm_analytics.identity import stitch, stitch_incremental
    from cjm_analytics.ingest import load_lake

    warming = _warm_imports()
    try:
        if night.plan.previous is not None and not night.build_path.exists():
            incremental.start_build(night.plan.previous, night.build_path)  # ingest did not
        with _build(night) as con:
            load_lake(con, night.cfg)
            if night.plan.previous is not None:
                summary = stitch_incremental(con, night.cfg)  # falls back to stitch itself
                con.execute("DROP TABLE IF EXISTS stitch_scope")  # its working table
            else:
                summary = stitch(con, night.cfg)
            changed = _changed_customers(con, night)
            incremental.write_build_info(con, night.cfg, night.run_id, night.plan)
            con.execute("CHECKPOINT")
    finally:
        warming.join()
    # the file is written without fsyncs (ADR 0117): start writing its pages out now, while
    # the next steps compute, so that publish's own fsync finds little left to write
    threading.Thread(
        target=warehouse.sync_file, args=(night.build_path,), name="cjm-sync", daemon=True
    ).start()
    facts = _summary_facts(
        summary, {"customer_count": "customer_count", "event_count": "event_count"}
    )
    facts["stitch_fallback_reason"] = getattr(summary, "fallback_reason", "") or None
    return facts | {"changed_customer_count": changed, "is_incremental": night.plan.is_incremental}


#: The libraries the later steps import (about 3 s of Python at a night's first use):
#: scipy for the drivers' tests, pm4py for mining, plotly for the report.
WARM_IMPORTS = ("cjm_analytics.stats", "cjm_analytics.mining:import_pm4py", "plotly.graph_objects")


def _warm_imports() -> threading.Thread:
    """Import WARM_IMPORTS in a thread while the build step's work runs in DuckDB (which
    leaves the interpreter free); joined before the build step ends, so no later step
    imports beside it. A failure is left for the step that needs the module to report."""
    import importlib

    from cjm_analytics.mining import short_switch_interval

    def run() -> None:
        # the imports hold the interpreter lock for seconds beside the build step's statements
        with short_switch_interval():
            for target in WARM_IMPORTS:
                name, _, function = target.partition(":")
                try:
                    module = importlib.import_module(name)
                    if function:
                        getattr(module, function)()
                except Exception as exc:  # reported again by the step that imports it
                    log.debug("warming import %s failed: %s", target, exc)

    thread = threading.Thread(target=run, name="cjm-warm-imports", daemon=True)
    thread.start()
    return thread


def _changed_customers(con: duckdb.DuckDBPyConnection, night: Night) -> int:
    """`night_changed_customers` against the published night, whether or not tonight is
    incremental (every customer on the first night)."""
    return incremental.write_changed_customers(con, night.cfg.warehouse_path)


def resolve_as_of(con: duckdb.DuckDBPyConnection, as_of: datetime | None) -> datetime:
    """The run's as-of time: the given one, else the latest event (never later than now)."""
    if as_of is not None:
        return as_of.replace(tzinfo=None) if as_of.tzinfo is None else _to_naive_utc(as_of)
    latest = con.execute(
        "SELECT max(event_at) FROM events WHERE event_at <= ?", [utc_now()]
    ).fetchone()
    return latest[0] if latest and latest[0] is not None else utc_now()


def _to_naive_utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.astimezone(UTC).replace(tzinfo=None)


def stages_step(night: Night) -> Facts:
    """Map touchpoints to stages and build journeys, the funnel and the constraint."""
    from cjm_analytics import journeys

    with _build(night) as con:
        as_of = resolve_as_of(con, night.as_of)
        summary = journeys.build_journey_models(con, night.cfg, as_of, night.plan.previous)
        con.execute("CHECKPOINT")
        facts: Facts = {"as_of": as_of, "journey_count": _count(con, "journeys")}
        facts["constraint_transition"] = getattr(summary, "constraint_transition", None)
        facts |= _summary_facts(
            summary,
            {
                "touchpoint_count": "touchpoint_count",
                "unmapped_touchpoint_count": "unmapped_touchpoint_count",
            },
        )
    return facts


def mining_step(night: Night) -> Facts:
    """Paths, variants, the discovered model and conformance; model files into the run folder."""
    from cjm_analytics.mining import build_mining

    night.out_dir.mkdir(parents=True, exist_ok=True)
    with _build(night) as con:
        summary = build_mining(
            con, night.cfg, night.out_dir, night.plan.previous, finish_discovery=False
        )
        if summary.discovery is not None:
            _DISCOVERIES[night.run_id] = summary.discovery
        con.execute("CHECKPOINT")
    return _summary_facts(
        summary,
        {
            "variant_count": "variant_count",
            "log_fitness": "log_fitness",
            "conforming_journey_share": "conforming_journey_share",
        },
    )


def changes_step(night: Night, facts: Facts) -> Facts:
    """History tables (past nights + tonight), what changed, and the alerts."""
    runs = [r for r in history.load_runs(night.cfg.runs_dir) if r.status == "succeeded"]
    previous_constraint = runs[-1].constraint_transition if runs else None
    with _build(night) as con:
        history.install_history(
            con, night.cfg.runs_dir, night.run_id, facts["as_of"], list(night.cfg.segments)
        )
        summary = changes.build_changes(
            con,
            list(night.cfg.alerts),
            night.run_id,
            facts.get("constraint_transition"),
            previous_constraint,
            facts.get("rows_read_count"),
            facts.get("rows_rejected_count"),
        )
        con.execute("CHECKPOINT")
    return {
        "previous_run_id": summary.previous_run_id,
        "alerts": [a.message for a in summary.alerts],
    }


def report_dir(night: Night, as_of: datetime) -> Path:
    """`<reports>/<as-of date>_<run id>/`: one self-contained folder per night."""
    return night.cfg.reports_dir / f"{as_of:%Y-%m-%d}_{night.run_id}"


def report_step(night: Night, facts: Facts) -> Facts:
    """Write the night's report folder from the new warehouse."""
    from cjm_analytics.reports import build_report

    with _build(night) as con:
        path = build_report(con, report_dir(night, facts["as_of"]), company=night.cfg.company)
    return {"report_path": str(path)}


def publish_step(night: Night, facts: Facts) -> RunRecord:
    """Add the funnel macros and `runs`, save tonight's history, CHECKPOINT, close, and
    replace the published file."""
    from cjm_analytics.funnels import install_sql_macros

    record = _record(night, facts, status="succeeded")
    discovery = _DISCOVERIES.pop(night.run_id, None)
    with _build(night) as con:
        if discovery is not None:
            discovery.finish(con)  # the model files and discovered_model_edges
        install_sql_macros(con)  # analysts' SQL funnels, stored in the published file
        history.install_runs(con, night.cfg.runs_dir, record)
        history.persist_night(con, night.cfg.runs_dir, night.run_id)
        con.execute("CHECKPOINT")
    warehouse.publish(night.build_path, night.cfg.warehouse_path)
    if night.lake_swap is not None:
        _swap_lake(*night.lake_swap)
    record.ended_at = utc_now()
    history.save_run(night.cfg.runs_dir, record)
    _release_run_lock(night.run_id)
    return record


def _swap_lake(rebuilt: Path, published: Path) -> None:
    """After a successful full rebuild: the new lake replaces the old one (kept as .previous)."""
    previous = published.with_name(published.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    if published.exists():
        published.rename(previous)
    rebuilt.rename(published)


def fail_night(night: Night, facts: Facts, step: str, error: BaseException) -> RunRecord:
    """Record a failed run and remove its half-built file; the published night stays."""
    record = _record(night, facts, status="failed")
    record.failed_step = step
    record.error_message = f"{type(error).__name__}: {error}"[:2000]
    record.ended_at = utc_now()
    discovery = _DISCOVERIES.pop(night.run_id, None)
    if discovery is not None:
        discovery.abandon()  # before its night's files go
    for leftover in night.build_path.parent.glob(night.build_path.name + "*"):
        leftover.unlink(missing_ok=True)
    if night.lake_swap is not None and night.lake_swap[0].exists():
        shutil.rmtree(night.lake_swap[0])
    history.save_run(night.cfg.runs_dir, record)
    _release_run_lock(night.run_id)
    log.error("nightly run %s failed at %s: %s", night.run_id, step, record.error_message)
    return record


def _record(night: Night, facts: Facts, status: str) -> RunRecord:
    known = {k: v for k, v in facts.items() if k in RunRecord.__dataclass_fields__}
    record = RunRecord(
        run_id=night.run_id,
        started_at=night.started_at,
        as_of=night.as_of,
        status=status,
        is_full_rebuild=night.is_full_rebuild,
    )
    record = replace(record, **known)
    if status == "succeeded":
        record.ended_at = utc_now()
    return record


class _build:
    """`with _build(night) as con`: the night's file, opened per step and always closed."""

    def __init__(self, night: Night) -> None:
        self.night = night

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self.con = open_build(self.night)
        return self.con

    def __exit__(self, *exc: object) -> None:
        self.con.close()


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


StepCallback = Callable[[str], None]


def run_night(
    cfg: JourneyConfig,
    as_of: datetime | None = None,
    full_rebuild: bool = False,
    on_step: StepCallback | None = None,
) -> RunResult:
    """Run one night without Prefect. Raises the step's error after recording the failure."""
    import time

    night = start_night(cfg, as_of, full_rebuild)
    facts: Facts = {}
    seconds: dict[str, float] = {}
    plan: list[tuple[str, Callable[[], Any]]] = [
        ("ingest", lambda: ingest_step(night)),
        ("build", lambda: build_step(night)),
        ("stages", lambda: stages_step(night)),
        ("mining", lambda: mining_step(night)),
        ("changes", lambda: changes_step(night, facts)),
        ("report", lambda: report_step(night, facts)),
    ]
    step = "start"
    try:
        for step, action in plan:
            if on_step:
                on_step(step)
            began = time.perf_counter()
            facts.update(action() or {})
            seconds[step] = time.perf_counter() - began
        step = "publish"
        if on_step:
            on_step(step)
        began = time.perf_counter()
        record = publish_step(night, facts)
        seconds[step] = time.perf_counter() - began
    except BaseException as error:
        fail_night(night, facts, step, error)
        raise
    report = Path(facts["report_path"]) if facts.get("report_path") else None
    return RunResult(record, cfg.warehouse_path, report, facts, seconds)
