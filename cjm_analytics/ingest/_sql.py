"""Small helpers for the generated SQL of ingest: named parameters, generated column names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa

_NAMED_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def run(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    """Execute `sql` binding only the `$name` parameters it uses (DuckDB rejects extras)."""
    bound = _bound(sql, params)
    return con.execute(sql, bound) if bound else con.execute(sql)


def to_arrow(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None
) -> pa.Table:
    """The result of a SELECT as an Arrow table, parameters bound as in `run` (through a
    relation: a DB-API result would copy the rows once more)."""
    return con.sql(sql, params=_bound(sql, params) or None).to_arrow_table()


def _bound(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    used = set(_NAMED_PARAMETER.findall(sql))
    bound = {name: value for name, value in (params or {}).items() if name in used}
    missing = used - set(bound)
    if missing:
        raise KeyError(f"generated SQL needs parameters {sorted(missing)}")
    return bound


def generated_names(count: int, prefix: str = "c") -> list[str]:
    """Column names used inside ingest SQL instead of the source's own (`c0`, `c1`, ...)."""
    return [f"{prefix}{i}" for i in range(count)]
