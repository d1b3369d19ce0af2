"""The incremental night: per-customer models are recomputed only for the customers whose
events changed since the published night; everything else is carried forward from it.

A customer's touchpoints, stage matches, journey stage entries, journey steps and paths are
a function of that customer's events and of the configuration alone (no `as_of`, no
aggregate over other customers). So when a night adds 1% new events, the rows of every
customer whose events are exactly the same as last night's are last night's rows. The night
therefore:

1. compares tonight's stitched `events` with the published file's (`previous`, attached
   read-only) on their key (source, event_id) and writes `night_changed_customers`: every
   customer id, tonight's or last night's, with an event added, removed or moved to another
   customer (a merge or a split of identities moves events); after an incremental stitch,
   from the stitch's own record of the events it added or moved (ADR 0127);
2. runs each per-customer model (`SCOPED_MODELS`) unchanged, in an in-memory catalog whose
   inputs hold only those customers' rows (small config tables are copied whole);
3. replaces each such table by last night's rows of the unchanged customers plus the
   recomputed rows (then the same for the as_of-dependent per-journey models, for the
   changed customers and those with a journey going stale tonight, ADR 0108; of those, the
   models whose rows do not depend on as_of replace the changed customers' rows only,
   ADR 0128);
4. rebuilds every other model (journey status and abandonment depend on `as_of`; funnels,
   benchmarks, variants and graphs aggregate over all customers) from the merged tables.

It is used only when it gives the same warehouse a full recompute would: the published file
must carry the same `build_info.fingerprint` (this configuration's stage, identity, timeout,
funnel, mining and emotion settings, and every sql/ model and package source file), and
every carried table must be there; otherwise the night recomputes everything and says why
in the log and in `build_info.incremental_reason`. See docs/adr/0100-incremental-night.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig
from cjm_analytics.identity.incremental import EVENT_MOVES
from cjm_analytics.warehouse import Model

log = logging.getLogger(__name__)

#: The published warehouse, attached read-only during an incremental night.
PREVIOUS = "previous"
#: The in-memory catalog per-customer models run in.
SCOPE = "night_scope"
#: The changed customers of the night (a warehouse table, documented for analysts too).
CHANGED = "night_changed_customers"
#: Models whose rows are a function of one customer's events and the configuration alone:
#: keyed by customer_id, by journey_id (a journey belongs to one customer) or by the event
#: key (source, event_id) of an event of a known customer.
SCOPED_MODELS: frozenset[str] = frozenset(
    {
        "int_stage_rule_matches",
        "int_touchpoint_sequence",
        "touchpoints",
        "int_journey_stage_entries",
        "int_journey_touch_features",
        "journey_steps",
        "mining_log",
        "mining_stage_log",
        "journey_paths",
        "journey_rework",
        "journey_channel_deviations",
    }
)
#: Per-journey models whose rows depend on `as_of` through the journey's staleness alone
#: (status, abandoned or in progress) and those reading them; recomputed for the changed
#: customers and those with a journey that goes stale tonight (ADR 0108).
AS_OF_MODELS: frozenset[str] = frozenset(
    {"journeys", "int_journey_stage_facts", "int_journey_segments", "int_stage_entry_segments"}
)
#: Models of the as_of batch whose rows do not depend on as_of: they read the batch's tables
#: only through columns that a journey going stale leaves unchanged (segment values; test:
#: tests/test_incremental.py computes them at two as_of and requires the same rows). They run
#: with the batch, but replace the rows of the changed customers only: a customer whose
#: journey merely went stale keeps last night's rows, which are tonight's (ADR 0128).
AS_OF_FREE_MODELS: frozenset[str] = frozenset({"int_journey_segments", "int_stage_entry_segments"})
#: TEMP table: the customers the as_of-dependent models are recomputed for.
STALING = "night_staling_customers"
#: All-customer count tables kept by difference (ADR 0109): model -> its key columns. Each
#: row is a sum over journeys of per-journey counts (every other column is such a count)
#: and exists exactly when a count is not zero; the model reads per-customer models of the
#: batches and shared tables only, never as_of. Tonight's table is last night's plus the
#: recomputed customers' counts tonight, minus the same customers' counts last night.
ADDITIVE_MODELS: dict[str, tuple[str, ...]] = {
    "int_stage_feature_counts": ("stage_order", "feature_kind", "feature_value"),
    "int_stage_entry_segment_counts": ("stage", "stage_order", "dimension", "segment_value"),
    "int_stage_group_counts": ("dimension", "segment_value", "stage_order"),
    "int_segment_journey_counts": ("dimension", "segment_value"),
    "int_stage_last_touch_counts": ("stage", "stage_order", "source", "event_name"),
}
#: Settings that cannot change what a model computes (where files go, when to run, alerts).
_NOT_IN_FINGERPRINT = {"paths", "schedule", "alerts", "warehouse"}
_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Plan:
    """Whether tonight carries the published night forward, and why (not)."""

    previous: Path | None
    reason: str

    @property
    def is_incremental(self) -> bool:
        return self.previous is not None


NOT_PLANNED = Plan(None, "not planned")


def fingerprint(cfg: JourneyConfig) -> str:
    """A hash of everything that decides the models' results: the configuration (minus
    paths, schedule, alerts, warehouse limits) and the code this process runs."""
    # 32 hex digits (BLAKE2b-128): never mistaken for a salted PII hash (64 hex, sha256)
    digest = hashlib.blake2b(code_fingerprint().encode(), digest_size=16)
    digest.update(cfg.model_dump_json(exclude=_NOT_IN_FINGERPRINT).encode())
    return digest.hexdigest()


@functools.cache
def code_fingerprint() -> str:
    """A hash of the sql/ models and package sources, taken once per process: a running
    process (`cjm serve`) runs the code it started with, whatever is on disk later."""
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(warehouse.SQL_DIR.rglob("*.sql")) + sorted(_PACKAGE.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def plan(cfg: JourneyConfig, full_rebuild: bool) -> Plan:
    """Carry the published night forward when it is safe; else say why not."""
    published = cfg.warehouse_path
    if full_rebuild:
        return Plan(None, "full rebuild requested")
    if not cfg.warehouse.incremental:
        return Plan(None, "warehouse.incremental is false")
    if not published.is_file():
        return Plan(None, "no published warehouse yet")
    try:
        with warehouse.connection(published, read_only=True) as con:
            found = _published_fingerprint(con)
            missing = _missing_tables(con, SCOPED_MODELS | {"events", "journeys"})
    except (duckdb.Error, warehouse.WarehouseError) as exc:
        return Plan(None, f"the published warehouse cannot be read ({exc})")
    if found != fingerprint(cfg):
        return Plan(None, "configuration or code changed since the published night")
    if missing:
        return Plan(None, f"the published warehouse lacks {sorted(missing)}")
    return Plan(published, "incremental: carrying the published night forward")


def _published_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    if _missing_tables(con, {"build_info"}):
        return None
    row = con.execute("SELECT fingerprint FROM build_info").fetchone()
    return row[0] if row else None


def _missing_tables(con: duckdb.DuckDBPyConnection, names: set[str] | frozenset[str]) -> set[str]:
    return set(names) - set(_tables(con, _home(con)))


def attach_previous(con: duckdb.DuckDBPyConnection, previous: Path) -> None:
    """Attach the published night read-only as `previous` (once per connection)."""
    attached = {
        r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    }
    if PREVIOUS not in attached:
        con.execute(f"ATTACH ? AS {PREVIOUS} (READ_ONLY)", [str(previous)])


def write_changed_customers(con: duckdb.DuckDBPyConnection, published: Path) -> int:
    """`night_changed_customers` from tonight's `events` against the published file's
    (every customer when there is none to compare with); how many.

    After an incremental stitch on this connection (its file a copy of the published one),
    the stitch's own record of the events it added or moved (TEMP `stitch_event_moves`)
    is that comparison without reading every event twice (ADR 0127)."""
    if _previous_events_readable(con, published):
        compared = (
            _stitch_moves(con)
            or _positional_comparison(con)
            or f"""
    SELECT tonight.customer_id AS tonight_id, last_night.customer_id AS last_night_id
    FROM events AS tonight
    FULL OUTER JOIN {PREVIOUS}.events AS last_night
        ON tonight.source = last_night.source AND tonight.event_id = last_night.event_id
    WHERE tonight.customer_id IS DISTINCT FROM last_night.customer_id"""
        )
    else:
        compared = "SELECT customer_id AS tonight_id, NULL AS last_night_id FROM events"
    con.execute(
        f"""
