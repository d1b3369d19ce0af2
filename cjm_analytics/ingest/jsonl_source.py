"""JSON lines: one JSON object per line, validated row by row.

DuckDB's `read_json` keeps no rejects (with `ignore_errors` a bad line becomes an all-NULL
row), so lines are split here, each line is parsed with `try(json(...))`, the fields the
mapping needs are extracted as text with bound JSON paths, and every line that is not
valid UTF-8, not JSON, not an object, or has an object/array where a value is expected,
goes to `read_rejects` with its reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from cjm_analytics.errors import IngestError
from cjm_analytics.ingest._sql import generated_names, run
from cjm_analytics.ingest.raw import RawFile


def split_lines(path: Path) -> tuple[pa.Table, pa.Table]:
    """(lines, undecodable): 1-based rows of text, and rows that are not valid UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read the file ({exc.strerror})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
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
    lines = pa.table(
        {"source_row": pa.array(rows, pa.int64()), "line": pa.array(texts, pa.string())}
    )
    bad = pa.table(
        {"source_row": pa.array(bad_rows, pa.int64()), "text": pa.array(bad_texts, pa.string())}
    )
    return lines, bad


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
    con.register("jsonl_lines", lines)
    con.register("jsonl_bad", bad)
    try:
        run(con, _PARSE_SQL if explode is None else _EXPLODE_SQL, params)
        con.execute(
            "INSERT INTO read_rejects SELECT source_row, NULL, split_part(text, '|', 1), "
            "substr(text, length(split_part(text, '|', 1)) + 2) FROM jsonl_bad"
        )
    finally:
        con.unregister("jsonl_lines")
        con.unregister("jsonl_bad")
    run(con, _REJECTS_SQL if explode is None else _EXPLODE_REJECTS_SQL, params)
    extracts = "".join(f", vals[{i + 1}] AS {name}" for i, name in enumerate(names))
    element = ", list_element" if explode is not None else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE raw_rows AS SELECT source_row, line{element}{extracts} "
        "FROM jsonl_parsed WHERE reason IS NULL ORDER BY source_row"
    )
    con.execute("DROP TABLE jsonl_parsed")
    columns = dict(zip(needed, names, strict=True))
    return RawFile(columns, "line", element_sql="list_element" if explode is not None else None)


# One pass over the lines: parse, the types and text of all needed keys at once (list paths).
_PARSE_SQL = """
CREATE OR REPLACE TEMP TABLE jsonl_parsed AS
WITH parsed AS (
    SELECT source_row, line, try(json(line)) AS doc FROM jsonl_lines
),
typed AS (
    SELECT *, CASE WHEN json_type(doc) = 'OBJECT' THEN json_type(doc, $paths) END AS types FROM parsed
),
nested AS (
    SELECT *, list_position(list_transform(types, lambda t: coalesce(t IN ('OBJECT', 'ARRAY'), false)), true)
        AS nested_at
    FROM typed
),
final AS (
    SELECT source_row, line,
        CASE WHEN trim(line) = '' THEN 'blank line; expected one JSON object per line'
             WHEN doc IS NULL THEN 'malformed JSON; expected one JSON object per line'
             WHEN types IS NULL THEN 'a JSON ' || lower(json_type(doc)) || ' where a JSON object is expected'
             WHEN nested_at > 0 THEN 'field holds a JSON ' || lower(types[nested_at])
                 || '; expected a text, number or boolean'
        END AS reason,
        CASE WHEN nested_at > 0 THEN $keys[nested_at] END AS column_name,
        CASE WHEN types IS NOT NULL THEN json_extract_string(doc, $paths) END AS vals
    FROM nested
)
SELECT * FROM final
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
