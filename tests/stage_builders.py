"""Compact builders for the stage-area tests: an `events` table and a journey config."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from cjm_analytics import schema
from cjm_analytics.config import JourneyConfig, parse_config

#: Day 0 of the hand-built logs; `at` offsets are in days from here.
T0 = datetime(2026, 1, 5)  # a Monday
EVENT_FIELDS = list(schema.EVENT_COLUMNS)


def event(
    customer: str, name: str, day: float, source: str = "web", **fields: Any
) -> dict[str, Any]:
    """One event of `customer` at T0 + `day` days."""
    return {
        "customer_id": customer,
        "event_name": name,
        "event_at": T0 + timedelta(days=day),
        "source": source,
        **fields,
    }


def load_events(con: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]) -> None:
    """Create `events` (schema.EVENT_COLUMNS) holding these events; ids and rows numbered."""
    con.execute("DROP TABLE IF EXISTS events")
    con.execute(schema.create_table_sql("events", schema.EVENT_COLUMNS))
    rows = []
    for number, item in enumerate(events, start=1):
        row = {
            "event_id": f"e{number}",
            "source_row": number,
            "source_file": "test",
            "channel": item.get("source", "web"),
            **item,
        }
        if isinstance(row.get("properties"), dict):
            row["properties"] = json.dumps(row["properties"])
        rows.append([row.get(column) for column in EVENT_FIELDS])
    placeholders = ", ".join("?" for _ in EVENT_FIELDS)
    con.executemany(f"INSERT INTO events VALUES ({placeholders})", rows)


def stage_config(
    stages: list[tuple[str, list[str]]],
    success: str,
    **overrides: Any,
) -> JourneyConfig:
    """A config whose stages map web events by name: [(stage, [event names])]."""
    data: dict[str, Any] = {
        "sources": {
            "web": {
                "path": "web/*.csv",
                "format": "csv",
                "channel": "web",
                "columns": {"event_name": "e", "event_at": "t"},
                "identifiers": {"cookie": "c"},
                "properties": ["reason"],
            },
            "calls": {
                "path": "calls/*.csv",
                "format": "csv",
                "channel": "phone",
                "columns": {"event_name": "e", "event_at": "t"},
                "identifiers": {"phone": "p"},
            },
        },
        "stages": [
            {"name": name, "rules": [{"event": names}], "success": name == success}
            for name, names in stages
        ],
        "segments": ["first_touch_channel", "device", "region", "customer_type"],
    }
    for key, value in overrides.items():
        data[key] = value
    return parse_config(data, Path("."))


FIVE_STAGES = [
    ("aware", ["view"]),
    ("interest", ["product"]),
    ("cart", ["add_to_cart"]),
    ("buy", ["order"]),
    ("loyal", ["repeat"]),
]
