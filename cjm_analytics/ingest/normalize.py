"""Map `raw_rows` to the canonical event schema, validate, and route failures to rejects.

Input: the TEMP tables a reader leaves (`raw_rows`, `read_rejects`) and the source's
`RawFile` column map. Output: the file's events (schema.LAKE_EVENT_COLUMNS, returned by
`normalize`; `reject_loaded_duplicates` then drops the rows whose event id an earlier file
loaded and registers the rest as `file_events`) and the TEMP table `row_rejects`
(source_row, column_name, reason), where each rejected row appears once with the first
reason found. A wide record's row is loaded only when all its events are valid. Every value
from journey.yaml reaches SQL as a named parameter; column names are the generated `c0,
c1, ...`.

Time: text with a UTC offset (or `Z`) keeps its instant; naive text is local time of the
source's `timezone` (DST by ICU: a time inside the spring-forward gap does not exist and is
rejected; an ambiguous autumn time is its later, standard-time occurrence, as ICU does); naive text without a
configured zone is rejected. See docs/adr/0004-utc.md and 0009-ingest-row-accounting.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from cjm_analytics import pii
from cjm_analytics.config import Condition, SourceConfig
from cjm_analytics.errors import IngestError
from cjm_analytics.ingest._sql import run, to_arrow
from cjm_analytics.ingest.mapping import (
    NUMERIC_FIELDS,
    TEXT_FIELDS,
    EventSpec,
    columns_of,
    event_specs,
    needed_columns,
)
from cjm_analytics.ingest.raw import RawFile
from cjm_analytics.schema import IDENTIFIER_COLUMNS, LAKE_EVENT_COLUMNS

MAX_VALUE_CHARS = 10_000
OFFSET_PATTERN = r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|z|UTC|[+-]\d{2}(:?\d{2})?)$"
#: timestamp_format values for Unix times (UTC): decimal digits kept below the unit
EPOCH_DIGITS = {"epoch_s": 6, "epoch_ms": 3}
ISO_HINT = "ISO 8601 such as 2024-03-01T10:00:00+01:00 or 2024-03-01 10:00:00"


@dataclass(frozen=True)
class FileContext:
    """The values one file's normalization binds as parameters."""

    source: str
    source_file: str
    as_of: datetime
    salt: str
    country_code: str | None


def normalize(
    con: duckdb.DuckDBPyConnection, raw: RawFile, cfg: SourceConfig, ctx: FileContext
) -> pa.Table:
    """raw_rows -> row_rejects (TEMP table) and the events of the rows that pass (Arrow).

    One statement maps and checks every event into `checked` (only the columns the lake
    and the rejects need); the duplicate-id check and the events then read `checked`
    without the rejected rows (ADR 0074). Reads nothing earlier files loaded: the ids they
    loaded are checked by `reject_loaded_duplicates`, which must follow (ADR 0124)."""
    specs = event_specs(cfg)
    _require_columns(raw, cfg, ctx.source_file)
    params: dict[str, Any] = {**raw.params, **_context_params(cfg, ctx)}
    selects = [
        _mapped_select(i, spec, cfg, raw, params, len(specs)) for i, spec in enumerate(specs)
    ]
    run(con, _checked_sql(cfg, " UNION ALL ".join(selects)), params)
    every_spec_conditional = all(spec.when for spec in specs)
    for statement in _row_rejects_sql(every_spec_conditional).split(";"):
        if statement.strip():
            run(con, statement, params)
    return to_arrow(con, _events_sql(), params)


def reject_loaded_duplicates(
    con: duckdb.DuckDBPyConnection, events: pa.Table, source: str
) -> pa.Table:
    """The file's events without the rows whose event id an earlier file already brought
    (`loaded_event_ids`); those rows, and the rows with an id repeated inside the file
    (`file_duplicates`, from normalize), go to `row_rejects`, each once with its first
    event's reason. Registers the result as `file_events`.

    The only step of a file that reads what earlier files loaded: ingest runs it, and the
    commit, in file order, while the next file is read and checked (ADR 0124)."""
    run(con, _LOADED_DUPLICATES_SQL, {"source": source})
    loaded = con.execute("SELECT DISTINCT source_row FROM loaded_duplicates").fetchall()
    run(con, _DUPLICATE_REJECTS_SQL)
    if loaded:
        rows = pa.array([row[0] for row in loaded], pa.int64())
        events = events.filter(pc.invert(pc.is_in(events["source_row"], value_set=rows)))
    register_file_events(con, events)
    return events


