"""The fast paths of ADR 0074 give exactly what the slow ones gave.

- `split_lines`: a valid UTF-8 file is split by Arrow; the same bytes through the old
  line-by-line Python decode give the same rows (BOM, CRLF, stray CR, blank lines, no final
  newline); a file with a bad byte still names that line and its byte offset; Arrow's cast
  to string accepts exactly the bytes Python's UTF-8 codec accepts (it is the check).
- the JSONL parse (`json_valid`, one `json_extract_string`, types only where a value could
  be nested) against the previous SQL (three parses per line), kept below as the oracle.
- `normalize.trimmed(x)` against DuckDB's `trim(x)`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cjm_analytics.ingest.jsonl_source import (
    _split_lines_by_line,
    json_path,
    read_jsonl_file,
    split_lines,
)
from cjm_analytics.ingest.normalize import trimmed
from cjm_analytics.ingest.raw import create_read_rejects

# The parse of the JSONL reader before ADR 0074: try(json(line)), json_type(doc, paths),
# json_extract_string(doc, paths); every line parsed three times.
PREVIOUS_PARSE_SQL = """
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
)
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
"""

KEYS = ["a", "b", "c d"]

# JSON values and near-JSON fragments, chosen to hit every branch of the reject reasons
VALUES = st.sampled_from(
    ['"x"', '"{x"', '"[y"', "1", "-0", "1.0E5", "1e400", "123456789012345678901234567890",
     "true", "null", "{}", '{"k":1}', "[]", "[1,2]", " [ ] ", '"\\u00e9"', '"\\ud800"',
     "NaN", "01", '"tab\there"', '" sp "', "nul"]
)  # fmt: skip
LINES = st.one_of(
    st.builds(
        lambda pairs, pad, tail: pad + "{" + ",".join(f'"{k}":{v}' for k, v in pairs) + tail,
        st.lists(st.tuples(st.sampled_from([*KEYS, "z"]), VALUES), max_size=4),
        st.sampled_from(["", " ", "\t", "\u00a0"]),
        st.sampled_from(["}", "} ", "}}", ",}", "", "} x"]),
    ),
    VALUES,
    st.sampled_from(["", " ", "   ", "\u3000", "\t", "[{}]", "/*c*/{}", "{'a':1}"]),
)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _previous(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[list, list]:
    lines, _ = _split_lines_by_line(path.read_bytes())  # all test lines are valid UTF-8
    con.register("jsonl_lines", lines)
    params = {"paths": [json_path(k) for k in KEYS], "keys": KEYS}
    rows = con.execute(PREVIOUS_PARSE_SQL + " ORDER BY source_row", params).fetchall()
    con.unregister("jsonl_lines")
    good = [(r[0], r[1], *r[4]) for r in rows if r[2] is None]
    rejected = [(r[0], r[3], r[2], r[1]) for r in rows if r[2] is not None]
    return good, rejected


def _current(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[list, list]:
    create_read_rejects(con)
    raw = read_jsonl_file(con, path, KEYS)
    names = ", ".join(raw.columns.values())
    good = con.execute(f"SELECT source_row, line, {names} FROM raw_rows ORDER BY 1").fetchall()
    rejected = con.execute("SELECT * FROM read_rejects ORDER BY 1").fetchall()
    return good, rejected


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(LINES, min_size=1, max_size=12))
def test_jsonl_parse_matches_the_previous_three_parses(con, tmp_path, lines):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _current(con, path) == _previous(con, path)


def test_jsonl_parse_examples(con, tmp_path):
    # -0 as the whole line: json(line) reads it as an unsigned 0, so the reason says ubigint
    # (json_type of the raw text would say bigint); a nested value is named by its key
    path = tmp_path / "events.jsonl"
    path.write_text('-0\n{"a":{"k":1}}\n{"a":"{x","b":2}\n\n', encoding="utf-8")
    good, rejected = _current(con, path)
    assert good == [(3, '{"a":"{x","b":2}', "{x", "2", None)]
    assert [(r[0], r[1], r[2]) for r in rejected] == [
        (1, None, "a JSON ubigint where a JSON object is expected"),
        (2, "a", "field holds a JSON object; expected a text, number or boolean"),
        (4, None, "blank line; expected one JSON object per line"),
    ]
    assert (good, rejected) == _previous(con, path)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.text(st.sampled_from(["a", "é", " ", "\r", "\t", "{", "😀"]), max_size=6), max_size=8
    ),
    st.booleans(),
    st.booleans(),
)
def test_arrow_split_equals_line_by_line_decode(lines, bom, final_newline):
    data = ("\ufeff" if bom else "") + "\n".join(lines) + ("\n" if final_newline else "")
    encoded = data.encode("utf-8")
    fast, fast_bad = split_lines_bytes(encoded)
    slow, slow_bad = _split_lines_by_line(encoded.removeprefix(b"\xef\xbb\xbf"))
    assert fast.to_pylist() == slow.to_pylist()
    assert fast_bad.num_rows == slow_bad.num_rows == 0


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=24),
        st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
def test_arrow_accepts_exactly_what_pythons_utf8_codec_accepts(data: bytes) -> None:
    # split_lines lets Arrow's cast to string decide whether a file is valid UTF-8
    try:
        data.decode("utf-8")
        python_accepts = True
    except UnicodeDecodeError:
        python_accepts = False
    try:
        pa.array([data], pa.large_binary()).cast(pa.large_string())
        arrow_accepts = True
    except pa.ArrowInvalid:
        arrow_accepts = False
    assert arrow_accepts == python_accepts


def split_lines_bytes(data: bytes):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".jsonl") as handle:
        handle.write(data)
        handle.flush()
        return split_lines(Path(handle.name))


def test_invalid_utf8_still_names_the_line_and_byte():
    # line 2 has a lone continuation byte at byte 3; lines 1 and 3 load, CRLF dropped
    lines, bad = split_lines_bytes(b'{"a":1}\r\n{"a\x80":2}\n{"a":3}')
    assert lines.to_pylist() == [
        {"source_row": 1, "line": '{"a":1}'},
        {"source_row": 3, "line": '{"a":3}'},
    ]
    assert bad.to_pylist() == [
        {"source_row": 2, "text": 'not valid UTF-8 (invalid start byte at byte 3)|{"a\ufffd":2}'}
    ]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8)), min_size=1, max_size=40))
def test_trimmed_equals_trim(con, values):
    spaced = [v if v is None else f"{v}\u00a0 " if len(v) % 3 == 0 else v for v in values]
    con.execute("CREATE OR REPLACE TEMP TABLE t AS SELECT unnest(?) AS v", [spaced])
    rows = con.execute(f"SELECT v, {trimmed('v')}, trim(v) FROM t").fetchall()
    assert [r[1] for r in rows] == [r[2] for r in rows]
