"""JSON lines: one JSON object per line, validated row by row.

DuckDB's `read_json` keeps no rejects (with `ignore_errors` a bad line becomes an all-NULL
row), so lines are split here, each line is checked with `json_valid`, the fields the
mapping needs are extracted as text with bound JSON paths, and every line that is not
valid UTF-8, not JSON, not an object, or has an object/array where a value is expected,
goes to `read_rejects` with its reason.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from cjm_analytics.errors import IngestError
from cjm_analytics.ingest._sql import generated_names, run
from cjm_analytics.ingest.raw import RawFile


def split_lines(path: Path) -> tuple[pa.Table, pa.Table]:
    """(lines, undecodable): 1-based rows of text, and rows that are not valid UTF-8.

    A file that is valid UTF-8 as a whole (the usual case) is split by Arrow in C++; only a
    file with an undecodable byte goes line by line through Python, to name the bad lines
    and their byte offsets (ADR 0074). Both give the same lines: `\n` ends a line, a `\r`
    before it is dropped, a leading BOM is dropped. A gzip-compressed file (`.jsonl.gz`,
    recognized by its magic bytes as CSV is) is decompressed first."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read the file ({exc.strerror})") from None
    if data.startswith(b"\x1f\x8b"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise IngestError(
                f"{path}: starts like a gzip file but cannot be decompressed ({exc}); "
                "accepted: JSON lines as UTF-8 text, or gzip-compressed JSON lines"
            ) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return _split_lines_arrow(data), _lines_table([], [], "text")
    except pa.ArrowInvalid:  # not valid UTF-8: Arrow's cast checks it, as Python's codec would
        return _split_lines_by_line(data)


def _split_lines_arrow(data: bytes) -> pa.Table:
    """The lines of valid UTF-8 text, split and trimmed by Arrow (no Python loop). Raises
    pyarrow.ArrowInvalid when `data` is not valid UTF-8 (the cast to string validates it:
    the file is checked once, in C++, without decoding it into a Python str first)."""
    text = pa.array([data], pa.large_binary()).cast(pa.large_string())
    pieces = pc.list_flatten(pc.split_pattern(text, "\n"))
    if len(pieces) and not pieces[-1].as_py():
        pieces = pieces.slice(0, len(pieces) - 1)  # the newline that ends the last line
    if b"\r" in data:
        pieces = pc.utf8_rtrim(pieces, characters="\r")
    rows = pa.array(range(1, len(pieces) + 1), pa.int64())
    return pa.table({"source_row": rows, "line": pieces})


def _split_lines_by_line(data: bytes) -> tuple[pa.Table, pa.Table]:
    """(lines, undecodable) of a file with invalid UTF-8: each line decoded on its own."""
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()  # the newline that ends the last line
    rows, texts, bad_rows, bad_texts = [], [], [], []
    for number, piece in enumerate(pieces, start=1):
        try:
            texts.append(piece.decode("utf-8").rstrip("\r"))
            rows.append(number)
        except UnicodeDecodeError as exc:
            bad_rows.append(number)
            bad_texts.append(
                f"not valid UTF-8 ({exc.reason} at byte {exc.start})|"
                + piece.decode("utf-8", "replace")
            )
    return _lines_table(rows, texts, "line"), _lines_table(bad_rows, bad_texts, "text")


def _lines_table(rows: list[int], texts: list[str], name: str) -> pa.Table:
    return pa.table({"source_row": pa.array(rows, pa.int64()), name: pa.array(texts, pa.string())})


def _keep_valid_lines(con: duckdb.DuckDBPyConnection) -> None:
    """`jsonl_parsed` becomes `raw_rows` in place: the rejected lines (already copied to
    `read_rejects`) deleted, the reason columns dropped; the lines are not copied again."""
    con.execute("DELETE FROM jsonl_parsed WHERE reason IS NOT NULL")
    con.execute("ALTER TABLE jsonl_parsed DROP COLUMN reason")
    con.execute("ALTER TABLE jsonl_parsed DROP COLUMN column_name")
    con.execute("DROP TABLE IF EXISTS raw_rows")
    con.execute("ALTER TABLE jsonl_parsed RENAME TO raw_rows")


def json_path(key: str) -> str:
    """A JSON path selecting one top-level key, whatever characters it has."""
    return "$." + json.dumps(key)


def read_jsonl_file(
    con: duckdb.DuckDBPyConnection, path: Path, needed: list[str], explode: str | None = None
) -> RawFile:
    """Fill `raw_rows` (the `needed` keys as text) and `read_rejects` from one JSONL file.

    With `explode`, each element of the list under that key is one raw row (its keys over the
    line's, element column `list_element` 1-based); the line stays the unit of accounting:
    a line with a bad element is rejected whole, with the first bad element's reason."""
    lines, bad = split_lines(path)
    names = generated_names(len(needed))
    params: dict[str, object] = {"paths": [json_path(k) for k in needed], "keys": list(needed)}
    if explode is not None:
        params.update({"list_path": json_path(explode), "list_key": explode})
    extracts = "".join(f", vals[{i + 1}] AS {name}" for i, name in enumerate(names))
    con.register("jsonl_lines", lines)
    con.register("jsonl_bad", bad)
    try:
        if explode is None:
            select = f"SELECT source_row, line, reason, column_name{extracts} FROM final"
            run(con, _PARSE_SQL + select, params)
        else:
            run(con, _EXPLODE_SQL, params)
        con.execute(
            "INSERT INTO read_rejects SELECT source_row, NULL, split_part(text, '|', 1), "
            "substr(text, length(split_part(text, '|', 1)) + 2) FROM jsonl_bad"
        )
    finally:
        con.unregister("jsonl_lines")
        con.unregister("jsonl_bad")
    run(con, _REJECTS_SQL if explode is None else _EXPLODE_REJECTS_SQL, params)
    if explode is None:
        _keep_valid_lines(con)
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE raw_rows AS SELECT source_row, line, list_element{extracts} "
            "FROM jsonl_parsed WHERE reason IS NULL ORDER BY source_row"
        )
        con.execute("DROP TABLE jsonl_parsed")
    columns = dict(zip(needed, names, strict=True))
    return RawFile(columns, "line", element_sql="list_element" if explode is not None else None)