def register_file_events(con: duckdb.DuckDBPyConnection, events: pa.Table) -> None:
    """Expose one file's lake events as `file_events` (an Arrow table: the Parquet writer
    takes it as is, and the manifest's id insert reads it; no copy as a DuckDB table)."""
    con.register("file_events", events)


def _require_columns(raw: RawFile, cfg: SourceConfig, where: str) -> None:
    missing = [c for c in needed_columns(cfg) if c not in raw.columns]
    if missing:
        raise IngestError(
            f"{where}: column(s) {missing} named in journey.yaml are not in the file; "
            f"the file has {list(raw.columns)[:40]}"
        )


def _context_params(cfg: SourceConfig, ctx: FileContext) -> dict[str, Any]:
    not_before = datetime.fromisoformat(cfg.not_before) if cfg.not_before else None
    return {
        "source": ctx.source,
        "source_file": ctx.source_file,
        "default_channel": cfg.channel,
        "as_of": ctx.as_of.replace(tzinfo=None),
        "not_before": not_before.replace(tzinfo=None) if not_before else None,
        "not_before_text": cfg.not_before,
        "tz": cfg.timezone,
        "ts_format": cfg.timestamp_format,
        "offset_re": OFFSET_PATTERN,
        "salt": ctx.salt,
        "country_code": ctx.country_code,
        "sep": cfg.event_name_separator,
        "id_sep": cfg.identifier_separator,
        "max_chars": MAX_VALUE_CHARS,
    }


def _text(column: str | None, raw: RawFile) -> str:
    return "NULL::VARCHAR" if column is None else f"nullif({trimmed(raw.columns[column])}, '')"


def trimmed(name: str) -> str:
    """SQL equal to `trim(name)`, cheaper: `trim` reads every character's Unicode class, but
    an ASCII value (as many bytes as characters) whose ends are not spaces is its own trim
    (the only ASCII character `trim` removes is the space)."""
    return (
        f"CASE WHEN strlen({name}) = length({name}) AND NOT starts_with({name}, ' ') "
        f"AND NOT ends_with({name}, ' ') THEN {name} ELSE trim({name}) END"
    )


def _joined(columns: tuple[str, ...], raw: RawFile, separator_sql: str) -> str:
    """Several columns as one text, NULL when one of them is empty (`||` keeps NULL)."""
    return f" || {separator_sql} || ".join(_text(c, raw) for c in columns)


def _seq_sql(i: int, n_specs: int, cfg: SourceConfig, raw: RawFile) -> str:
    """source_event_seq: 0 for a row that is one event; else the event's 1-based place
    among the row's events (list element first, then the event's place in `events:`)."""
    if not cfg.events and raw.element_sql is None:
        return "0"
    return f"(({raw.element_sql or '1'}) - 1) * {n_specs} + {i + 1}"


