"""Helpers for ingest tests: a config built inline next to small files in tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig, parse_config
from cjm_analytics.ingest import IngestSummary, ingest, load_lake

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)


class Lake:
    """A tmp folder with source files, a journey config and helpers to ingest and query."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, text: str | bytes) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def config(self, sources: dict[str, Any], **extra: Any) -> JourneyConfig:
        return parse_config({"paths": {"lake": "lake"}, "sources": sources, **extra}, self.root)

    def ingest(self, cfg: JourneyConfig, as_of: datetime = AS_OF) -> IngestSummary:
        return ingest(cfg, as_of=as_of)

    def warehouse(self, cfg: JourneyConfig) -> duckdb.DuckDBPyConnection:
        con = warehouse.connect()
        load_lake(con, cfg)
        return con


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path)


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()
