"""Time end to end: a source with UTC offsets and a source of naive Europe/Berlin times
across both DST changes of 2024 give the right UTC instants, and journeys split by the
inactivity timeout measured in absolute seconds, not in wall-clock hours.

Timeout 1 day (86,400 s). Berlin: 2024-03-31 02:00 CET -> 03:00 CEST (a 23-hour day),
2024-10-27 03:00 CEST -> 02:00 CET (a 25-hour day).

    customer  source  local / offset time          UTC               gap (UTC)
    k1 fall   crm     2024-10-26 12:00 (CEST +2)   10-26 10:00
              crm     2024-10-27 11:30 (CET +1)    10-27 10:30       24.5 h > 24 h: 2 journeys
                      (wall clock: 23.5 h, which would wrongly keep one journey)
    k2 spring crm     2024-03-30 12:00 (CET +1)    03-30 11:00
              crm     2024-03-31 12:30 (CEST +2)   03-31 10:30       23.5 h: 1 journey
                      (wall clock: 24.5 h, which would wrongly split it)
    k3 fall   web     2024-10-26T12:00:00+02:00    10-26 10:00
              web     2024-10-27T11:30:00+01:00    10-27 10:30       24.5 h: 2 journeys
    k4 mixed  web     2024-10-26T10:30:00Z         10-26 10:30
              crm     2024-10-27 11:00 (CET +1)    10-27 10:00       23.5 h: 1 journey, web first
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig, parse_config
from cjm_analytics.identity import stitch
from cjm_analytics.ingest import ingest, load_lake
from cjm_analytics.journeys import build_journey_models

CRM = (
    "id,what,at,contact\n"
    "c1,visit,2024-10-26 12:00:00,k1\n"
    "c2,visit,2024-10-27 11:30:00,k1\n"
    "c3,visit,2024-03-30 12:00:00,k2\n"
    "c4,visit,2024-03-31 12:30:00,k2\n"
    "c5,visit,2024-10-27 11:00:00,k4\n"
)
WEB = [
    {"id": "w1", "what": "visit", "at": "2024-10-26T12:00:00+02:00", "contact": "k3"},
    {"id": "w2", "what": "visit", "at": "2024-10-27T11:30:00+01:00", "contact": "k3"},
    {"id": "w3", "what": "visit", "at": "2024-10-26T10:30:00Z", "contact": "k4"},
]
COLUMNS = {"event_id": "id", "event_name": "what", "event_at": "at"}


def config(root: Path) -> JourneyConfig:
    return parse_config(
        {
            "paths": {"lake": "lake"},
            "sources": {
                "crm": {
                    "path": "crm.csv",
                    "format": "csv",
                    "channel": "crm",
                    "timezone": "Europe/Berlin",
                    "columns": COLUMNS,
                    "identifiers": {"contact_id": "contact"},
                },
                "web": {
                    "path": "web.jsonl",
                    "format": "jsonl",
                    "channel": "web",
                    "columns": COLUMNS,
                    "identifiers": {"contact_id": "contact"},
                },
            },
            "stages": [{"name": "visit", "success": True, "rules": [{"event": "visit"}]}],
            "timeouts": {"journey_inactivity_days": 1},
        },
        root,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("time")
    (root / "crm.csv").write_text(CRM, encoding="utf-8")
    (root / "web.jsonl").write_text("\n".join(json.dumps(r) for r in WEB) + "\n")
    cfg = config(root)
    summary = ingest(cfg, as_of=datetime(2025, 1, 1, tzinfo=UTC))
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (8, 8, 0)
    with warehouse.connection() as con:
        load_lake(con, cfg)
        stitch(con, cfg)
        build_journey_models(con, cfg, datetime(2025, 1, 1))
        yield con


def test_offsets_and_the_configured_zone_give_utc_instants(built) -> None:  # type: ignore[no-untyped-def]
    got = dict(built.execute("SELECT event_id, event_at FROM events").fetchall())
    assert got == {
        "c1": datetime(2024, 10, 26, 10, 0),
        "c2": datetime(2024, 10, 27, 10, 30),
        "c3": datetime(2024, 3, 30, 11, 0),
        "c4": datetime(2024, 3, 31, 10, 30),
        "c5": datetime(2024, 10, 27, 10, 0),
        "w1": datetime(2024, 10, 26, 10, 0),
        "w2": datetime(2024, 10, 27, 10, 30),
        "w3": datetime(2024, 10, 26, 10, 30),
    }


def test_journeys_split_by_absolute_seconds_across_dst(built) -> None:  # type: ignore[no-untyped-def]
    got = built.execute(
        """
        SELECT e.contact, count(*), list(j.duration_seconds ORDER BY j.first_touch_at)
        FROM journeys j
        JOIN (SELECT DISTINCT customer_id, contact_id AS contact FROM events) e USING (customer_id)
        GROUP BY ALL ORDER BY 1
        """
    ).fetchall()
    assert got == [
        ("k1", 2, [0, 0]),
        ("k2", 1, [84_600]),  # 23.5 h
        ("k3", 2, [0, 0]),
        ("k4", 1, [84_600]),
    ]


def test_mixed_sources_order_by_the_instant(built) -> None:  # type: ignore[no-untyped-def]
    order = built.execute(
        "SELECT event_id FROM touchpoints t JOIN events e USING (event_id) "
        "WHERE e.contact_id = 'k4' ORDER BY touchpoint_seq"
    ).fetchall()
    assert order == [("w3",), ("c5",)]