def _mapped_select(
    i: int, spec: EventSpec, cfg: SourceConfig, raw: RawFile, params: dict[str, Any], n_specs: int
) -> str:
    """SELECT the fields of event spec `i` from raw_rows, still as text."""
    p = f"s{i}_"
    params[p + "name"] = spec.constant_name
    id_column = spec.fields.get("event_id")
    if spec.constant_name is not None:
        name_sql = f"${p}name"
        name_column = None
    elif len(spec.name_columns) == 1:
        name_sql, name_column = _text(spec.name_columns[0], raw), spec.name_columns[0]
    else:
        parts = ", ".join(_text(c, raw) for c in spec.name_columns)
        name_sql, name_column = (
            f"nullif(concat_ws($sep, {parts}), '')",
            " + ".join(spec.name_columns),
        )
    if id_column is not None:
        id_sql = _text(id_column, raw) + (f" || ':' || ${p}name" if spec.id_suffix else "")
    else:
        id_sql = _derived_id_sql(raw) + (f" || ':' || ${p}name" if n_specs > 1 else "")
    params.update(
        {
            p + "id_col": id_column,
            p + "name_col": name_column,
            p + "at_col": " + ".join(spec.at_columns),
        }
    )
    cols = [
        f"{i} AS spec_index",
        f"{id_sql} AS event_id",
        f"{id_column is not None} AS has_id_column",
        f"{name_sql} AS event_name",
        _joined(spec.at_columns, raw, "' '") + " AS at_text",
        f"${p}id_col AS id_column",
        f"${p}name_col AS name_column",
        f"${p}at_col AS at_column",
        f"{_text(spec.fields.get('channel'), raw)} AS channel_text",
    ]
    for name in TEXT_FIELDS + NUMERIC_FIELDS:
        params[f"{p}{name}_col"] = spec.fields.get(name)
        cols += [
            f"{_text(spec.fields.get(name), raw)} AS {name}_text",
            f"${p}{name}_col AS {name}_column",
        ]
    for kind, column in IDENTIFIER_COLUMNS.items():
        source_columns = columns_of(cfg.identifiers.get(kind) or [])  # type: ignore[call-overload]
        params[f"{p}{kind}_col"] = " + ".join(source_columns) or None
        value = _joined(source_columns, raw, "$id_sep") if source_columns else "NULL::VARCHAR"
        cols += [f"{value} AS {kind}_text", f"${p}{kind}_col AS {column}_column"]
    cols.append(f"{_seq_sql(i, n_specs, cfg, raw)} AS source_event_seq")
    cols.append(f"{raw.element_sql or 'NULL'} AS list_element")
    cols.append(f"{_properties_sql(cfg, raw, params)} AS properties")
    where = (
        " AND ".join(_condition_sql(c, raw, params, f"{p}w{k}") for k, c in enumerate(spec.when))
        or "true"
    )
    return f"SELECT source_row, {', '.join(cols)} FROM raw_rows WHERE {where}"


def _derived_id_sql(raw: RawFile) -> str:
    """The event id of a source without an id column: a hash of the record, plus `.k` for
    the k-th identical copy in the file (k >= 2). An event log may repeat a record on
    purpose (the same activity twice in one second), so copies are events; the first copy's
    id is the plain hash, so a record delivered again in a later file is still recognized."""
    digest = f"left(sha256({raw.raw_line_sql}), 24)"
    element = f", {raw.element_sql}" if raw.element_sql else ""
    copy = f"row_number() OVER (PARTITION BY {digest}{element} ORDER BY source_row)"
    plain = f"'h' || {digest} || CASE WHEN {copy} > 1 THEN '.' || {copy} ELSE '' END"
    # a list element: the line's id and the element's 1-based place in the list
    return plain + (f" || ':' || {raw.element_sql}" if raw.element_sql else "")


def _properties_sql(cfg: SourceConfig, raw: RawFile, params: dict[str, Any]) -> str:
    if not cfg.properties:
        return "NULL::VARCHAR"
    pairs = []
    for k, column in enumerate(cfg.properties):
        params[f"prop_{k}"] = column
        pairs.append(f"$prop_{k}, {raw.columns[column]}")
    return f"CAST(json_object({', '.join(pairs)}) AS VARCHAR)"


def _condition_sql(cond: Condition, raw: RawFile, params: dict[str, Any], key: str) -> str:
    column = raw.columns[cond.column]
    if cond.equals is not None:
        params[key] = cond.equals
        return f"({column} = ${key})"
    if cond.in_ is not None:
        params[key] = list(cond.in_)
        return f"list_contains(${key}, {column})"
    if cond.not_in is not None:
        params[key] = list(cond.not_in)
        return f"({column} IS NOT NULL AND NOT list_contains(${key}, {column}))"
    if cond.is_null is False:
        return f"({column} IS NOT NULL)"
    return f"({column} IS NULL)" if cond.is_null else f"({column} IS NOT NULL)"


