"""CSV files: DuckDB's reader with the dialect from journey.yaml, no sniffing, rejects kept.

A gzip-compressed file (`.csv.gz`, recognized by its magic bytes, not its name) is read
the same way.

The header is read here (Python's csv module, same dialect) to learn the column names; DuckDB
then reads every column as VARCHAR under generated names (`c0`, `c1`, ...) with
`auto_detect=false` and `store_rejects=true`, and its reject tables are copied to
`read_rejects` right away (they are temporary and per connection).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, cast

import duckdb
import pyarrow as pa

from cjm_analytics.config import CsvDialect
from cjm_analytics.errors import IngestError
from cjm_analytics.ingest._sql import generated_names, run
from cjm_analytics.ingest.raw import RawFile

_PYTHON_ENCODING = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "utf-16": "utf-16"}
_OTHER_DELIMITERS = (",", ";", "\t", "|")


class EmptyFileError(IngestError):
    """The file has no bytes (or no header line): nothing to load, nothing rejected."""


def read_header(path: Path, dialect: CsvDialect) -> list[str]:
    """The column names of a CSV file (or `column0..` when it has no header)."""
    try:
        first = next(_reader([_first_line(path, dialect)], dialect), None)
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{path}: the header line is not valid {dialect.encoding} ({exc.reason} at byte "
            f"{exc.start}); set csv.encoding to one of utf-8, latin-1, utf-16"
        ) from None
    if not first:
        raise EmptyFileError(f"{path}: the file is empty (no header line)")
    return first if dialect.header else [f"column{i}" for i in range(len(first))]


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (`.csv.gz` exports)."""
    with open(path, "rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def _open_binary(path: Path) -> IO[bytes]:
    return cast(IO[bytes], gzip.open(path, "rb")) if is_gzip(path) else open(path, "rb")


def _first_line(path: Path, dialect: CsvDialect) -> str:
    if dialect.encoding == "utf-16":
        with io.TextIOWrapper(_open_binary(path), encoding="utf-16", newline="") as handle:
            return handle.readline().rstrip("\r\n")
    with _open_binary(path) as handle:
        return handle.readline().decode(_PYTHON_ENCODING[dialect.encoding]).rstrip("\r\n")


def _reader(
    handle: Iterable[str], dialect: CsvDialect, delimiter: str | None = None
) -> Iterator[list[str]]:
    return csv.reader(
        handle,
        delimiter=delimiter or dialect.delimiter,
        quotechar=dialect.quote or None,
        doublequote=dialect.escape == dialect.quote,
        escapechar=None if dialect.escape == dialect.quote else (dialect.escape or None),
    )


def delimiter_hint(path: Path, dialect: CsvDialect) -> str:
    """A hint when another delimiter splits the header into more columns."""
    line = _first_line(path, dialect)
    counts = {d: len(next(_reader([line], dialect, d), [])) for d in _OTHER_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    if best != dialect.delimiter and counts[best] > counts.get(dialect.delimiter, 1):
        return f" (the header splits into {counts[best]} columns with delimiter {best!r}: is csv.delimiter right?)"
    return ""


def read_csv_file(con: duckdb.DuckDBPyConnection, path: Path, dialect: CsvDialect) -> RawFile:
    """Fill `raw_rows` and `read_rejects` from one CSV file."""
    header = read_header(path, dialect)
    names = generated_names(len(header))
    columns: dict[str, str] = {}
    for source_name, name in zip(header, names, strict=True):
        columns.setdefault(source_name.strip(), name)
    params = {
        "path": str(path),
        "delim": dialect.delimiter,
        "quote": dialect.quote,
        "escape": dialect.escape,
        "header": dialect.header,
        "columns": {name: "VARCHAR" for name in names},
        "nullstr": dialect.null_values,
        "encoding": dialect.encoding,
        "compression": "gzip" if is_gzip(path) else "none",
    }
    con.execute("DROP TABLE IF EXISTS reject_errors")
    con.execute("DROP TABLE IF EXISTS reject_scans")
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE csv_input AS SELECT * FROM read_csv($path, delim=$delim, "
        "quote=$quote, escape=$escape, header=$header, auto_detect=false, columns=$columns, "
        "nullstr=$nullstr, encoding=$encoding, compression=$compression, store_rejects=true, "
        "strict_mode=true)",
        params,
    )
    _copy_csv_rejects(con, dict(zip(names, header, strict=True)), dialect.header)
    _number_rows(con, names, blank_rows(path, dialect))
    separator = dialect.delimiter
    concat = ", ".join(f"coalesce({name}, '')" for name in names)
    return RawFile(columns, f"concat_ws($raw_sep, {concat})", {"raw_sep": separator})


def _copy_csv_rejects(
    con: duckdb.DuckDBPyConnection, source_names: dict[str, str], header: bool
) -> None:
    """DuckDB's temporary reject tables -> `read_rejects`, with data row numbers."""
    rows = con.execute(
        "SELECT line, column_name, error_type, error_message, csv_line FROM reject_errors "
        "ORDER BY line, column_idx"
    ).fetchall()
    out: dict[str, list[object]] = {
        "source_row": [],
        "column_name": [],
        "reason": [],
        "raw_line": [],
    }
    seen: set[int] = set()
    last = 0
    for line, column, error_type, message, csv_line in rows:
        if line in seen:
            continue  # a second error on the same record: the first one is its reason
        seen.add(line)
        last = max(int(line) - (1 if header else 0), last + 1)
        out["source_row"].append(last)
        out["column_name"].append(source_names.get(column or "", column))
        out["reason"].append(f"{error_type.lower()}: {message}")
        out["raw_line"].append(csv_line)
    found = pa.table(out, schema=_REJECT_SCHEMA)
    con.register("csv_found_rejects", found)
    try:
        con.execute("INSERT INTO read_rejects SELECT * FROM csv_found_rejects")
    finally:
        con.unregister("csv_found_rejects")


_REJECT_SCHEMA = pa.schema(
    [
        ("source_row", pa.int64()),
        ("column_name", pa.string()),
        ("reason", pa.string()),
        ("raw_line", pa.string()),
    ]
)


def blank_rows(path: Path, dialect: CsvDialect) -> list[int]:
    """Data row numbers of blank lines (DuckDB skips them but counts them in its line numbers).

    Only files that contain an empty line are read through Python's csv module, which counts
    records the way DuckDB does (a quoted field may span lines)."""
    if not _has_empty_line(path):
        return []
    encoding = _PYTHON_ENCODING[dialect.encoding]
    with io.TextIOWrapper(
        _open_binary(path), encoding=encoding, errors="replace", newline=""
    ) as handle:
        records = _reader(handle, dialect)
        if dialect.header:
            next(records, None)
        return [number for number, record in enumerate(records, start=1) if not record]


def _has_empty_line(path: Path) -> bool:
    tail = b""
    with _open_binary(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            chunk = tail + block
            if b"\n\n" in chunk or b"\n\r\n" in chunk:
                return True
            tail = chunk[-2:]
    return False


def _number_rows(con: duckdb.DuckDBPyConnection, names: list[str], blanks: list[int]) -> None:
    """`raw_rows`: the k-th good record is the k-th data row not taken by a reject or a blank line."""
    con.register("csv_blank_rows", pa.table({"source_row": pa.array(blanks, pa.int64())}))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE reject_gaps AS "
        "SELECT good_before, max(taken_so_far) AS rejects_so_far FROM ("
        "SELECT source_row - row_number() OVER (ORDER BY source_row) AS good_before, "
        "row_number() OVER (ORDER BY source_row) AS taken_so_far FROM "
        "(SELECT source_row FROM read_rejects UNION SELECT source_row FROM csv_blank_rows)) GROUP BY 1"
    )
    con.unregister("csv_blank_rows")
    selected = ", ".join(f"good.{name}" for name in names)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE raw_rows AS "
        "WITH good AS (SELECT rowid + 1 AS good_seq, * FROM csv_input) "
        f"SELECT good.good_seq + coalesce(g.rejects_so_far, 0) AS source_row{', ' if names else ''}{selected} "
        "FROM good ASOF LEFT JOIN reject_gaps g ON good.good_seq > g.good_before ORDER BY source_row"
    )
    con.execute("DROP TABLE csv_input")
