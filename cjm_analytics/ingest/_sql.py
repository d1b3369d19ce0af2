"""Small helpers for the generated SQL of ingest: named parameters, generated column names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import duckdb

_NAMED_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def run(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    """Execute `sql` binding only the `$name` parameters it uses (DuckDB rejects extras)."""
    used = set(_NAMED_PARAMETER.findall(sql))
    bound = {name: value for name, value in (params or {}).items() if name in used}
    missing = used - set(bound)
    if missing:
        raise KeyError(f"generated SQL needs parameters {sorted(missing)}")
    return con.execute(sql, bound) if bound else con.execute(sql)


def generated_names(count: int, prefix: str = "c") -> list[str]:
    """Column names used inside ingest SQL instead of the source's own (`c0`, `c1`, ...)."""
    return [f"{prefix}{i}" for i in range(count)]