def _time_sql(cfg: SourceConfig) -> tuple[str, str, str]:
    """(has_offset, aware_at TIMESTAMPTZ, naive_at TIMESTAMP) SQL over `at_text`."""
    if cfg.timestamp_format in EPOCH_DIGITS:
        digits = EPOCH_DIGITS[cfg.timestamp_format]
        micros = f"try(CAST(try_cast(at_text AS DECIMAL(38, {digits})) * {10**digits} AS BIGINT))"
        return "true", f"timezone('UTC', try(make_timestamp({micros})))", "NULL::TIMESTAMP"
    if cfg.timestamp_format and "%z" in cfg.timestamp_format:
        return "true", "try_strptime(at_text, $ts_format)", "NULL::TIMESTAMP"
    if cfg.timestamp_format:
        return "false", "NULL::TIMESTAMPTZ", "try_strptime(at_text, $ts_format)"
    has_offset = "regexp_matches(at_text, $offset_re)"
    return (
        has_offset,
        f"CASE WHEN {has_offset} THEN try_cast(at_text AS TIMESTAMPTZ) END",
        f"CASE WHEN NOT {has_offset} THEN try_cast(at_text AS TIMESTAMP) END",
    )


def _checks() -> list[tuple[str, str, str]]:
    """(condition, reason, column) in priority order; the first that holds is the reason."""
    checks = [
        ("has_id_column AND event_id IS NULL", "'missing event id'", "id_column"),
        ("event_name IS NULL", "'missing event name'", "name_column"),
        ("at_text IS NULL", "'missing timestamp'", "at_column"),
    ]
    long_fields = ["event_id", "event_name", "at_text", "channel_text"]
    long_fields += [f"{n}_text" for n in TEXT_FIELDS + NUMERIC_FIELDS + tuple(IDENTIFIER_COLUMNS)]
    for name in long_fields:
        column = {"event_id": "id_column", "event_name": "name_column", "at_text": "at_column"}.get(
            name, "NULL"
        )
        if name.endswith("_text") and name[:-5] in TEXT_FIELDS + NUMERIC_FIELDS:
            column = f"{name[:-5]}_column"
        if name.endswith("_text") and name[:-5] in IDENTIFIER_COLUMNS:
            column = f"{IDENTIFIER_COLUMNS[name[:-5]]}_column"
        checks.append(
            (
                f"length({name}) > $max_chars",
                "'value longer than ' || $max_chars || ' characters'",
                column,
            )
        )
    checks += [
        (
            "aware_at IS NULL AND naive_at IS NULL",
            "'unparseable timestamp ' || quote_text || '; expected ' || coalesce('format ' || $ts_format, '"
            + ISO_HINT
            + "')",
            "at_column",
        ),
        (
            "naive_at IS NOT NULL AND $tz IS NULL",
            "'timestamp ' || quote_text || ' has no UTC offset and the source has no timezone; "
            "write offsets or set sources.' || $source || '.timezone'",
            "at_column",
        ),
        (
            "is_nonexistent_local",
            "'local time ' || quote_text || ' does not exist in ' || $tz || ' (clocks jumped forward at the DST change)'",
            "at_column",
        ),
        (
            "event_at > $as_of",
            "'event time ' || event_at || ' is in the future (after the as-of time ' || $as_of || ')'",
            "at_column",
        ),
        (
            "event_at < $not_before",
            "'event time ' || event_at || ' is before not_before ' || $not_before_text",
            "at_column",
        ),
    ]
    for name in NUMERIC_FIELDS:
        checks.append(
            (
                f"{name}_text IS NOT NULL AND try_cast({name}_text AS DOUBLE) IS NULL",
                f"'{name} ''' || {name}_text || ''' is not a number'",
                f"{name}_column",
            )
        )
    checks += [
        (
            "email_text IS NOT NULL AND email_normalized IS NULL",
            "'email is not an email address (value not shown: personal data)'",
            "email_hash_column",
        ),
        (
            "phone_text IS NOT NULL AND phone_normalized IS NULL",
            "'phone is not a phone number with country code (value not shown: personal data); "
            "national numbers need pii.default_country_code'",
            "phone_hash_column",
        ),
    ]
    return checks


