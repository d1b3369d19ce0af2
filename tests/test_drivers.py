"""Emotion line, pain points and drop-off drivers on the canonical mini log (furthest mode).

See tests/stage_builders.py for the log and tests/test_stage_funnel.py for its funnel.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from stage_builders import FIVE_STAGES, MINI_AS_OF_DAY, MINI_EVENTS, T0, load_events, stage_config

from cjm_analytics import warehouse
from cjm_analytics.journeys import build_journey_models


@pytest.fixture(scope="module")
def mini() -> Any:
    con = warehouse.connect()
    load_events(con, MINI_EVENTS)
    cfg = stage_config(FIVE_STAGES, "buy", funnel={"dropoff_min_journeys": 1})
    build_journey_models(con, cfg, T0 + timedelta(days=MINI_AS_OF_DAY))
    yield con
    con.close()


def test_emotion_line_counts_touchpoints_at_the_stage_reached_so_far(mini: Any) -> None:
    rows = mini.execute(
        "SELECT stage, touchpoint_count, csat_count, csat_avg, call_count, failed_call_rate, negative_outcome_rate"
        " FROM stage_sentiment ORDER BY stage_order"
    ).fetchall()
    # aware: views of a, b, c1, e. interest: products of a, b, c2, f (twice) and f's view
    # (after its first product). cart: add_to_cart of a, c2, d, f, d's view and d's failed
    # call (outcome 'abandoned': negative). buy: the orders of a (csat 2) and e (csat 4).
    assert rows == [
        ("aware", 4, 0, None, 0, None, None),
        ("interest", 6, 0, None, 0, None, None),
        ("cart", 6, 0, None, 1, 1.0, 1.0),
        ("buy", 2, 2, 3.0, 0, None, None),
        ("loyal", 1, 0, None, 0, None, None),
    ]


def test_last_touchpoints_before_abandoning_against_movers(mini: Any) -> None:
    rows = mini.execute(
        "SELECT stage, source, event_name, abandoned_journey_count, abandoned_share_rate, moved_on_share_rate,"
        " lift, abandoned_rank FROM abandonment_last_touchpoints ORDER BY stage_order, abandoned_rank"
    ).fetchall()
    # aware: c1 abandoned after its view; of the 6 movers, a, b, e viewed just before
    #   entering interest (c2, d, f entered aware and interest at one touchpoint).
    # interest: b left after a product view; movers' last touch before cart: product for
    #   a, c2, f, view for e (d entered at once).
    # cart: d left after the failed call, f after add_to_cart; movers a (add_to_cart) and
    #   e (view) before buying.
    # buy: a stopped after its order; e ordered just before its repeat (loyal).
    assert rows == [
        ("aware", "web", "view", 1, 1.0, 0.5, 2.0, 1),
        ("interest", "web", "product", 1, 1.0, 0.6, pytest.approx(1 / 0.6), 1),
        ("interest", "web", "view", 0, 0.0, 0.2, 0.0, 2),
        ("cart", "calls", "call_abandoned", 1, 0.5, 0.0, None, 1),
        ("cart", "web", "add_to_cart", 1, 0.5, 0.5, 1.0, 2),
        ("cart", "web", "view", 0, 0.0, 0.5, 0.0, 3),
        ("buy", "web", "order", 1, 1.0, 1.0, 1.0, 1),
    ]


def test_dropoff_driver_of_a_failed_call(mini: Any) -> None:
    row = mini.execute(
        "SELECT abandoned_with, moved_on_with, abandoned_total, moved_on_total, abandonment_rate_with,"
        " abandonment_rate_without, odds_ratio, p_value, q_value, is_driver, next_stage FROM dropoff_drivers"
        " WHERE stage = 'cart' AND feature_kind = 'failed_call'"
    ).fetchall()
    # population at cart: d, f abandoned; a moved on (c2 in progress and e, first seen
    # beyond cart, are left out). failed call: d only. 2x2 = [[1, 1], [0, 1]]; a zero
    # cell -> +0.5 each: OR = (1.5 * 1.5) / (1.5 * 0.5) = 3; Fisher two-sided p = 1.
    # columns: abandoned_with, moved_on_with, abandoned_total, moved_on_total, rate with,
    # rate without, odds ratio, p, q, is_driver, next stage
    expected = (
        1,
        0,
        2,
        1,
        1.0,
        1 / 2,
        pytest.approx(3.0),
        pytest.approx(1.0),
        pytest.approx(1.0),
        False,
        "buy",
    )
    assert row == [expected]


def test_q_values_are_never_below_p_values(mini: Any) -> None:
    rows = mini.execute("SELECT p_value, q_value FROM dropoff_drivers").fetchall()
    assert rows and all(q >= p - 1e-12 for p, q in rows)


def test_page_features_drop_the_query_and_the_fragment() -> None:
    # int_journey_touch_features' 'page' value: the url up to its first '?' or '#'. The regex
    # runs only on urls that hold one; a newline stops it ('.' does not match it in RE2), so
    # such a url is kept whole, as the regex alone keeps it.
    urls = {
        "https://x.test/a?utm_source=mail": "https://x.test/a",
        "https://x.test/b#reviews": "https://x.test/b",
        "https://x.test/c?q=1#top": "https://x.test/c",
        "https://x.test/d#top?q=1": "https://x.test/d",
        "https://x.test/e": "https://x.test/e",
        "?only=query": "",
        "https://x.test/f?q\nz": "https://x.test/f?q\nz",
    }
    model = next(m for m in warehouse.discover_models() if m.name == "int_journey_touch_features")
    with warehouse.connection(None) as con:
        con.execute(
            "CREATE TABLE touchpoints (journey_id VARCHAR, touchpoint_seq BIGINT, source VARCHAR, "
            "event_name VARCHAR, channel VARCHAR, page_url VARCHAR)"
        )
        con.executemany(
            "INSERT INTO touchpoints VALUES (?, ?, 'web', 'view', NULL, ?)",
            [[f"j{i}", i, url] for i, url in enumerate(urls)],
        )
        con.execute("CREATE TABLE emotion_event_kinds (kind VARCHAR, value VARCHAR)")
        pages = con.execute(
            f"SELECT journey_id, feature_value FROM ({model.sql}) WHERE feature_kind = 'page'"
        ).fetchall()
    assert sorted(pages) == sorted((f"j{i}", page) for i, page in enumerate(urls.values()))