CREATE OR REPLACE TABLE {CHANGED} AS
WITH compared AS ({compared}
),
ids AS (
    SELECT tonight_id AS customer_id FROM compared
    UNION
    SELECT last_night_id FROM compared
),
final AS (
    SELECT customer_id FROM ids WHERE customer_id IS NOT NULL
)
SELECT * FROM final ORDER BY customer_id
"""
    )
    return int(con.execute(f"SELECT count(*) FROM {CHANGED}").fetchone()[0])  # type: ignore[index]


def _stitch_moves(con: duckdb.DuckDBPyConnection) -> str | None:
    """The events' customer changes as the incremental stitch made them (see
    `cjm_analytics.identity.incremental.EVENT_MOVES`); None when no incremental stitch ran
    on this connection (a full stitch, or a fallback to it, writes no record)."""
    if EVENT_MOVES not in _tables(con, "temp"):
        return None
    log.debug("changed customers from the incremental stitch's record of moved events")
    return f"SELECT tonight_id, last_night_id FROM temp.{EVENT_MOVES}"


def _positional_comparison(con: duckdb.DuckDBPyConnection) -> str | None:
    """The events whose customer differs from last night's, compared row by row, when
    tonight's `events` is last night's in the same order with rows appended (an incremental
    stitch updates customers in place and appends the new events): no hash join over every
    event. None when any of last night's rows is not at its old position (a full stitch
    rewrote the table): the caller joins on the event key."""
    con.execute(
        f"""
CREATE OR REPLACE TEMP TABLE night_positional_changes AS
SELECT
    tonight.customer_id AS tonight_id,
    last_night.customer_id AS last_night_id,
    last_night.event_id IS NOT NULL AND (
        tonight.source IS DISTINCT FROM last_night.source
        OR tonight.event_id IS DISTINCT FROM last_night.event_id
    ) AS is_moved_row