# Each line is parsed as few times as it can be (ADR 0074): `json_valid` (a cheap check),
# then one `json_extract_string` of all needed keys. A valid line that starts with `{` is an
# object; only other valid lines have their root type read (`json(line)` first, as that
# type names the reject). Only lines where an extracted value starts with `{` or `[` (a
# nested value's text does) have the needed keys' exact types read. A blank line is one
# that `ltrim` empties (the same as `trim`, which scans the whole line). The caller appends
# the SELECT from `final` that unpacks `vals` into c0, c1, ...
_PARSE_SQL = """
CREATE OR REPLACE TEMP TABLE jsonl_parsed AS
WITH validated AS (
    SELECT source_row, line, json_valid(line) AS is_json FROM jsonl_lines
),
rooted AS (
    SELECT *, CASE WHEN is_json THEN
            CASE WHEN starts_with(line, '{') THEN 'OBJECT' ELSE json_type(json(line)) END
        END AS root_type
    FROM validated
),
extracted AS (
    SELECT *, CASE WHEN root_type = 'OBJECT' THEN json_extract_string(line, $paths) END AS vals
    FROM rooted
),
typed AS (
    SELECT *, CASE WHEN list_bool_or(list_transform(vals, lambda v: starts_with(v, '{') OR starts_with(v, '[')))
            THEN json_type(line, $paths) END AS types
    FROM extracted
),
nested AS (
    SELECT *, list_position(list_transform(types, lambda t: coalesce(t IN ('OBJECT', 'ARRAY'), false)), true)
        AS nested_at
    FROM typed
),
final AS (
    SELECT source_row, line,
        CASE WHEN ltrim(line) = '' THEN 'blank line; expected one JSON object per line'
             WHEN NOT is_json THEN 'malformed JSON; expected one JSON object per line'
             WHEN root_type <> 'OBJECT' THEN 'a JSON ' || lower(root_type) || ' where a JSON object is expected'
             WHEN nested_at > 0 THEN 'field holds a JSON ' || lower(types[nested_at])
                 || '; expected a text, number or boolean'
        END AS reason,
        CASE WHEN nested_at > 0 THEN $keys[nested_at] END AS column_name,
        vals
    FROM nested
)
"""

