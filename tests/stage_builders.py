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


#: The canonical mini log of the stage tests (FIVE_STAGES, success = buy, as of day 60,
#: journey timeout 30 days, abandonment 14 days). Journeys and what they show:
#:   a   view 0, product 1, add_to_cart 3, order 4 (csat 2)   converted; stops at buy, stale
#:   b   view 0, product 2                                    abandoned at interest
#:   c1  view 0                                               abandoned at aware
#:   c2  product 40, add_to_cart 55 (gap 40 > 30: new journey) in progress at cart, returning
#:   d   add_to_cart 10, view 11, call_abandoned 11.5 (phone) abandoned at cart (furthest);
#:                                                            ordered: aware only
#:   e   view 50, order 52 (csat 4), repeat 53                converted, skips interest and cart
#:   f   product 5, view 6, product 7, add_to_cart 8          abandoned at cart (both modes)
MINI_AS_OF_DAY = 60
MINI_EVENTS = [
    event("a", "view", 0, device="desktop"),
    event("a", "product", 1),
    event("a", "add_to_cart", 3),
    event("a", "order", 4, csat_score=2.0),
    event("b", "view", 0, device="mobile"),
    event("b", "product", 2),
    event("c", "view", 0, device="mobile"),
    event("c", "product", 40, device="desktop"),
    event("c", "add_to_cart", 55),
    event("d", "add_to_cart", 10, device="mobile"),
    event("d", "view", 11),
    event("d", "call_abandoned", 11.5, source="calls", channel="phone", outcome="abandoned"),
    event("e", "view", 50, device="desktop"),
    event("e", "order", 52, csat_score=4.0),
    event("e", "repeat", 53),
    event("f", "product", 5, device="mobile"),
    event("f", "view", 6),
    event("f", "product", 7),
    event("f", "add_to_cart", 8),
]