FROM (SELECT source, event_id, customer_id FROM events) AS tonight
POSITIONAL JOIN (SELECT source, event_id, customer_id FROM {PREVIOUS}.events) AS last_night
WHERE is_moved_row OR tonight.customer_id IS DISTINCT FROM last_night.customer_id
"""
    )
    moved = con.execute(
        "SELECT count(*) FROM night_positional_changes WHERE is_moved_row"
    ).fetchone()[0]  # type: ignore[index]
    if moved:
        log.info("events are not in last night's order (%d rows moved): joining on the key", moved)
        return None
    return "SELECT tonight_id, last_night_id FROM night_positional_changes"


def _previous_events_readable(con: duckdb.DuckDBPyConnection, published: Path) -> bool:
    if not published.is_file():
        return False
    try:
        attach_previous(con, published)
    except duckdb.Error as exc:
        log.warning("cannot compare with the published warehouse %s: %s", published, exc)
        return False
    return "events" in _tables(con, PREVIOUS)


def write_build_info(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, run_id: str, plan_: Plan
) -> None:
    """`build_info`: one row saying how tonight's file was built (read by the next night)."""
    con.execute(
        "CREATE OR REPLACE TABLE build_info AS SELECT ?::VARCHAR AS run_id, "
        "?::BOOLEAN AS is_incremental, ?::VARCHAR AS incremental_reason, "
        "?::VARCHAR AS fingerprint",
        [run_id, plan_.is_incremental, plan_.reason, fingerprint(cfg)],
    )


@dataclass(frozen=True)
class Batch:
    """Models recomputed together for the customers of one scope relation."""

    models: frozenset[str]
    scope: str
    why: str


#: In order: per-customer models for the changed customers; then the as_of-dependent
#: per-journey models for the changed customers and those with a journey that was open last
#: night and is stale tonight. While as_of only moves forward a stale journey stays stale,
#: and an open one that stays open keeps its rows: its Kaplan-Meier censoring time
#: (as_of - entered_at) is taken by int_stage_time_to_next, not stored per journey.
BATCHES: tuple[Batch, ...] = (
    Batch(SCOPED_MODELS, CHANGED, "customers whose events changed"),
    Batch(AS_OF_MODELS, f"temp.{STALING}", "changed customers and those going stale tonight"),
)


def run_models(
    con: duckdb.DuckDBPyConnection, models: list[Model], previous: Path | None
) -> list[str]:
    """Build `models` (dependency order): in full without `previous`; else each batch's
    models for its customers only, merged with last night's rows, and the rest in full.
    A batch is built in full when a table it reads without a customer (config tables, the
    mining event codes) differs from last night's, or when as_of went back in time."""
    if previous is None:
        return warehouse.run_models(con, models)
    attach_previous(con, previous)
    remaining, built = list(models), []
    # the per-customer models merged with last night's rows -> the scope that replaced
    # them, and the scope they were recomputed for (the merge kept those rows, ADR 0128)
    carried: dict[str, str] = {}
    recomputed: dict[str, str] = {}
    # the merges keep the rows they replace of what the count tables read (ADR 0119)
    counted = _counted_columns(con, [m for m in models if m.name in ADDITIVE_MODELS])
    for batch in BATCHES:
        scoped = [m for m in remaining if m.name in batch.models]
        if not scoped:
            continue
        before = _needed_before(remaining, scoped)
        built += warehouse.run_models(con, before)
        reason = _full_build_reason(con, scoped, batch)
        if reason:
            log.info("%s rebuilt in full: %s", [m.name for m in scoped], reason)
            built += warehouse.run_models(con, scoped)
        else:
            built += _run_scoped(con, scoped, batch.scope, counted)
            carried |= {m.name: _merge_scope(m.name, batch.scope) for m in scoped}
            recomputed |= {m.name: batch.scope for m in scoped}
        remaining = [m for m in remaining if m not in before and m not in scoped]
    additive = [m for m in remaining if m.name in ADDITIVE_MODELS]
    if additive:
        before = _needed_before(remaining, additive)
        built += warehouse.run_models(con, before)
        built += _run_additive(con, additive, carried, recomputed)
        remaining = [m for m in remaining if m not in before and m not in additive]
    return built + warehouse.run_models(con, remaining)


def _counted_columns(con: duckdb.DuckDBPyConnection, models: list[Model]) -> dict[str, set[str]]:
    """The per-customer tables the count tables read -> the columns they read (ADR 0119)."""
    home = _home(con)
    wanted = set().union(*(_relations(m.sql) for m in models)) & (SCOPED_MODELS | AS_OF_MODELS)
    tables = [t for t in _tables(con, home) if t in wanted]
    return _read_columns(con, models, tables) if tables else {}


