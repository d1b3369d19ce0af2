"""The constraint is the transition with headroom against a demonstrated benchmark, not
simply the lowest rate.

80 journeys, 40 on desktop and 40 on mobile (all abandoned or converted by as-of):

| transition        | desktop     | mobile     | all          | best Wilson lower bound      |
| aware -> interest | 20/40       | 20/40      | 40/80 = .50  | .352 (20/40) < .50: no gain  |
| interest -> cart  | 20/20       | 4/20       | 24/40 = .60  | .8389 (20/20, desktop)       |
| cart -> buy       | 11/20       | 2/4        | 13/24 = .542 | .342 (11/20) < .542: no gain |

Wilson lower bound of 20/20 = 20 / (20 + z^2) = 20 / 23.8415 = 0.83887.
Gain of interest -> cart = reached 40 x (0.83887 - 0.6) x later rate 13/24 = 5.1755 extra
purchases; the other transitions gain 0. So the constraint is interest -> cart, while the
lowest rate and the largest loss (40 abandoned) are aware -> interest.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from stage_builders import FIVE_STAGES, T0, event, load_events, stage_config

from cjm_analytics import stats, warehouse
from cjm_analytics.journeys import build_journey_models, constraint_summary

AS_OF = T0 + timedelta(days=100)


def _journeys(
    device: str, count: int, to_interest: int, to_cart: int, to_buy: int
) -> list[dict[str, Any]]:
    events = []
    for i in range(count):
        customer = f"{device}{i}"
        events.append(event(customer, "view", 0, device=device))
        steps = [("product", i < to_interest), ("add_to_cart", i < to_cart), ("order", i < to_buy)]
        events += [
            event(customer, name, day) for day, (name, taken) in enumerate(steps, start=1) if taken
        ]
    return events


EVENTS = _journeys("desktop", 40, 20, 20, 11) + _journeys("mobile", 40, 20, 4, 2)


def _build(con: Any, min_journeys: int) -> None:
    cfg = stage_config(FIVE_STAGES, "buy", funnel={"benchmark_min_journeys": min_journeys})
    build_journey_models(con, cfg, AS_OF)


def test_constraint_is_the_transition_with_headroom_not_the_lowest_rate() -> None:
    with warehouse.connection() as con:
        load_events(con, EVENTS)
        _build(con, min_journeys=20)
        what_if = con.execute(
            "SELECT transition, conversion_rate, benchmark_rate, benchmark_dimension,"
            " benchmark_segment_value, extra_successes, is_constraint FROM stage_what_if ORDER BY from_stage_order"
        ).fetchall()
        findings = constraint_summary(con)
        interval = con.execute(
            "SELECT extra_successes_low, extra_successes, extra_successes_high FROM stage_what_if"
            " WHERE is_constraint"
        ).fetchall()[0]
    low_20_of_20 = stats.wilson_interval(20, 20)[0]  # type: ignore[index]
    assert low_20_of_20 == pytest.approx(0.83887, abs=1e-5)
    assert what_if[:3] == [
        ("aware -> interest", 0.5, 0.5, "customer_type", "new", 0.0, False),
        (
            "interest -> cart",
            0.6,
            pytest.approx(low_20_of_20),
            "device",
            "desktop",
            pytest.approx(5.1755, abs=1e-3),
            True,
        ),
        ("cart -> buy", 13 / 24, 13 / 24, "customer_type", "new", 0.0, False),
    ]
    # buy -> loyal is after the success stage: it cannot add purchases
    assert what_if[3][0] == "buy -> loyal" and what_if[3][5] == 0.0
    assert {name: row["transition"] for name, row in findings.items()} == {
        "constraint": "interest -> cart",
        "lowest_rate": "aware -> interest",
        "largest_loss": "aware -> interest",
        "slowest_stage": "aware -> interest",  # every median is 1 day: the first one is named
    }
    assert findings["largest_loss"]["value"] == 40
    low, gain, high = interval
    assert 0 < low < gain < high


def test_segments_below_the_minimum_size_set_no_benchmark() -> None:
    with warehouse.connection() as con:
        load_events(con, EVENTS)
        _build(con, min_journeys=21)  # desktop has only 20 journeys at interest
        findings = constraint_summary(con)
        gains = con.execute("SELECT max(extra_successes) FROM stage_what_if").fetchall()[0][0]
    assert gains == 0.0
    assert findings["constraint"]["transition"] is None


def test_segment_values_are_taken_as_known_when_the_journey_entered_the_stage() -> None:
    # x's region arrives with its order (day 2): unknown at aware and interest, known at
    # cart (entered at that very order in furthest mode) and buy. The final stage has no
    # transition and no row.
    events = [
        event("x", "view", 0),
        event("x", "product", 1),
        event("x", "order", 2, region="Berlin"),
    ]
    with warehouse.connection() as con:
        load_events(con, events)
        _build(con, min_journeys=1)
        rows = con.execute(
            "SELECT stage_order, segment_value FROM int_stage_entry_segments"
            " WHERE dimension = 'region' ORDER BY stage_order"
        ).fetchall()
    assert rows == [(1, "(unknown)"), (2, "(unknown)"), (3, "Berlin"), (4, "Berlin")]
