"""The stage funnel on the canonical mini log (tests/stage_builders.py), worked by hand.

Furthest mode (furthest stage order per journey: a 4, b 2, c1 1, c2 3, d 3, e 5, f 3):

| stage    | reached | converted | abandoned | in progress | median days | p90 days |
| aware    | 7       | 6         | 1 (c1)    | 0           | 0           | 2        |
| interest | 6       | 5         | 1 (b)     | 0           | 2           | 15       |
| cart     | 5       | 2         | 2 (d, f)  | 1 (c2)      | 1           | None     |
| buy      | 2       | 1         | 1 (a)     | 0           | 1           | 1        |
| loyal    | 1       | -         | -         | -           | -           | -        |

Ordered mode (chains: a 1-4, b 1-2, c1 1, c2 none, d 1, e 1, f 1-3):

| stage    | reached | converted | abandoned   | in progress |
| aware    | 6       | 3         | 2 (c1, d)   | 1 (e)       |
| interest | 3       | 2         | 1 (b)       | 0           |
| cart     | 2       | 1         | 1 (f)       | 0           |
| buy      | 1       | 0         | 1 (a)       | 0           |
| loyal    | 0       | -         | -           | -           |
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stage_builders import (
    FIVE_STAGES,
    MINI_AS_OF_DAY,
    MINI_EVENTS,
    T0,
    event,
    load_events,
    stage_config,
)

from cjm_analytics import stats, warehouse
from cjm_analytics.journeys import build_journey_models, funnel_summary

DAY = 86_400.0
AS_OF = T0 + timedelta(days=MINI_AS_OF_DAY)
COUNTS = "stage, reached_count, converted_count, abandoned_count, in_progress_count"


@pytest.fixture(scope="module")
def mini() -> Any:
    con = warehouse.connect()
    load_events(con, MINI_EVENTS)
    yield con
    con.close()


def _build(con: Any, mode: str = "furthest", **overrides: Any) -> Any:
    return build_journey_models(
        con, stage_config(FIVE_STAGES, "buy", funnel={"mode": mode}, **overrides), AS_OF
    )


def test_furthest_mode_counts(mini: Any) -> None:
    summary = _build(mini)
    assert mini.execute(f"SELECT {COUNTS} FROM stage_funnel ORDER BY stage_order").fetchall() == [
        ("aware", 7, 6, 1, 0),
        ("interest", 6, 5, 1, 0),
        ("cart", 5, 2, 2, 1),
        ("buy", 2, 1, 1, 0),
        ("loyal", 1, None, None, None),
    ]
    # converted: a, e; abandoned: b, c1, d, f; in progress: c2
    assert summary.status_counts == {"converted": 2, "abandoned": 4, "in_progress": 1}


def test_ordered_mode_counts(mini: Any) -> None:
    summary = _build(mini, mode="ordered")
    assert mini.execute(f"SELECT {COUNTS} FROM stage_funnel ORDER BY stage_order").fetchall() == [
        ("aware", 6, 3, 2, 1),
        ("interest", 3, 2, 1, 0),
        ("cart", 2, 1, 1, 0),
        ("buy", 1, 0, 1, 0),
        ("loyal", 0, None, None, None),
    ]
    # e bought without interest and cart in order: not converted in ordered mode, and its
    # last touch (day 53) is 7 days old: in progress. c2 never touched aware: no stage.
    assert summary.status_counts == {"converted": 1, "abandoned": 4, "in_progress": 2}
    assert summary.journeys_without_stage_count == 1


def test_rates_and_wilson_bounds_match_the_python_reference(mini: Any) -> None:
    _build(mini)
    rows = mini.execute(
        "SELECT converted_count, reached_count, conversion_rate, conversion_rate_low, conversion_rate_high,"
        " abandonment_rate FROM stage_funnel WHERE NOT is_final_stage ORDER BY stage_order"
    ).fetchall()
    assert [r[2] for r in rows] == pytest.approx([6 / 7, 5 / 6, 2 / 5, 1 / 2])
    assert [r[5] for r in rows] == pytest.approx([1 / 7, 1 / 6, 2 / 5, 1 / 2])
    for converted, reached, _, low, high, _ in rows:
        assert (low, high) == pytest.approx(stats.wilson_interval(converted, reached))


def test_time_to_next_stage_is_kaplan_meier_with_open_journeys_censored(mini: Any) -> None:
    _build(mini)
    rows = mini.execute(
        "SELECT time_to_next_median_seconds, time_to_next_p90_seconds, time_to_next_observed_count,"
        " time_to_next_censored_count FROM stage_funnel ORDER BY stage_order"
    ).fetchall()
    # aware: movers 0,0,0,1,2,2 days -> S(0) = 0.5: median 0; p90 2 days.
    # interest: movers 0,0,2,3,15 -> S(0)=.6, S(2)=.45: median 2; S(15)=0: p90 15.
    # cart: movers a (1 day), e (0); c2 in progress, censored at 60-55 = 5 days; d, f
    #   abandoned are not at risk. S(0)=2/3, S(1)=1/3: median 1; p90 never reached.
    # buy: mover e (1 day); a abandoned after buying is not at risk.
    assert rows == [
        (0.0, 2 * DAY, 6, 0),
        (2 * DAY, 15 * DAY, 5, 0),
        (1 * DAY, None, 2, 1),
        (1 * DAY, 1 * DAY, 1, 0),
        (None, None, None, None),
    ]


def test_a_stage_where_most_journeys_are_still_open_has_no_median_yet() -> None:
    # 1 journey moved on after 1 day; 4 entered "interest" 10 days before as-of and are
    # open (abandonment after 14 days). KM: S(1 day) = 1 - 1/5 = 0.8 > 0.5, so the median is
    # unknown (NULL), where the movers' plain median would claim 1 day.
    events = [event("m", "product", 0), event("m", "add_to_cart", 1)]
    events += [event(f"o{i}", "product", 50) for i in range(4)]
    with warehouse.connection() as con:
        load_events(con, events)
        _build(con)
        row = con.execute(
            "SELECT reached_count, converted_count, in_progress_count, time_to_next_median_seconds,"
            " time_to_next_censored_count FROM stage_funnel WHERE stage = 'interest'"
        ).fetchall()
    assert row == [(5, 1, 4, None, 4)]


def test_segment_breakdown(mini: Any) -> None:
    _build(mini)
    rows = mini.execute(
        f"SELECT dimension, segment_value, {COUNTS} FROM stage_funnel_by_segment"
        " WHERE dimension IN ('device', 'channel', 'customer_type') AND stage IN ('aware', 'cart')"
        " ORDER BY dimension, segment_value, stage_order"
    ).fetchall()
    # device (first non-NULL in the journey): desktop a, c2, e; mobile b, c1, d, f.
    # channel: phone d only (overlapping groups: d also counts in web).
    # customer_type: c2 is c's second journey: returning; the rest new.
    assert rows == [
        ("channel", "phone", "aware", 1, 1, 0, 0),
        ("channel", "phone", "cart", 1, 0, 1, 0),
        ("channel", "web", "aware", 7, 6, 1, 0),
        ("channel", "web", "cart", 5, 2, 2, 1),
        ("customer_type", "new", "aware", 6, 5, 1, 0),
        ("customer_type", "new", "cart", 4, 2, 2, 0),
        ("customer_type", "returning", "aware", 1, 1, 0, 0),
        ("customer_type", "returning", "cart", 1, 0, 0, 1),
        ("device", "desktop", "aware", 3, 3, 0, 0),
        ("device", "desktop", "cart", 3, 2, 0, 1),
        ("device", "mobile", "aware", 4, 3, 1, 0),
        ("device", "mobile", "cart", 2, 0, 2, 0),
    ]


def test_funnel_summary_frame(mini: Any) -> None:
    _build(mini)
    frame = funnel_summary(mini)
    assert frame["stage"].to_list() == ["aware", "interest", "cart", "buy", "loyal"]
    assert frame["reached_count"].to_list() == [7, 6, 5, 2, 1]


# --- properties and a Python reference -------------------------------------------------

NAMES = ["view", "product", "add_to_cart", "order", "repeat", "other"]
random_events = st.lists(
    st.tuples(st.sampled_from("abcde"), st.sampled_from(NAMES), st.integers(0, 90)),
    min_size=1,
    max_size=25,
)


def _events(rows: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    return [event(customer, name, day) for customer, name, day in rows]


def _reference_reached(rows: list[tuple[str, str, int]], mode: str) -> list[int]:
    """reached(k) computed in plain Python: sort, split at gaps > 30 days, furthest/ordered."""
    order = {name: k for k, (_, names) in enumerate(FIVE_STAGES, start=1) for name in names}
    numbered = sorted((c, d, i, order.get(n)) for i, (c, n, d) in enumerate(rows))
    journeys: list[list[int | None]] = []
    for position, (customer, day, _, stage) in enumerate(numbered):
        previous = numbered[position - 1] if position else None
        if previous is None or previous[0] != customer or day - previous[1] > 30:
            journeys.append([])
        journeys[-1].append(stage)
    reached = [0] * len(FIVE_STAGES)
    for stages in journeys:
        if mode == "furthest":
            top = max((s for s in stages if s is not None), default=0)
        else:
            top = 0
            for s in stages:
                top += s == top + 1
        for k in range(top):
            reached[k] += 1
    return reached


def _funnel_rows(con: Any) -> list[tuple]:
    return con.execute(
        f"SELECT {COUNTS}, conversion_rate, conversion_rate_low, conversion_rate_high, abandonment_rate,"
        " time_to_next_median_seconds FROM stage_funnel ORDER BY stage_order"
    ).fetchall()


def _km_both_ways(con: Any) -> tuple[list[tuple], list[tuple]]:
    """(median, p90) per non-final stage from SQL and from stats.kaplan_meier_quantile."""
    sql = con.execute(
        "SELECT time_to_next_median_seconds, time_to_next_p90_seconds FROM stage_funnel"
        " WHERE NOT is_final_stage ORDER BY stage_order"
    ).fetchall()
    python = []
    for k in range(1, len(FIVE_STAGES)):
        rows = con.execute(
            "SELECT time_to_next_seconds, entered_at, is_km_event FROM int_journey_stage_facts"
            " WHERE is_km_at_risk AND stage_order = ?",
            [k],
        ).fetchall()
        # movers: their time to the next stage; in progress: censored at as_of - entered_at
        durations = [
            moved if moved is not None else max((AS_OF - entered).total_seconds(), 0.0)
            for moved, entered, _ in rows
        ]
        observed = [r[2] for r in rows]
        python.append(
            tuple(stats.kaplan_meier_quantile(durations, observed, q) for q in (0.5, 0.9))
        )
    return sql, python


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=random_events, mode=st.sampled_from(["furthest", "ordered"]))
def test_funnel_properties_and_python_reference(
    rows: list[tuple[str, str, int]], mode: str
) -> None:
    with warehouse.connection() as con:
        load_events(con, _events(rows))
        _build(con, mode=mode)
        funnel = _funnel_rows(con)
        km_sql, km_python = _km_both_ways(con)
    assert km_sql == km_python
    reached = [r[1] for r in funnel]
    assert reached == _reference_reached(rows, mode)
    assert reached == sorted(reached, reverse=True)
    for _, reach, converted, abandoned, in_progress, *rates, _median in funnel[:-1]:
        assert reach == converted + abandoned + in_progress
        assert all(0 <= r <= 1 for r in rates if r is not None)
    assert all(funnel[k][2] == funnel[k + 1][1] for k in range(len(funnel) - 1))


@settings(max_examples=4, deadline=None)
@given(rows=random_events, seed=st.integers(0, 1000))
def test_funnel_unchanged_by_row_order_and_renamed_ids(
    rows: list[tuple[str, str, int]], seed: int
) -> None:
    events = _events(rows)
    with warehouse.connection() as con:
        load_events(con, events)
        _build(con)
        before = _funnel_rows(con)
        numbered = [{**e, "event_id": f"x{n}", "source_row": n} for n, e in enumerate(events)]
        shuffled = random.Random(seed).sample(numbered, len(numbered))
        renamed = [
            {**e, "customer_id": "id-" + e["customer_id"][::-1], "event_id": "z" + e["event_id"]}
            for e in shuffled
        ]
        load_events(con, renamed)
        con.execute("UPDATE events SET event_id = 'z' || source_row")
        _build(con)
        after = _funnel_rows(con)
    assert after == before