def _run_additive(
    con: duckdb.DuckDBPyConnection,
    models: list[Model],
    carried: dict[str, str],
    recomputed: dict[str, str],
) -> list[str]:
    """ADDITIVE_MODELS tables: last night's rows updated by the counts of the customers the
    as_of batch recomputed (STALING: the changed ones and those going stale), tonight's
    minus last night's; each built in full when that would not be exact. Last night's
    counts are taken from the rows the batches' merges replaced (ADR 0119)."""
    home = _home(con)
    by_difference: list[Model] = []
    built: list[str] = []
    inputs: set[str] = set()
    for model in models:
        reads = _relations(model.sql)
        if "as_of" in reads:
            raise warehouse.WarehouseError(
                f"additive model {model.name} reads as_of: its counts change for every "
                "customer each night; remove it from incremental.ADDITIVE_MODELS"
            )
        tables = [t for t in _tables(con, home) if t in reads]
        per_customer = {t for t in tables if {"customer_id", "journey_id"} & _columns(con, home, t)}
        stray = per_customer - SCOPED_MODELS - AS_OF_MODELS
        if stray:
            raise warehouse.WarehouseError(
                f"additive model {model.name} reads {sorted(stray)}, which the incremental "
                "night does not carry per customer; remove it from incremental.ADDITIVE_MODELS"
            )
        reason = _additive_full_reason(con, model, per_customer - set(carried))
        if reason:
            log.info("%s rebuilt in full: %s", model.name, reason)
            built += warehouse.run_models(con, [model])
        else:
            by_difference.append(model)
            inputs |= set(tables)
    if not by_difference:
        return built
    began = time.process_time()
    _count_scope(con, by_difference, sorted(inputs), carried, recomputed)
    with warehouse.transaction(con):  # one commit for every table updated (ADR 0116)
        for model in by_difference:
            _apply_difference(con, model.name, ADDITIVE_MODELS[model.name])
    log.debug(
        "additive models %s updated: %.2f CPU s",
        [m.name for m in by_difference],
        time.process_time() - began,
    )
    return built + [m.name for m in by_difference]


def _additive_full_reason(
    con: duckdb.DuckDBPyConnection, model: Model, not_carried: set[str]
) -> str:
    if not_carried:
        return f"{sorted(not_carried)} were not carried forward tonight"
    if STALING not in _tables(con, "temp"):
        return "the as_of-dependent models were rebuilt in full"
    if model.name not in _tables(con, PREVIOUS):
        return "last night's file does not have it"
    changed = _changed_shared_inputs(con, [model])
    if changed:
        return f"{changed} changed since last night"
    return ""


def _count_scope(
    con: duckdb.DuckDBPyConnection,
    models: list[Model],
    inputs: list[str],
    carried: dict[str, str],
    recomputed: dict[str, str],
) -> None:
    """Run `models` on the STALING customers' rows (shared tables whole), tonight's and last
    night's, into the TEMP tables `night_additive_<side>_<model>` (side: tonight,
    last_night).

    Neither side reads the whole tables again where a batch's merge has the rows (ADR
    0119): the as_of batch recomputed and replaced exactly the STALING customers' rows, and
    kept both (`night_recomputed_<table>`, `night_replaced_<table>`). The per-customer
    batch, and the as_of batch for its AS_OF_FREE_MODELS (ADR 0128), replaced only the
    changed customers' rows (kept); tonight's rows of those tables are copied from this
    file, and last night's are the replaced ones plus tonight's rows of the other
    customers, which the merge left unchanged.
    """
    home = _home(con)
    con.execute(f"ATTACH ':memory:' AS {SCOPE}")
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE night_additive_journeys AS SELECT j.journey_id "
            f'FROM "{home}".journeys AS j SEMI JOIN temp.{STALING} AS c '
            "ON j.customer_id = c.customer_id"
        )
        read = _read_columns(con, models, inputs)
        for table in inputs:
            if recomputed.get(table) == f"temp.{STALING}":  # recomputed for exactly these
                # the columns the merge kept: those the count tables read (or all of them)
                con.execute(
                    f'CREATE TABLE {SCOPE}."{table}" AS FROM temp."night_recomputed_{table}"'
                )
                continue
            _copy_input(
                con,
                table,
                home,
                f"temp.{STALING}",
                "SELECT journey_id FROM temp.night_additive_journeys",
                read[table],
            )
        _run_counts(con, models, home, "tonight")
        for table in inputs:
            if table in carried:
                _restore_last_night(con, home, table, carried[table])
        _run_counts(con, models, home, "last_night")
    finally:
        con.execute(f'USE "{home}"')
        con.execute(f"DETACH {SCOPE}")
        for table in carried:
            con.execute(f'DROP TABLE IF EXISTS temp."night_replaced_{table}"')
            con.execute(f'DROP TABLE IF EXISTS temp."night_recomputed_{table}"')


def _run_counts(con: duckdb.DuckDBPyConnection, models: list[Model], home: str, side: str) -> None:
    con.execute(f"USE {SCOPE}")
    warehouse.run_models(con, models)
    con.execute(f'USE "{home}"')
    for model in models:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE night_additive_{side}_{model.name} AS "
            f'FROM {SCOPE}."{model.name}"'
        )