#: The columns of `checked` that the duplicate check, `file_events` and the rejects read.
CHECKED_COLUMNS: tuple[str, ...] = (
    "source_row",
    "spec_index",
    "source_event_seq",
    "event_id",
    "id_column",
    "event_name",
    "event_at",
    "channel_text",
    *(f"{name}_text" for name in TEXT_FIELDS + NUMERIC_FIELDS + tuple(IDENTIFIER_COLUMNS)),
    "email_normalized",
    "phone_normalized",
    "properties",
    "reason",
    "column_name",
)


def _checked_sql(cfg: SourceConfig, mapped_sql: str) -> str:
    """`checked`: every mapped event with its first failing check (`reason`, NULL when it
    passes). The checks run once per row: the number of the first that holds picks both
    the reason and the column."""
    _, aware, naive = _time_sql(cfg)
    checks = _checks()
    failed = "CASE " + " ".join(f"WHEN {c} THEN {k}" for k, (c, _, _) in enumerate(checks)) + " END"
    reason = (
        "CASE failed_check "
        + " ".join(f"WHEN {k} THEN {r}" for k, (_, r, _) in enumerate(checks))
        + " END"
    )
    column = (
        "CASE failed_check "
        + " ".join(f"WHEN {k} THEN {col}" for k, (_, _, col) in enumerate(checks))
        + " END"
    )
    kept = ", ".join(CHECKED_COLUMNS)
    return f"""
CREATE OR REPLACE TEMP TABLE checked AS
WITH mapped AS (
    {mapped_sql}
),
parsed AS (
    SELECT *, {aware} AS aware_at, {naive} AS naive_at, '''' || left(at_text, 80) || '''' AS quote_text,
        {pii.email_normalized_sql("email_text")} AS email_normalized,
        {pii.phone_normalized_sql("phone_text")} AS phone_normalized
    FROM mapped
),
timed AS (
    SELECT *,
        CASE WHEN aware_at IS NOT NULL THEN timezone('UTC', aware_at)
             WHEN naive_at IS NOT NULL THEN timezone('UTC', timezone(CAST($tz AS VARCHAR), naive_at))
        END AS event_at,
        coalesce(naive_at IS NOT NULL AND
            timezone(CAST($tz AS VARCHAR), timezone(CAST($tz AS VARCHAR), naive_at)) <> naive_at, false)
            AS is_nonexistent_local
    FROM parsed
),
ordered AS (
    {_record_order_sql(cfg)}
),
failed AS (
    SELECT *, {failed} AS failed_check FROM ordered
),
reasoned AS (
    SELECT *, {reason} AS reason, {column} AS column_name FROM failed
),
final AS (
    SELECT * REPLACE (CASE WHEN list_element IS NOT NULL AND reason IS NOT NULL
        THEN 'list element ' || list_element || ': ' || reason ELSE reason END AS reason)
    FROM reasoned
)
SELECT {kept} FROM final
"""


def _record_order_sql(cfg: SourceConfig) -> str:
    """SELECT over `timed` with event_at adjusted along each row's events (source_event_seq):
    `day_wraps` adds a day each time a time falls more than 12 hours below the previous
    event's (as recorded); `record_order: as_listed` raises a time to the latest before it."""
    row_order = "PARTITION BY source_row ORDER BY source_event_seq"
    sql = "SELECT * FROM timed"
    if cfg.day_wraps:
        previous = f"lag(event_at IGNORE NULLS) OVER ({row_order})"
        wrap = f"CASE WHEN {previous} - event_at > INTERVAL 12 HOUR THEN 1 ELSE 0 END AS wrap"
        sql = f"SELECT *, {wrap} FROM ({sql})"
        days = f"sum(wrap) OVER ({row_order} ROWS UNBOUNDED PRECEDING)"
        sql = f"SELECT *, CAST({days} AS INTEGER) AS wraps FROM ({sql})"
        sql = f"SELECT * EXCLUDE (wrap, wraps) REPLACE (event_at + to_days(wraps) AS event_at) FROM ({sql})"
    if cfg.record_order == "as_listed":
        latest = f"max(event_at) OVER ({row_order} ROWS UNBOUNDED PRECEDING)"
        sql = f"SELECT * REPLACE ({latest} AS event_at) FROM ({sql})"
    return sql


