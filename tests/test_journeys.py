"""Journeys: split at the inactivity timeout, status as of the as-of time, ids and order."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest
from stage_builders import FIVE_STAGES, T0, event, load_events, stage_config

from cjm_analytics import schema, warehouse
from cjm_analytics.errors import ConfigError, WarehouseError
from cjm_analytics.journeys import build_journey_models

CFG = stage_config(FIVE_STAGES, "buy")  # journey timeout 30 days, abandonment 14 days


def _journeys(events: list[dict[str, Any]], as_of_day: float, cfg: Any = CFG) -> list[tuple]:
    with warehouse.connection() as con:
        load_events(con, events)
        build_journey_models(con, cfg, T0 + timedelta(days=as_of_day))
        return con.execute(
            "SELECT customer_id, touchpoint_count, furthest_stage, status, journey_number, customer_type"
            " FROM journeys ORDER BY customer_id, first_touch_at"
        ).fetchall()


def test_journey_splits_only_after_more_than_the_inactivity_timeout() -> None:
    rows = _journeys(
        [
            event("a", "view", 0), event("a", "product", 30),  # gap exactly 30 days: same journey
            event("b", "view", 0), event("b", "product", 30.001),  # gap just over: two journeys
        ],
        as_of_day=100,
    )  # fmt: skip
    assert rows == [
        ("a", 2, "interest", "abandoned", 1, "new"),
        ("b", 1, "aware", "abandoned", 1, "new"),
        ("b", 1, "interest", "abandoned", 2, "returning"),
    ]


def test_status_abandoned_only_after_the_abandonment_timeout() -> None:
    events = [event("a", "view", 0), event("b", "view", 1), event("c", "order", 0)]
    # as of day 14.5: a's last touch is 14.5 days old (> 14: abandoned), b's 13.5 (in
    # progress); c reached the success stage: converted whatever its age.
    assert [r[3] for r in _journeys(events, as_of_day=14.5)] == [
        "abandoned",
        "in_progress",
        "converted",
    ]


def test_touchpoints_are_ordered_by_time_then_source_row_and_keep_unmapped() -> None:
    with warehouse.connection() as con:
        load_events(con, [event("a", "product", 1), event("a", "view", 1), event("a", "other", 0)])
        build_journey_models(con, CFG, T0 + timedelta(days=5))
        rows = con.execute(
            "SELECT touchpoint_id, touchpoint_seq, stage, journey_stage FROM touchpoints ORDER BY touchpoint_seq"
        ).fetchall()
        columns = [c[0] for c in con.execute("DESCRIBE touchpoints").fetchall()]
        journey_columns = [c[0] for c in con.execute("DESCRIBE journeys").fetchall()]
    # e3 (day 0) first; e1 and e2 share day 1: source_row 1 before 2.
    assert rows == [
        ("web:e3", 1, None, None),
        ("web:e1", 2, "interest", "interest"),
        ("web:e2", 3, "aware", "interest"),
    ]
    # the contracts other areas rely on come first, unchanged
    assert columns[: len(schema.TOUCHPOINT_COLUMNS)] == list(schema.TOUCHPOINT_COLUMNS)
    assert journey_columns[: len(schema.JOURNEY_COLUMNS)] == list(schema.JOURNEY_COLUMNS)


def test_journey_ids_are_stable_when_later_events_arrive() -> None:
    def ids(events: list[dict[str, Any]]) -> list[str]:
        with warehouse.connection() as con:
            load_events(con, events)
            build_journey_models(con, CFG, T0 + timedelta(days=40))
            return [
                r[0]
                for r in con.execute(
                    "SELECT journey_id FROM journeys ORDER BY first_touch_at"
                ).fetchall()
            ]

    first_night = ids([event("a", "view", 0)])
    # a later night: the journey grew (day 3) and a second journey began (day 39 > 3 + 30)
    second_night = ids([event("a", "view", 0), event("a", "product", 3), event("a", "view", 39)])
    assert len(second_night) == 2 and second_night[0] == first_night[0] != second_night[1]


def test_as_of_with_a_time_zone_is_taken_in_utc() -> None:
    with warehouse.connection() as con:
        load_events(con, [event("a", "view", 0)])
        # 15:00 at UTC+2 on day 14 is 13:00 UTC: 14 days 13 hours after the touch: abandoned.
        as_of = (T0 + timedelta(days=14, hours=15)).replace(tzinfo=timezone(timedelta(hours=2)))
        summary = build_journey_models(con, CFG, as_of)
    assert summary.as_of == (T0 + timedelta(days=14, hours=13))
    assert summary.status_counts == {"abandoned": 1}
    assert summary.as_of.tzinfo is None


def test_missing_events_table_and_unknown_segment_are_errors_a_user_can_act_on() -> None:
    with warehouse.connection() as con:
        with pytest.raises(WarehouseError, match="table `events` not found"):
            build_journey_models(con, CFG, T0)
        load_events(con, [event("a", "view", 0)])
        with pytest.raises(
            ConfigError, match=r"segments: unknown dimension.*allowed: first_touch_channel"
        ):
            build_journey_models(con, stage_config(FIVE_STAGES, "buy", segments=["shoe_size"]), T0)