def _restore_last_night(con: duckdb.DuckDBPyConnection, home: str, table: str, scope: str) -> None:
    """The scope's copy of `table` (tonight's rows of the STALING customers) becomes last
    night's rows of the same customers: the rows the batch of `scope` replaced, plus, when
    that batch replaced fewer customers (the changed ones), tonight's rows of the others."""
    replaced = f'temp."night_replaced_{table}"'
    if f"night_replaced_{table}" not in _tables(con, "temp"):
        raise warehouse.WarehouseError(
            f"the merge of {table} did not keep the rows it replaced: "
            "incremental.run_models names the tables the count tables read"
        )
    columns = ", ".join(warehouse.quote_identifier(c) for c in _typed_columns(con, SCOPE, table))
    last_night = f"SELECT {columns} FROM {replaced}"
    if scope == CHANGED:
        customers = f'SELECT customer_id FROM "{home}".{CHANGED}'
        if "customer_id" in _columns(con, SCOPE, table):
            others = f"customer_id NOT IN ({customers})"
        else:
            others = (
                f'journey_id NOT IN (SELECT journey_id FROM "{home}".journeys '
                f"WHERE customer_id IN ({customers}))"
            )
        last_night = (
            f'SELECT {columns} FROM {SCOPE}."{table}" WHERE {others} UNION ALL {last_night}'
        )
    elif scope != f"temp.{STALING}":
        raise warehouse.WarehouseError(f"{table}: no last-night rows for a batch scoped by {scope}")
    con.execute(f'CREATE OR REPLACE TABLE {SCOPE}."night_last_{table}" AS {last_night}')
    con.execute(f'DROP TABLE {SCOPE}."{table}"')
    con.execute(f'ALTER TABLE {SCOPE}."night_last_{table}" RENAME TO "{table}"')


def _apply_difference(con: duckdb.DuckDBPyConnection, table: str, keys: tuple[str, ...]) -> None:
    """`table` = last night's + tonight's scope counts - last night's scope counts, keeping
    the rows with a count that is not zero; a negative count means the model is not additive.

    Only the rows whose key the scope's counts touch are rewritten, from last night's file
    (so running it twice gives the same table); the others are last night's rows already,
    since the night's file starts as a copy of the published one. In the caller's
    transaction."""
    home = _home(con)
    typed = list(_typed_columns(con, home, table).items())
    counts = [(c, t) for c, t in typed if c not in keys]
    key_list = ", ".join(f'"{k}"' for k in keys)
    negated = ", ".join([f'"{k}"' for k in keys] + [f'-"{c}" AS "{c}"' for c, _ in counts])
    sums = ", ".join(
        f'"{c}"' if c in keys else f'CAST(sum("{c}") AS {t}) AS "{c}"' for c, t in typed
    )
    nonzero = " OR ".join(f'sum("{c}") <> 0' for c, _ in counts)
    same_key = " AND ".join(f'd."{k}" IS NOT DISTINCT FROM t."{k}"' for k in keys)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE night_additive_delta AS "
        f"SELECT {sums} FROM (SELECT * FROM temp.night_additive_tonight_{table} "
        f"UNION ALL BY NAME SELECT {negated} FROM temp.night_additive_last_night_{table}) "
        f"GROUP BY {key_list} HAVING {nonzero}"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE night_additive_rows AS "
        f'SELECT {sums} FROM (SELECT t.* FROM {PREVIOUS}."{table}" AS t '
        f"SEMI JOIN temp.night_additive_delta AS d ON {same_key} "
        f"UNION ALL BY NAME SELECT * FROM temp.night_additive_delta) "
        f"GROUP BY {key_list} HAVING {nonzero}"
    )
    negative = con.execute(
        "SELECT count(*) FROM temp.night_additive_rows WHERE "
        + " OR ".join(f'"{c}" < 0' for c, _ in counts)
    ).fetchone()[0]  # type: ignore[index]
    if negative:
        raise warehouse.WarehouseError(
            f"additive model {table}: {negative} rows would have a negative count after "
            "tonight's update, so it is not a sum of per-customer counts; remove it from "
            "incremental.ADDITIVE_MODELS"
        )
    con.execute(
        f'DELETE FROM "{home}"."{table}" AS t USING temp.night_additive_delta AS d WHERE {same_key}'
    )
    con.execute(f'INSERT INTO "{home}"."{table}" BY NAME SELECT * FROM temp.night_additive_rows')


def _full_build_reason(con: duckdb.DuckDBPyConnection, scoped: list[Model], batch: Batch) -> str:
    changed = _changed_shared_inputs(con, scoped)
    if changed:
        return f"{changed} changed since last night"
    if batch.scope.endswith(STALING) and not _write_staling_customers(con):
        return "as_of is earlier than last night's"
    return ""


def _write_staling_customers(con: duckdb.DuckDBPyConnection) -> bool:
    """TEMP `night_staling_customers`: the changed customers and those with a journey that
    was open last night and is stale at tonight's as_of (the test is journeys.is_stale's,
    on last night's last_touch_at; the fingerprint guarantees the same timeout). False
    (nothing written) when tonight's as_of is before last night's: then stale journeys
    could become open again."""
    last = con.execute(
        f"SELECT r.as_of FROM {PREVIOUS}.runs AS r JOIN {PREVIOUS}.build_info AS b USING (run_id)"
    ).fetchone()
    tonight = con.execute("SELECT getvariable('as_of')").fetchone()
    if last is None or last[0] is None or tonight is None or tonight[0] < last[0]:
        return False
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {STALING} AS SELECT customer_id FROM {CHANGED} "
        f"UNION SELECT customer_id FROM {PREVIOUS}.journeys WHERE NOT is_stale "
        "AND epoch(getvariable('as_of')) - epoch(last_touch_at) "
        "> getvariable('abandonment_seconds')"
    )
    count = con.execute(f"SELECT count(*) FROM {STALING}").fetchone()[0]  # type: ignore[index]
    log.info("as_of-dependent models recomputed for %d customers", count)
    return True


