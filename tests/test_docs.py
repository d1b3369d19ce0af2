"""docs/warehouse.md documents every table and column of a real warehouse, and every CLI
command is documented by its help text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _tiny_night import REPO, TinyNights, tiny_nights

from cjm_analytics import warehouse

DOC = REPO / "docs" / "warehouse.md"


def documented_tables(text: str) -> dict[str, str]:
    """Section text of each `### \\`table\\`` heading."""
    parts = re.split(r"^### `([a-z_0-9]+)`\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture(scope="module")
def nights() -> TinyNights:
    return tiny_nights()


def warehouse_columns(path: Path) -> dict[str, list[str]]:
    with warehouse.connection(path, read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' ORDER BY column_index"
        ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


def test_every_warehouse_table_and_column_is_documented(nights: TinyNights) -> None:
    sections = documented_tables(DOC.read_text(encoding="utf-8"))
    columns = warehouse_columns(nights.cfg.warehouse_path)
    missing_tables = sorted(set(columns) - set(sections))
    assert not missing_tables, f"tables not in docs/warehouse.md: {missing_tables}"
    missing_columns = {
        table: [c for c in names if f"| `{c}` |" not in sections[table]]
        for table, names in columns.items()
    }
    missing_columns = {t: c for t, c in missing_columns.items() if c}
    assert not missing_columns, f"columns not in docs/warehouse.md: {missing_columns}"


def test_every_documented_table_states_its_grain_and_exists(nights: TinyNights) -> None:
    sections = documented_tables(DOC.read_text(encoding="utf-8"))
    columns = warehouse_columns(nights.cfg.warehouse_path)
    assert sorted(t for t, text in sections.items() if "grain" not in text.lower()) == []
    assert sorted(set(sections) - set(columns)) == [], "documented tables the warehouse lacks"
