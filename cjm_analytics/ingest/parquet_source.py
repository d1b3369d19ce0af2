"""Parquet (and XES, through the mining engineer's `read_xes`): Arrow tables with type checks.

A Parquet file carries its own types, so a column of the wrong type is a problem of the
whole file (every row would fail the same way): the file is refused with a message naming
the column, its type and the types accepted. Values are then cast to text and validated
like any other source.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cjm_analytics.errors import IngestError
from cjm_analytics.ingest.raw import RawFile, load_arrow_rows

_TIME_TYPES = "a timestamp, a date or text"
_VALUE_TYPES = "text, a number or a boolean"


def read_parquet_file(
    con: duckdb.DuckDBPyConnection, path: Path, time_columns: set[str], needed: list[str]
) -> RawFile:
    """Fill `raw_rows` from one Parquet file after checking the needed columns' types."""
    try:
        table = pq.read_table(path, columns=[c for c in needed if c in _schema_names(path)])
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path}: not a readable Parquet file ({exc})") from None
    check_types(path, table.schema, time_columns)
    return load_arrow_rows(con, table)


def read_xes_file(con: duckdb.DuckDBPyConnection, path: Path, time_columns: set[str]) -> RawFile:
    """Fill `raw_rows` from one XES event log (read by `cjm_analytics.ingest.xes`)."""
    from cjm_analytics.ingest.xes import read_xes  # owned by mining; imported only when used

    table = read_xes(path)
    check_types(path, table.schema, time_columns)
    return load_arrow_rows(con, table)


def _schema_names(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path}: not a readable Parquet file ({exc})") from None


def check_types(path: Path, schema: pa.Schema, time_columns: set[str]) -> None:
    """Refuse the file when a mapped column has a type that cannot hold its values."""
    for field in schema:
        if field.name in time_columns:
            ok = (
                pa.types.is_timestamp(field.type)
                or pa.types.is_date(field.type)
                or _is_text(field.type)
            )
            accepted = _TIME_TYPES
        else:
            ok = (
                _is_text(field.type)
                or pa.types.is_integer(field.type)
                or pa.types.is_floating(field.type)
                or pa.types.is_decimal(field.type)
                or pa.types.is_boolean(field.type)
                or pa.types.is_dictionary(field.type)
            )
            accepted = _VALUE_TYPES
        if not ok:
            raise IngestError(
                f"{path}: column {field.name!r} has Parquet type {field.type}; expected {accepted}"
            )


def _is_text(type_: pa.DataType) -> bool:
    return (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_string_view(type_)
    )