def _row_rejects_sql(every_spec_conditional: bool = True) -> str:
    """Each failing row once, first reason first; then the rows that pass their own checks
    (`file_candidates`), and among them the copies of an event id repeated in the file
    (`file_duplicates`, one row per copy; `reject_loaded_duplicates` rejects them with the
    ids earlier files loaded).

    A row can match no event only when every event spec has `when` conditions (a spec
    without one takes every row), so only then are rows missing from `checked` looked for.
    Only the events whose id occurs more than once (found by a GROUP BY) are ranked by the
    windows that name the first copy."""
    no_event = """
UNION ALL
SELECT DISTINCT r.source_row, NULL, 'no event: none of the events listed for this source matched the row'
FROM raw_rows r ANTI JOIN checked c ON c.source_row = r.source_row"""
    return f"""
CREATE OR REPLACE TEMP TABLE row_rejects AS
SELECT source_row, arg_min(column_name, source_event_seq) AS column_name,
    arg_min(reason, source_event_seq) AS reason
FROM checked WHERE reason IS NOT NULL GROUP BY source_row{no_event if every_spec_conditional else ""};
CREATE OR REPLACE TEMP TABLE file_candidates AS
SELECT c.source_row, c.source_event_seq, c.event_id, c.id_column
FROM checked c ANTI JOIN row_rejects f ON f.source_row = c.source_row;
CREATE OR REPLACE TEMP TABLE file_duplicates AS
WITH repeated_ids AS (
    SELECT event_id FROM file_candidates GROUP BY event_id HAVING count(*) > 1
),
repeated AS (
    SELECT c.* FROM file_candidates c SEMI JOIN repeated_ids d ON c.event_id IS NOT DISTINCT FROM d.event_id
)
SELECT source_row, source_event_seq, id_column AS column_name,
    'duplicate event id ' || event_id || ' in this file (first at row ' || first_row || ')' AS reason
FROM (
    SELECT *, min(source_row) OVER (PARTITION BY event_id) AS first_row,
        row_number() OVER (PARTITION BY event_id ORDER BY source_row, source_event_seq) AS copy_number
    FROM repeated
) WHERE copy_number > 1;
"""


def _events_sql() -> str:
    identifiers = {}
    for kind, column in IDENTIFIER_COLUMNS.items():
        if kind in ("email", "phone"):
            identifiers[column] = pii.hash_sql(kind, f"{kind}_normalized")
        else:
            identifiers[column] = f"{kind}_text"
    expressions: dict[str, str] = {
        "event_id": "event_id",
        "source": "$source",
        "event_name": "event_name",
        "event_at": "event_at",
        "channel": "coalesce(lower(channel_text), $default_channel)",
        **{name: f"{name}_text" for name in TEXT_FIELDS},
        **{name: f"CAST({name}_text AS DOUBLE)" for name in NUMERIC_FIELDS},
        "properties": "properties",
        "source_file": "$source_file",
        "source_row": "source_row",
        "source_event_seq": "CAST(source_event_seq AS INTEGER)",
    }
    expressions.update(identifiers)
    selected = [f"{expressions[name]} AS {name}" for name in LAKE_EVENT_COLUMNS]
    return (
        f"SELECT {', '.join(selected)} FROM checked c "
        "ANTI JOIN row_rejects f ON f.source_row = c.source_row "
        "ANTI JOIN file_duplicates d ON d.source_row = c.source_row"
    )


# reject_loaded_duplicates: the candidates (rows that pass every check of their own) whose
# event id an earlier file brought, then every duplicate row once, first event first
_LOADED_DUPLICATES_SQL = """
CREATE OR REPLACE TEMP TABLE loaded_duplicates AS
SELECT c.source_row, c.source_event_seq, c.id_column AS column_name,
    'duplicate event id ' || c.event_id || ': already loaded from ' || l.source_file AS reason
FROM file_candidates c JOIN loaded_event_ids l ON l.source = $source AND l.event_id = c.event_id
"""

_DUPLICATE_REJECTS_SQL = """
INSERT INTO row_rejects
SELECT source_row, arg_min(column_name, source_event_seq), arg_min(reason, source_event_seq)
FROM (SELECT * FROM file_duplicates UNION ALL SELECT * FROM loaded_duplicates)
GROUP BY source_row
"""
