"""The events one source row gives keep their listed order in journeys (ADR 0063)."""

from __future__ import annotations

from datetime import timedelta

from stage_builders import T0, event, load_events, stage_config

from cjm_analytics import warehouse
from cjm_analytics.journeys import build_journey_models


def test_a_rows_events_at_one_instant_follow_source_event_seq_not_event_id() -> None:
    # one call row (source_row 1) gives entered, queued, answered at the same second; their
    # ids sort the other way round (a < e < q), so only source_event_seq gives the order
    row = {"source": "calls", "source_row": 1}
    events = [
        event("k", "answered", 1, event_id="r1:a", source_event_seq=3, **row),
        event("k", "entered", 1, event_id="r1:e", source_event_seq=1, **row),
        event("k", "queued", 1, event_id="r1:q", source_event_seq=2, **row),
    ]
    cfg = stage_config([("entered", ["entered"]), ("answered", ["answered"])], "answered")
    with warehouse.connection() as con:
        load_events(con, events)
        build_journey_models(con, cfg, T0 + timedelta(days=10))
        got = con.execute(
            "SELECT touchpoint_seq, event_name FROM touchpoints ORDER BY touchpoint_seq"
        ).fetchall()
    # (mining takes its order from touchpoint_seq: sql/mining/journey_steps.sql)
    assert got == [(1, "entered"), (2, "queued"), (3, "answered")]
