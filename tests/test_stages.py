"""Stage rules -> stage of each event: precedence, URL patterns, conditions, unmapped events."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from stage_builders import T0, event, load_events

from cjm_analytics import warehouse
from cjm_analytics.config import parse_config
from cjm_analytics.errors import ConfigError
from cjm_analytics.journeys import build_journey_models
from cjm_analytics.stages import condition_rows, rule_rows

SOURCES = {
    "web": {"path": "w", "format": "csv", "channel": "web", "identifiers": {"cookie": "c"},
            "columns": {"event_name": "e", "event_at": "t"}, "properties": ["product_category"]},
    "calls": {"path": "c", "format": "csv", "channel": "phone", "identifiers": {"phone": "p"},
              "columns": {"event_name": "e", "event_at": "t"}, "properties": ["reason"]},
}  # fmt: skip


def _config(stages: list[dict[str, Any]]) -> Any:
    return parse_config({"sources": SOURCES, "stages": stages}, Path("."))


RULES = [
    {"name": "awareness", "rules": [{"source": "web", "event": "page_view", "url_pattern": "/(blog|deals)"}]},
    {"name": "consideration", "rules": [
        {"source": "calls", "event": ["call_answered", "call_abandoned"], "where": {"reason": "product_question"},
         "channel": "phone_sales"},
        {"source": "web", "event": "page_view", "where": {"device": ["desktop", "tablet"]}},
    ]},
    {"name": "purchase", "success": True, "rules": [{"event": "order_placed"}]},
    {"name": "advocacy", "rules": [{"event": "survey_response", "where": {"nps_score": ["9", "10"]}},
                                   {"event": "order_placed"}]},
]  # fmt: skip


def _stages_of(events: list[dict[str, Any]], stages: list[dict[str, Any]] = RULES) -> list[tuple]:
    with warehouse.connection() as con:
        load_events(con, events)
        build_journey_models(con, _config(stages), T0 + timedelta(days=10))
        return con.execute(
            "SELECT t.event_id, t.stage, t.stage_order, t.channel FROM touchpoints AS t "
            "JOIN events AS e USING (source, event_id) ORDER BY e.source_row"
        ).fetchall()


def test_rules_match_by_source_event_url_and_conditions() -> None:
    rows = _stages_of(
        [
            event("a", "page_view", 0, page_url="https://x.example/blog/tv"),  # e1 awareness (url)
            event(
                "a", "page_view", 1, page_url="https://x.example/cart", device="desktop"
            ),  # e2 consideration
            event(
                "a", "page_view", 2, page_url="https://x.example/cart", device="mobile"
            ),  # e3 none
            event(
                "a", "call_answered", 3, source="calls", properties={"reason": "product_question"}
            ),  # e4
            event(
                "a", "call_answered", 4, source="calls", properties={"reason": "support"}
            ),  # e5 none
            event(
                "a", "survey_response", 5, source="web", nps_score=9.0
            ),  # e6 advocacy ("9" == 9.0)
            event("a", "survey_response", 6, source="web", nps_score=3.0),  # e7 none
        ]
    )
    assert rows == [
        ("e1", "awareness", 1, "web"),
        ("e2", "consideration", 2, "web"),
        ("e3", None, None, "web"),
        ("e4", "consideration", 2, "phone_sales"),  # the rule's channel overrides the source's
        ("e5", None, None, "calls"),
        ("e6", "advocacy", 4, "web"),
        ("e7", None, None, "web"),
    ]


def test_first_matching_rule_in_config_order_wins() -> None:
    # order_placed matches purchase (stage 3) and advocacy (stage 4): purchase comes first.
    assert _stages_of([event("a", "order_placed", 0)]) == [("e1", "purchase", 3, "web")]


def test_unmapped_events_are_kept_and_counted() -> None:
    with warehouse.connection() as con:
        load_events(
            con,
            [event("a", "order_placed", 0), event("a", "login", 1), event("b", "login", 2),
             event("b", "logout", 3), {**event("c", "login", 4), "customer_id": None}],
        )  # fmt: skip
        summary = build_journey_models(con, _config(RULES), T0 + timedelta(days=10))
        unmapped = con.execute(
            "SELECT source, event_name, touchpoint_count, customer_count, source_share_rate FROM unmapped_events"
        ).fetchall()
    # 4 touchpoints (the event without customer is not one, but is counted), 3 unmapped:
    # login x2 (customers a, b), logout x1; source web has 4 touchpoints -> 2/4 and 1/4.
    assert unmapped == [("web", "login", 2, 2, 0.5), ("web", "logout", 1, 1, 0.25)]
    assert (summary.touchpoint_count, summary.unmapped_touchpoint_count) == (4, 3)
    assert summary.events_without_customer_count == 1
    assert summary.unmapped_rate == pytest.approx(0.75)


def test_rule_lists_expand_and_conditions_become_rows() -> None:
    cfg = _config(RULES)
    consideration_rows = [r for r in rule_rows(cfg) if r.stage == "consideration"]
    # rule 2 lists one source x two events -> 2 rows; rule 3 one row
    assert [(r.rule_id, r.event_name) for r in consideration_rows] == [
        (2, "call_answered"), (2, "call_abandoned"), (3, "page_view")
    ]  # fmt: skip
    conditions = [
        (c.rule_id, c.field, c.is_property, c.json_path, c.value) for c in condition_rows(cfg)
    ]
    assert conditions == [
        (2, "reason", True, '$."reason"', "product_question"),
        (3, "device", False, None, "desktop"),
        (3, "device", False, None, "tablet"),
        (5, "nps_score", False, None, "9"),
        (5, "nps_score", False, None, "10"),
    ]


def test_unknown_condition_field_names_the_rule_and_what_is_allowed() -> None:
    cfg = _config(
        [{"name": "a", "success": True, "rules": [{"source": "web", "where": {"reasn": "x"}}]}]
    )
    with pytest.raises(
        ConfigError, match=r"stages\.a\.rules\[0\]\.where: unknown field 'reasn'.*product_category"
    ):
        condition_rows(cfg)


def test_explicit_property_key_and_odd_characters_are_data() -> None:
    stages = [
        {
            "name": "a",
            "success": True,
            "rules": [{"where": {'properties.we"ird.key': "x'; drop table events; --"}}],
        }
    ]
    rows = _stages_of(
        [
            event("a", "e", 0, properties={'we"ird.key': "x'; drop table events; --"}),
            event("a", "e", 1),
        ],
        stages,
    )
    assert rows == [("e1", "a", 1, "web"), ("e2", None, None, "web")]


def test_url_pattern_rejected_by_re2_is_a_config_error() -> None:
    stages = [{"name": "a", "success": True, "rules": [{"url_pattern": "(?=look)ahead"}]}]
    with pytest.raises(ConfigError, match="url_pattern"):
        _stages_of([event("a", "e", 0)], stages)


def test_each_rule_tests_its_own_url_pattern() -> None:
    # three rules with patterns, each its own bound variable in stage_rule_url_matches:
    #   awareness: "/blog/"; consideration: "it's" (a quote is data, not SQL) or an empty
    #   pattern on the calls source (matches every URL, even none); purchase: "^https://shop"
    stages = [
        {"name": "awareness", "rules": [{"source": "web", "event": "page_view", "url_pattern": "/blog/"}]},
        {"name": "consideration", "rules": [
            {"source": "web", "event": "page_view", "url_pattern": "it's"},
            {"source": "calls", "url_pattern": ""},
        ]},
        {"name": "purchase", "success": True, "rules": [{"event": "page_view", "url_pattern": "^https://shop"}]},
    ]  # fmt: skip
    rows = _stages_of(
        [
            event("a", "page_view", 0, page_url="https://shop.example/blog/it's"),  # e1: all
            event("a", "page_view", 1, page_url="https://x.example/it's-new"),  # e2: 2nd rule
            event("a", "page_view", 2, page_url="https://shop.example/cart"),  # e3: purchase
            event("a", "page_view", 3, page_url="https://x.example/cart"),  # e4: none
            event("a", "call_answered", 4, source="calls"),  # e5: empty pattern, no URL
        ],
        stages,
    )
    # e1 matches all three patterns: the first rule in config order (awareness) wins
    assert [(r[0], r[1]) for r in rows] == [
        ("e1", "awareness"),
        ("e2", "consideration"),
        ("e3", "purchase"),
        ("e4", None),
        ("e5", "consideration"),
    ]
