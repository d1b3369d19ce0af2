"""The events one source row gives keep their listed order in journeys (ADR 0063)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from stage_builders import (
    FIVE_STAGES,
    MINI_AS_OF_DAY,
    MINI_EVENTS,
    T0,
    event,
    load_events,
    stage_config,
)

from cjm_analytics import journeys, warehouse
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


def test_touchpoints_written_in_customer_ranges_equal_one_statement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ADR 0126: a table written range by range keeps the rows, the types and the order
    cfg = stage_config(FIVE_STAGES, "buy")
    as_of = T0 + timedelta(days=MINI_AS_OF_DAY)
    tables = []
    for rows_per_range in (journeys.CUSTOMER_RANGE_ROWS, 3):
        monkeypatch.setattr(journeys, "CUSTOMER_RANGE_ROWS", rows_per_range)
        with warehouse.connection() as con:
            load_events(con, MINI_EVENTS)
            build_journey_models(con, cfg, as_of)
            result = con.execute("SELECT * FROM touchpoints")  # the physical order
            tables.append((result.description, result.fetchall()))
    (types, one), (split_types, split) = tables
    assert split == one and split_types == types
    assert len(one) == len(MINI_EVENTS) > 3 * 3
    ordered = [(r[2], r[11], r[4]) for r in one]  # customer_id, journey_number, touchpoint_seq
    assert ordered == sorted(ordered)