def _needed_before(models: list[Model], scoped: list[Model]) -> list[Model]:
    """The full models the scoped ones read (directly or not): built first. None of them may
    read a scoped model of the same list (that would need two passes)."""
    names = {m.name: m for m in models}
    pending = {m.name for m in scoped}
    needed: set[str] = set()
    stack = [n for m in scoped for n in _relations(m.sql) & set(names) if n not in pending]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        reads = _relations(names[name].sql) & set(names)
        if reads & pending:
            raise warehouse.WarehouseError(
                f"model {name} reads per-customer model(s) {sorted(reads & pending)} and "
                "is read by one: the incremental night cannot order them; split the step"
            )
        stack.extend(reads)
    return [m for m in models if m.name in needed]


def _relations(sql: str) -> set[str]:
    return set(re.findall(r"\b[a-z_][a-z0-9_]*\b", re.sub(r"--[^\n]*", "", sql.lower())))


def _shared_inputs(con: duckdb.DuckDBPyConnection, models: list[Model]) -> list[str]:
    """Tables the models read that belong to no customer or journey (copied whole)."""
    home = _home(con)
    wanted = set().union(*(_relations(m.sql) for m in models)) - {m.name for m in models}
    return [
        t
        for t in _tables(con, home)
        if t in wanted and not {"customer_id", "journey_id"} & _columns(con, home, t)
    ]


def _changed_shared_inputs(con: duckdb.DuckDBPyConnection, models: list[Model]) -> list[str]:
    """The shared inputs whose rows differ from last night's (or that it did not have)."""
    changed = []
    last_night = set(_tables(con, PREVIOUS))
    for table in _shared_inputs(con, models):
        if table not in last_night:
            changed.append(table)
            continue
        differing = con.execute(
            f'SELECT count(*) FROM ((FROM "{table}" EXCEPT ALL FROM {PREVIOUS}."{table}") '
            f'UNION ALL (FROM {PREVIOUS}."{table}" EXCEPT ALL FROM "{table}"))'
        ).fetchone()[0]  # type: ignore[index]
        if differing:
            changed.append(table)
    return changed


def _home(con: duckdb.DuckDBPyConnection) -> str:
    return str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]


def _merge_scope(model: str, scope: str) -> str:
    """The customers whose rows of `model` a batch scoped by `scope` replaces."""
    return CHANGED if model in AS_OF_FREE_MODELS and scope == f"temp.{STALING}" else scope


def _run_scoped(
    con: duckdb.DuckDBPyConnection, models: list[Model], scope: str, counted: dict[str, set[str]]
) -> list[str]:
    """The batch's models on the scope customers' rows, merged into this file; the merges
    of the `counted` tables keep the rows they replace (`night_replaced_<table>`)."""
    home = _home(con)
    produced = {m.name for m in models}
    wanted = set().union(*(_relations(m.sql) for m in models)) - produced
    inputs = [t for t in _tables(con, home) if t in wanted]
    customers = _scope_relation(home, scope)
    # the scope customers' journeys, tonight's (to copy) and last night's (to replace):
    # each written once, for the tables keyed by journey alone
    if any(_journey_keyed(con, home, t) for t in inputs):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE night_scope_journeys AS SELECT DISTINCT t.journey_id "
            f'FROM "{home}".touchpoints AS t SEMI JOIN {customers} AS c '
            "ON t.customer_id = c.customer_id"
        )
    if any(_journey_keyed(con, home, m.name) for m in models):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE night_scope_last_journeys AS SELECT j.journey_id "
            f"FROM {PREVIOUS}.journeys AS j SEMI JOIN {customers} AS c "
            "ON j.customer_id = c.customer_id"
        )
    narrowed = [m.name for m in models if _merge_scope(m.name, scope) != scope]
    if narrowed:
        _narrowed_journeys(con, home, narrowed)
    journeys = "SELECT journey_id FROM temp.night_scope_journeys"
    read = _read_columns(con, models, inputs)
    con.execute(f"ATTACH ':memory:' AS {SCOPE}")
    try:
        began = time.process_time()
        for table in inputs:
            _copy_input(con, table, home, customers, journeys, read[table])
        log.debug(
            "scoped inputs copied (columns read): %s: %.2f CPU s",
            {t: len(read[t]) for t in inputs},
            time.process_time() - began,
        )
        con.execute(f"USE {SCOPE}")
        warehouse.run_models(con, models)
        con.execute(f'USE "{home}"')
        began = time.process_time()
        with warehouse.transaction(con):  # the batch's tables, one commit (ADR 0116)
            for model in models:
                merge_scope = _merge_scope(model.name, scope)
                _merge(
                    con, home, model.name, merge_scope, counted.get(model.name),
                    narrowed=merge_scope != scope,
                )  # fmt: skip
        log.debug("scoped models merged: %.2f CPU s", time.process_time() - began)
    finally:
        con.execute(f'USE "{home}"')
        con.execute(f"DETACH {SCOPE}")
    return [m.name for m in models]


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1", [database]
        ).fetchall()
    ]


