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


def read_jsonl_file(con: duckdb.DuckDBPyConnection, path: Path, needed: list[str]) -> RawFile:
    """Fill `raw_rows` (the `needed` keys as text) and `read_rejects` from one JSONL file."""
    lines, bad = split_lines(path)
    names = generated_names(len(needed))
    params: dict[str, object] = {"paths": [json_path(k) for k in needed], "keys": list(needed)}
    con.register("jsonl_lines", lines)
    con.register("jsonl_bad", bad)
    try:
        run(con, _PARSE_SQL, params)
        con.execute(
            "INSERT INTO read_rejects SELECT source_row, NULL, split_part(text, '|', 1), "
            "substr(text, length(split_part(text, '|', 1)) + 2) FROM jsonl_bad"
        )
    finally:
        con.unregister("jsonl_lines")
        con.unregister("jsonl_bad")
    run(con, _REJECTS_SQL, params)
    extracts = "".join(f", vals[{i + 1}] AS {name}" for i, name in enumerate(names))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE raw_rows AS SELECT source_row, line{extracts} FROM jsonl_parsed "
        "WHERE reason IS NULL ORDER BY source_row"
    )
    con.execute("DROP TABLE jsonl_parsed")
    return RawFile(dict(zip(needed, names, strict=True)), "line")


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
