"""Report queries: `sql/reports/<name>.sql`, run with bound parameters, as polars frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

from cjm_analytics import warehouse

REPORT_SQL = warehouse.SQL_DIR / "reports"


def report_query(
    con: duckdb.DuckDBPyConnection, name: str, params: Sequence[Any] | None = None
) -> pl.DataFrame:
    """Run `sql/reports/<name>.sql` and return its rows as a polars frame."""
    sql = (REPORT_SQL / f"{name}.sql").read_text(encoding="utf-8").strip().rstrip(";")
    return con.sql(sql, params=list(params) if params else None).pl()


def has_tables(con: duckdb.DuckDBPyConnection, *tables: str) -> bool:
    """True when every named table exists in the connection's main schema."""
    found = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
        ).fetchall()
    }
    return set(tables) <= found


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The column names of a table, in order."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
        [table],
    ).fetchall()
    return [row[0] for row in rows]


def format_seconds(seconds: float | None) -> str:
    """3600 -> '1.0 h'; a duration as a person reads it."""
    if seconds is None:
        return "n/a"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
