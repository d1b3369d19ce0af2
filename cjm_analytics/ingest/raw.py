"""The shape every reader leaves behind: `raw_rows` and `read_rejects` (TEMP tables).

- `raw_rows(source_row BIGINT, c0 VARCHAR, c1 VARCHAR, ...)`: one row per record the reader
  could split into fields, all values as text; `source_row` is the 1-based data row.
- `read_rejects(source_row, column_name, reason, raw_line)`: records the reader could not
  split (bad quoting, wrong field count, bad encoding, malformed JSON...).

`RawFile.columns` maps the source's own column names to the generated names, so no name
from a file or from journey.yaml is ever pasted into SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from cjm_analytics.ingest._sql import generated_names


@dataclass(frozen=True)
class RawFile:
    """What a reader found in one file: the column map and how to show a row as a line."""

    columns: dict[str, str]  # source column name -> generated column in raw_rows
    raw_line_sql: str  # SQL expression over raw_rows giving the record as text
    params: dict[str, object] = field(default_factory=dict)  # named parameters of raw_line_sql
    #: SQL over raw_rows giving the 1-based list element of an exploded row (several raw rows
    #: then share one source_row, and raw_line_sql shows the whole record); None otherwise
    element_sql: str | None = None


def create_read_rejects(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE read_rejects "
        "(source_row BIGINT, column_name VARCHAR, reason VARCHAR, raw_line VARCHAR)"
    )


def load_arrow_rows(con: duckdb.DuckDBPyConnection, table: pa.Table) -> RawFile:
    """`raw_rows` from an Arrow table (Parquet, XES): every column cast to text in DuckDB."""
    names = generated_names(table.num_columns)
    renamed = table.rename_columns(names).append_column(
        "source_row", pa.array(range(1, table.num_rows + 1), type=pa.int64())
    )
    con.register("arrow_input", renamed)
    try:
        casts = ", ".join(f"CAST({name} AS VARCHAR) AS {name}" for name in names)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE raw_rows AS SELECT source_row{', ' if casts else ''}{casts} "
            "FROM arrow_input"
        )
    finally:
        con.unregister("arrow_input")
    columns = dict(zip(table.column_names, names, strict=True))
    pairs = ", ".join(f"$raw_key_{i}, {name}" for i, name in enumerate(names))
    keys = {f"raw_key_{i}": source for i, source in enumerate(table.column_names)}
    return RawFile(columns, f"CAST(json_object({pairs}) AS VARCHAR)", keys)