_REJECTS_SQL = """
INSERT INTO read_rejects
SELECT source_row, column_name, reason, line FROM jsonl_parsed WHERE reason IS NOT NULL
"""

# `explode`: one row per list element (the element's keys over the line's), then the checks
# of _PARSE_SQL on each element; `reason` is the line's first bad element's, on every row of
# a bad line, so a line is either loaded with all its elements or rejected once.
_EXPLODE_SQL = """
CREATE OR REPLACE TEMP TABLE jsonl_parsed AS
WITH parsed AS (
    SELECT source_row, line, try(json(line)) AS line_doc FROM jsonl_lines
),
lists AS (
    SELECT *,
        CASE WHEN json_type(line_doc) = 'OBJECT' THEN json_type(line_doc, $list_path) END AS list_type,
        CASE WHEN json_type(line_doc, $list_path) = 'ARRAY'
            THEN CAST(json_extract(line_doc, $list_path) AS JSON[]) END AS items
    FROM parsed
),
line_checked AS (
    SELECT *,
        CASE WHEN trim(line) = '' THEN 'blank line; expected one JSON object per line'
             WHEN line_doc IS NULL THEN 'malformed JSON; expected one JSON object per line'
             WHEN json_type(line_doc) <> 'OBJECT'
                 THEN 'a JSON ' || lower(json_type(line_doc)) || ' where a JSON object is expected'
             WHEN list_type IS NULL THEN 'no key ' || $list_key || ' (the list to explode)'
             WHEN list_type <> 'ARRAY'
                 THEN 'key ' || $list_key || ' holds a JSON ' || lower(list_type) || '; expected a list of objects'
             WHEN len(items) = 0 THEN 'key ' || $list_key || ' holds an empty list: no events'
        END AS line_reason
    FROM lists
),
elements AS (
    SELECT source_row, line, line_reason, line_doc,
        unnest(CASE WHEN line_reason IS NULL THEN items ELSE [NULL::JSON] END) AS item,
        unnest(CASE WHEN line_reason IS NULL THEN range(1, len(items) + 1) ELSE [NULL] END) AS list_element
    FROM line_checked
),
merged AS (
    SELECT *,
        CASE WHEN json_type(item) = 'OBJECT' THEN json_merge_patch(line_doc, item) END AS doc
    FROM elements
),
typed AS (
    SELECT *, json_type(doc, $paths) AS types FROM merged
),
nested AS (
    SELECT *, list_position(list_transform(types, lambda t: coalesce(t IN ('OBJECT', 'ARRAY'), false)), true)
        AS nested_at
    FROM typed
),
element_checked AS (
    SELECT source_row, line, list_element,
        CASE WHEN line_reason IS NOT NULL THEN line_reason
             WHEN doc IS NULL THEN 'list element ' || list_element || ' is a JSON '
                 || lower(coalesce(json_type(item), 'null')) || '; expected an object'
             WHEN nested_at > 0 THEN 'list element ' || list_element || ': field holds a JSON '
                 || lower(types[nested_at]) || '; expected a text, number or boolean'
        END AS element_reason,
        CASE WHEN nested_at > 0 THEN $keys[nested_at] END AS element_column,
        CASE WHEN doc IS NOT NULL THEN json_extract_string(doc, $paths) END AS vals
    FROM nested
),
final AS (
    SELECT source_row, line, list_element, vals,
        arg_min(element_reason, coalesce(list_element, 0)) FILTER (WHERE element_reason IS NOT NULL)
            OVER (PARTITION BY source_row) AS reason,
        arg_min(element_column, coalesce(list_element, 0)) FILTER (WHERE element_reason IS NOT NULL)
            OVER (PARTITION BY source_row) AS column_name,
        row_number() OVER (PARTITION BY source_row ORDER BY list_element) AS line_copy
    FROM element_checked
)
SELECT * FROM final
"""

_EXPLODE_REJECTS_SQL = """
INSERT INTO read_rejects
SELECT source_row, column_name, reason, line FROM jsonl_parsed WHERE reason IS NOT NULL AND line_copy = 1
"""