def _columns(con: duckdb.DuckDBPyConnection, database: str, table: str) -> set[str]:
    return set(_typed_columns(con, database, table))


def _typed_columns(con: duckdb.DuckDBPyConnection, database: str, table: str) -> dict[str, str]:
    """Column name -> type, in the table's order; empty when there is no such table.
    (DESCRIBE binds one table: about 0.5 ms, against 4 ms for a filtered `duckdb_columns()`,
    which lists every attached database's columns; the night asks a few hundred times.)"""
    quote = warehouse.quote_identifier
    try:
        rows = con.execute(f"DESCRIBE {quote(database)}.{quote(table)}").fetchall()
    except duckdb.CatalogException:
        return {}
    return {row[0]: row[1] for row in rows}


def _scope_relation(home: str, scope: str) -> str:
    return scope if scope.startswith("temp.") else f'"{home}".{scope}'


def _read_columns(
    con: duckdb.DuckDBPyConnection, models: list[Model], tables: list[str]
) -> dict[str, set[str]]:
    """The columns of each of `tables` that `models` read, so that a scope copy carries only
    those (ADR 0114): every column the SQL names (the binder needs them all), and every
    column DuckDB's plan scans, which adds those a `*` brings in without a name (a `*` that
    reaches the result, `DISTINCT *`, `COLUMNS(...)`). Planned on this database's tables,
    which have the scope's columns. Every column of a table whose plan cannot be read."""
    home = _home(con)
    named = set().union(*(_relations(m.sql) for m in models))
    columns = {t: _columns(con, home, t) for t in tables}
    read = {t: {c for c in columns[t] if c.lower() in named} for t in tables}
    for model in models:
        try:
            plan = con.execute(f"EXPLAIN (FORMAT json) {model.sql}").fetchall()
            nodes = list(_plan_nodes(json.loads(plan[0][1])))
        except (duckdb.Error, ValueError, IndexError) as exc:
            log.warning("cannot plan %s (%s): its inputs are copied whole", model.name, exc)
            return columns
        for info in (node.get("extra_info") or {} for node in nodes):
            if not isinstance(info, dict):
                continue
            name = str(info.get("Table", "")).split(".")  # catalog.schema.table
            catalog, table = name[0], name[-1]
            if len(name) < 2 or catalog != home or table not in read:
                continue
            for key in ("Projections", "Filters"):
                value = info.get(key, [])
                text = " ".join(value) if isinstance(value, list) else str(value)
                mentioned = _relations(text)
                read[table] |= {c for c in columns[table] if c.lower() in mentioned}
    return read


def _plan_nodes(plan: object) -> Iterator[dict[str, object]]:
    """Every operator of an `EXPLAIN (FORMAT json)` plan."""
    if isinstance(plan, list):
        for item in plan:
            yield from _plan_nodes(item)
    elif isinstance(plan, dict):
        yield plan
        yield from _plan_nodes(plan.get("children", []))


def _copy_input(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    customers: str,
    journeys: str,
    read: set[str],
) -> None:
    """Copy the `read` columns of `source`.`table` into the scope catalog: the rows of
    `customers` (by customer, or by `journeys`, a relation of their journey ids), or all
    rows when it has neither (a config table)."""
    columns = _columns(con, source, table)
    if "customer_id" in columns:
        # the rows' ids first, from customer_id alone, then only those rows' columns: a
        # semi join on customer_id read every copied column of every row. In the 10M
        # incremental night: events (1% of rows) 0.83-1.06 -> 0.35-0.64 s, touchpoints for
        # mining 0.23-0.36 -> 0.13-0.16 s. Copies by journey (7% of rows, for the as_of
        # batch's customers) were slower that way (0.41 -> 0.66 s) and stay a semi join.
        keep = (
            f'SEMI JOIN (SELECT k.rowid AS row_id FROM "{source}"."{table}" AS k '
            f"SEMI JOIN {customers} AS c ON k.customer_id = c.customer_id) AS picked "
            "ON s.rowid = picked.row_id"
        )
    elif "journey_id" in columns:
        keep = f"SEMI JOIN ({journeys}) AS j ON s.journey_id = j.journey_id"
    else:
        keep = ""
    # a model may read none of a table's columns (count(*)): keep one so the table exists
    wanted = sorted(columns & read) or sorted(columns)[:1]
    began = time.perf_counter()
    con.execute(
        f'CREATE TABLE {SCOPE}."{table}" AS SELECT {", ".join(f"s.{warehouse.quote_identifier(c)}" for c in wanted)} '
        f'FROM "{source}"."{table}" AS s {keep}'
    )
    log.debug(
        "copied %s.%s (%d of %d columns) into the scope: %.2f s",
        source,
        table,
        len(wanted),
        len(columns),
        time.perf_counter() - began,
    )


def _journey_keyed(con: duckdb.DuckDBPyConnection, database: str, table: str) -> bool:
    """A table with a journey_id and no customer_id (picked and replaced by journey)."""
    columns = _columns(con, database, table)
    return "journey_id" in columns and "customer_id" not in columns


def _narrowed_journeys(con: duckdb.DuckDBPyConnection, home: str, tables: list[str]) -> None:
    """TEMP `night_narrowed_journeys` (tonight's) and `night_narrowed_last_journeys` (last
    night's): the journeys of the changed customers, whose rows of the AS_OF_FREE_MODELS
    `tables` a batch of more customers replaces."""
    if any(not _journey_keyed(con, home, t) for t in tables):
        raise warehouse.WarehouseError(
            f"{sorted(tables)}: an as_of-free model is merged for the changed customers by "
            "journey_id and needs one, without a customer_id; remove it from "
            "incremental.AS_OF_FREE_MODELS"
        )
    changed = f'"{home}".{CHANGED}'
    con.execute(
        "CREATE OR REPLACE TEMP TABLE night_narrowed_journeys AS SELECT DISTINCT t.journey_id "
        f'FROM "{home}".touchpoints AS t SEMI JOIN {changed} AS c ON t.customer_id = c.customer_id'
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE night_narrowed_last_journeys AS SELECT j.journey_id "
        f"FROM {PREVIOUS}.journeys AS j SEMI JOIN {changed} AS c ON j.customer_id = c.customer_id"
    )


def _merge(
    con: duckdb.DuckDBPyConnection,
    home: str,
    table: str,
    scope: str,
    keep_replaced: set[str] | None = None,
    narrowed: bool = False,
) -> None:
    """In the build file (a copy of the published night): delete the scope customers' rows
    of `table` and insert tonight's recomputed ones; the other rows are last night's. In the
    caller's transaction. With `keep_replaced` (column names), those columns of the deleted
    rows (last night's rows of the scope customers) are kept in TEMP
    `night_replaced_<table>`, and of the recomputed ones in `night_recomputed_<table>`.
    `narrowed`: the table was recomputed for more customers than `scope` (CHANGED; see
    AS_OF_FREE_MODELS); only the changed customers' journeys are replaced."""
    if table not in _tables(con, home):
        raise warehouse.WarehouseError(
            f"table {table} is not in the night's file: an incremental night starts from a "
            "copy of the published warehouse (cjm_analytics.incremental.start_build)"
        )
    customers = _scope_relation(home, scope)
    columns = _columns(con, SCOPE, table)
    recomputed, carried = _typed_columns(con, SCOPE, table), _typed_columns(con, home, table)
    if recomputed != carried:
        raise warehouse.WarehouseError(
            f"per-customer model {table} recomputed for the scope has columns {recomputed}, "
            f"last night's table {carried}: a scope copy lacked a column the model reads "
            "(cjm_analytics.incremental._read_columns)"
        )
    if "customer_id" in columns:
        stale = f"customer_id IN (SELECT customer_id FROM {customers})"
    elif "journey_id" in columns:
        last = "night_narrowed_last_journeys" if narrowed else "night_scope_last_journeys"
        stale = f"journey_id IN (SELECT journey_id FROM temp.{last})"
    elif {"source", "event_id"} <= columns:
        stale = (
            f"(source, event_id) IN (SELECT (e.source, e.event_id) FROM {PREVIOUS}.events AS e "
            f"SEMI JOIN {customers} AS c ON e.customer_id = c.customer_id)"
        )
    else:
        raise warehouse.WarehouseError(
            f"per-customer model {table} has no customer_id, journey_id or (source, event_id) "
            "to be carried forward by; remove it from incremental.SCOPED_MODELS"
        )
    recomputed_rows = f'{SCOPE}."{table}"'
    if narrowed:
        recomputed_rows = (
            f"(SELECT * FROM {recomputed_rows} WHERE journey_id IN "
            "(SELECT journey_id FROM temp.night_narrowed_journeys))"
        )
    began = time.perf_counter()
    if keep_replaced is not None:
        # a filtered scan of the kept columns: DELETE ... RETURNING fetches each deleted row
        # by its row id, 3-10x slower here (ADR 0119)
        kept = ", ".join(warehouse.quote_identifier(c) for c in sorted(keep_replaced or columns))
        con.execute(
            f'CREATE OR REPLACE TEMP TABLE "night_replaced_{table}" AS '
            f'SELECT {kept} FROM "{home}"."{table}" WHERE {stale}'
        )
        con.execute(  # every recomputed row, also those a narrowed merge does not insert
            f'CREATE OR REPLACE TEMP TABLE "night_recomputed_{table}" AS '
            f'SELECT {kept} FROM {SCOPE}."{table}"'
        )
    con.execute(f'DELETE FROM "{home}"."{table}" WHERE {stale}')
    deleted = time.perf_counter()
    con.execute(f'INSERT INTO "{home}"."{table}" BY NAME SELECT * FROM {recomputed_rows}')
    log.debug(
        "merged %s: delete %.2f s, insert %.2f s",
        table,
        deleted - began,
        time.perf_counter() - deleted,
    )


def start_build(published: Path, build: Path) -> None:
    """An incremental night's file starts as a byte copy of the published night (its
    per-customer tables are then updated in place; every other table is rebuilt)."""
    shutil.copyfile(published, build)
