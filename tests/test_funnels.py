"""Hand-built cases for every rule of the ad-hoc event funnel (issue #4, docs/funnels.md).

Each log is written inline as "unit: name@second name@second ..." with the expected
numbers worked out in a comment beside the assertion.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import polars as pl
import pytest

from cjm_analytics import warehouse
from cjm_analytics.errors import FunnelError
from cjm_analytics.funnels import event_funnel, funnel_units

T0 = datetime(2024, 5, 1)


def log(text: str, **props: dict[str, Any]) -> pl.DataFrame:
    """'u1: a@0 b@5; u2: a@3' -> events; `props` maps 'u1:b@5' to extra columns."""
    rows = []
    for part in text.split(";"):
        unit, _, events = part.partition(":")
        for token in events.split():
            name, _, second = token.partition("@")
            key = f"{unit.strip()}:{token}"
            extra = props.get(key.replace(":", "_").replace("@", "_"), {})
            rows.append({"customer_id": unit.strip(), "event_name": name,
                         "event_at": T0 + timedelta(seconds=float(second)), **extra})  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"event_at": pl.Datetime("us")})


def counts(events: pl.DataFrame, steps: list[Any], **kwargs: Any) -> list[int]:
    return event_funnel(events, steps, **kwargs)["unit_count"].to_list()


def units(events: pl.DataFrame, steps: list[Any], **kwargs: Any) -> dict[str, int]:
    frame = funnel_units(events, steps, **kwargs)
    return dict(zip(frame["unit"], frame["furthest_step"], strict=True))


def col(events: pl.DataFrame, steps: list[Any], name: str, **kwargs: Any) -> list[Any]:
    return event_funnel(events, steps, **kwargs)[name].to_list()


# --- counts and rates -----------------------------------------------------------------


def test_counts_are_cumulative_and_rates_follow():
    # u1 reaches c, u2 reaches b, u3 only a; u4 never does a, so it is not in the funnel.
    # counts [3, 2, 1]; from previous [1, 2/3, 1/2]; from start [1, 2/3, 1/3]
    events = log("u1: a@0 b@1 c@2; u2: a@0 b@1; u3: a@0; u4: b@0 c@1")
    frame = event_funnel(events, ["a", "b", "c"])
    assert frame.columns == [
        "step", "event_name", "unit_count", "conversion_rate_from_previous",
        "conversion_rate_from_start", "avg_time_from_previous_seconds",
        "median_time_from_previous_seconds",
    ]  # fmt: skip
    assert frame["step"].to_list() == [1, 2, 3]
    assert frame["unit_count"].to_list() == [3, 2, 1]
    assert frame["conversion_rate_from_previous"].to_list() == pytest.approx([1, 2 / 3, 1 / 2])
    assert frame["conversion_rate_from_start"].to_list() == pytest.approx([1, 2 / 3, 1 / 3])
    assert units(events, ["a", "b", "c"]) == {"u1": 3, "u2": 2, "u3": 1}


def test_zero_units_gives_zero_rows_of_counts_and_null_rates():
    # nobody did step 1: every step is there with 0 and rates are 0/0 -> null
    frame = event_funnel(log("u1: b@0"), ["a", "b"])
    assert frame["unit_count"].to_list() == [0, 0]
    assert frame["conversion_rate_from_start"].to_list() == [None, None]
    # with a breakdown there is no bucket at all
    empty = event_funnel(log("u1: b@0").with_columns(device=pl.lit("m")), ["a"], breakdown="device")
    assert empty.height == 0 and "breakdown_value" in empty.columns


# --- ordered: window, attempts ----------------------------------------------------------


def test_window_is_inclusive_and_measured_from_step_one():
    events = log("u1: a@0 b@6 c@10")
    # c comes exactly 10 s after a: a window of 10 counts it, 9 does not
    assert counts(events, ["a", "b", "c"], window_seconds=10) == [1, 1, 1]
    assert counts(events, ["a", "b", "c"], window_seconds=9) == [1, 1, 0]
    # the window runs from step 1, not from the previous step: b->c is 4 s but a->c is 10
    assert counts(events, ["a", "b", "c"], window_seconds=7) == [1, 1, 0]


def test_each_step_takes_the_earliest_matching_event_after_the_previous():
    # b@1 comes before a, so it cannot serve; b@5 and b@8 follow a@2: b@5 is taken (3 s)
    events = log("u1: b@1 a@2 b@5 b@8")
    assert col(events, ["a", "b"], "avg_time_from_previous_seconds") == [None, 3.0]


def test_a_later_step_one_rescues_a_conversion():
    # a@0 has no b within 10 s; a@20 then b@25 converts, with 5 s from a
    events = log("u1: a@0 a@20 b@25")
    assert counts(events, ["a", "b"], window_seconds=10) == [1, 1]
    assert col(events, ["a", "b"], "median_time_from_previous_seconds", window_seconds=10) == [
        None,
        5.0,
    ]


def test_the_furthest_attempt_counts_even_when_another_is_faster():
    # attempt 1: a@0 b@1 (1 s) stops; attempt 2: a@10 b@15 c@16 reaches c.
    # The counting attempt is attempt 2, so a->b is 5 s (not 1) and b->c 1 s.
    events = log("u1: a@0 b@1 a@10 b@15 c@16")
    frame = event_funnel(events, ["a", "b", "c"], window_seconds=100)
    assert frame["avg_time_from_previous_seconds"].to_list() == [None, 5.0, 1.0]


def test_equal_attempts_the_latest_start_counts():
    # a@0 and a@2 both reach b@5 (same furthest, same completion): the latest step 1
    # anchors, as in PostHog, so the time is 3 s, not 5 s
    events = log("u1: a@0 a@2 b@5")
    assert col(events, ["a", "b"], "avg_time_from_previous_seconds") == [None, 3.0]


def test_the_earliest_completion_counts_before_a_later_start():
    # attempt a@0 completes at b@3; attempt a@4 completes at b@9 (later). Both reach b,
    # the first to reach it counts: 3 s.
    events = log("u1: a@0 b@3 a@4 b@9")
    assert col(events, ["a", "b"], "avg_time_from_previous_seconds") == [None, 3.0]


def test_one_event_fills_at_most_one_step():
    # steps [a, a]: u1 has one a (reaches 1); u2 two a's at the same instant (reaches 2 in
    # 0 s); u3 a@0 a@5 (reaches 2 in 5 s)
    events = log("u1: a@0; u2: a@0 a@0; u3: a@0 a@5")
    assert units(events, ["a", "a"]) == {"u1": 1, "u2": 2, "u3": 2}
    assert col(events, ["a", "a"], "avg_time_from_previous_seconds") == [None, 2.5]


def test_same_instant_events_are_taken_in_the_order_that_helps():
    # b and a at the same instant: a can be step 1 and b step 2, 0 s apart
    assert counts(log("u1: b@0 a@0"), ["a", "b"]) == [1, 1]
    # [a, b, a] from one instant a, a, b: order a, b, a completes all three
    assert counts(log("u1: a@0 a@0 b@0"), ["a", "b", "a"]) == [1, 1, 1]
    # ...but one a cannot be both step 1 and step 3
    assert counts(log("u1: a@0 b@0"), ["a", "b", "a"]) == [1, 1, 0]


def test_window_zero_counts_only_same_instant_steps():
    # u1 does b at the same instant as a (converts); u2 one second later (does not)
    events = log("u1: a@0 b@0; u2: a@0 b@1")
    assert counts(events, ["a", "b"], window_seconds=0) == [2, 1]


def test_steps_with_the_same_event_and_different_filters():
    # steps [a where plan=pro, a]: u1 pro@0 then free@1 reaches 2; u2 free@0 then pro@1
    # starts at pro@1 and has no a after it: reaches 1; u3 has a single pro a: one event
    # cannot fill both steps, reaches 1
    events = log(
        "u1: a@0 a@1; u2: a@0 a@1; u3: a@0",
        u1_a_0={"plan": "pro"}, u1_a_1={"plan": "free"},
        u2_a_0={"plan": "free"}, u2_a_1={"plan": "pro"}, u3_a_0={"plan": "pro"},
    )  # fmt: skip
    steps = [{"event": "a", "where": {"plan": "pro"}}, "a"]
    assert units(events, steps) == {"u1": 2, "u2": 1, "u3": 1}
    # at one instant the pro event is kept for the step that needs it: steps [a, a pro]
    # with free and pro at the same instant complete (free first, then pro)
    tied = log("u1: a@0 a@0", u1_a_0={"plan": "free"})
    tied = tied.with_columns(plan=pl.Series(["free", "pro"]))
    assert counts(tied, ["a", {"event": "a", "where": {"plan": "pro"}}]) == [1, 1]


def test_where_accepts_a_list_of_values_and_none():
    events = log("u1: a@0; u2: a@0; u3: a@0").with_columns(plan=pl.Series(["pro", "team", None]))
    assert counts(events, [{"event": "a", "where": {"plan": ["pro", "team"]}}]) == [2]
    assert counts(events, [{"event": "a", "where": {"plan": None}}]) == [1]


# --- strict -----------------------------------------------------------------------------


def test_strict_allows_no_other_event_in_between():
    # x between a and b breaks strict (any name counts), not ordered
    events = log("u1: a@0 x@1 b@2")
    assert counts(events, ["a", "b"], mode="strict") == [1, 0]
    assert counts(events, ["a", "b"], mode="ordered") == [1, 1]
    # a second a in between is "another event" too, but it starts its own attempt: 1 s
    events = log("u1: a@0 a@1 b@2")
    assert col(events, ["a", "b"], "avg_time_from_previous_seconds", mode="strict") == [None, 1.0]
    # a repeated b between b and c breaks it: reaches 2
    assert counts(log("u1: a@0 b@1 b@2 c@3"), ["a", "b", "c"], mode="strict") == [1, 1, 0]


def test_strict_with_ties_places_other_events_outside_when_it_can():
    # x at a's instant can go before a: converts
    assert counts(log("u1: x@0 a@0 b@1"), ["a", "b"], mode="strict") == [1, 1]
    # x at b's instant, with c later: x must sit between a..b or b..c: reaches b only
    assert counts(log("u1: a@0 b@1 x@1 c@2"), ["a", "b", "c"], mode="strict") == [1, 1, 0]
    # x at the last step's instant goes after it: converts
    assert counts(log("u1: a@0 b@1 x@1"), ["a", "b"], mode="strict") == [1, 1]


# --- unordered ----------------------------------------------------------------------------


def test_unordered_counts_distinct_steps_in_one_window_any_first():
    # u1: b then a: 2 steps in 1 s; u2: c@0 alone, then a@100 b@101 inside a 10 s window:
    # the best window has 2 steps (a, b), never 3
    events = log("u1: b@0 a@1; u2: c@0 a@100 b@101")
    assert counts(events, ["a", "b", "c"], mode="unordered", window_seconds=10) == [2, 2, 0]
    # time between the 1st and 2nd step reached: 1 s for both units
    assert col(events, ["a", "b", "c"], "avg_time_from_previous_seconds",
               mode="unordered", window_seconds=10) == [None, 1.0, None]  # fmt: skip


def test_unordered_repeated_step_needs_two_events():
    # steps [a, a, b]: u1 has one a and a b -> 2; u2 two a's and a b -> 3
    events = log("u1: a@0 b@1; u2: a@0 b@1 a@2")
    assert units(events, ["a", "a", "b"], mode="unordered") == {"u1": 2, "u2": 3}


# --- exclusions -----------------------------------------------------------------------------

X01 = [{"event": "x", "from_step": 0, "to_step": 1}]


def test_exclusion_strictly_between_the_steps_removes_the_unit():
    # u1: x between a and b: removed from every step; u2: x before a: kept;
    # u3: x at the same instant as a: not strictly between: kept;
    # u4: x after b: kept
    events = log("u1: a@0 x@1 b@2; u2: x@0 a@1 b@2; u3: x@0 a@0 b@2; u4: a@0 b@1 x@2")
    assert units(events, ["a", "b"], exclusions=X01) == {"u2": 2, "u3": 2, "u4": 2}
    assert counts(events, ["a", "b"], exclusions=X01) == [3, 3]


def test_exclusion_when_the_attempt_stops_counts_inside_the_window_only():
    # a without b: x 5 s later is inside the 10 s window -> removed; x at 15 s is not
    events = log("u1: a@0 x@5; u2: a@0 x@15; u3: a@0 x@10")
    # u3: x exactly at the window's end is inside (inclusive)
    assert units(events, ["a", "b"], exclusions=X01, window_seconds=10) == {"u2": 1}


def test_exclusion_looks_at_the_furthest_attempt():
    # u1: attempt a@0 is excluded (x@1) but attempt a@20 b@21 is clean and goes further:
    # counted at 2. u2: attempt a@0 b@1 x@2 c@3 reaches c with x between b and c; the
    # clean attempt a@10 b@11 only reaches b: the furthest attempt is excluded -> removed.
    events = log("u1: a@0 x@1 a@20 b@21; u2: a@0 b@1 x@2 c@3 a@10 b@11")
    # (for steps [a, b] with x between 0 and 1, u2's x@2 comes after b: u2 is kept)
    assert units(events, ["a", "b"], exclusions=X01, window_seconds=10) == {"u1": 2, "u2": 2}
    x12 = [{"event": "x", "from_step": 1, "to_step": 2}]
    assert units(events, ["a", "b", "c"], exclusions=x12, window_seconds=100) == {"u1": 2}


def test_a_clean_attempt_of_the_same_reach_replaces_an_excluded_one():
    # both attempts reach only step 1; a@0's window holds x, a@20's does not: kept at 1
    events = log("u1: a@0 x@1 a@20")
    assert units(events, ["a", "b"], exclusions=X01, window_seconds=10) == {"u1": 1}


def test_exclusion_with_where_and_a_wider_range():
    # x only counts with reason=refund; it may fall anywhere between step 0 and step 2
    events = log("u1: a@0 b@1 x@2 c@3; u2: a@0 b@1 x@2 c@3")
    events = events.with_columns(
        reason=pl.when((pl.col("customer_id") == "u1") & (pl.col("event_name") == "x"))
        .then(pl.lit("refund")).otherwise(pl.lit("other"))
    )  # fmt: skip
    x02 = [{"event": "x", "from_step": 0, "to_step": 2, "where": {"reason": "refund"}}]
    assert units(events, ["a", "b", "c"], exclusions=x02) == {"u2": 3}


# --- breakdowns -------------------------------------------------------------------------------


def _devices(events: pl.DataFrame, devices: list[str | None]) -> pl.DataFrame:
    return events.with_columns(device=pl.Series(devices, dtype=pl.String))


def test_breakdown_first_and_last_touch_skip_nulls_and_bucket_none_as_empty():
    # u1: a(null) b(m) c(d): first non-null m, last d; u2: all null -> ""
    events = _devices(log("u1: a@0 b@1 c@2; u2: a@0 b@1"), [None, "m", "d", None, None])
    first = event_funnel(events, ["a", "b", "c"], breakdown="device")
    assert first.filter(pl.col("breakdown_value") == "m")["unit_count"].to_list() == [1, 1, 1]
    assert first.filter(pl.col("breakdown_value") == "")["unit_count"].to_list() == [1, 1, 0]
    last = event_funnel(
        events, ["a", "b", "c"], breakdown="device", breakdown_attribution="last_touch"
    )
    assert sorted(set(last["breakdown_value"])) == ["", "d"]


def test_breakdown_all_events_runs_the_funnel_per_value():
    # u1: a(m) b(d): in bucket m only a -> reaches 1; bucket d has no a -> not there
    # u2: a(m) b(m): bucket m reaches 2
    events = _devices(log("u1: a@0 b@1; u2: a@0 b@1"), ["m", "d", "m", "m"])
    frame = event_funnel(events, ["a", "b"], breakdown="device", breakdown_attribution="all_events")
    assert frame["breakdown_value"].to_list() == ["m", "m"]
    assert frame["unit_count"].to_list() == [2, 1]


def test_breakdown_step_takes_the_value_on_the_event_used_for_that_step():
    # breakdown on step 1 (0-based): u1 has b(m)@1 and b(d)@2 after a -> lands in both
    # buckets, each converting; u2 never does b -> bucket "" with step 1 only
    events = _devices(log("u1: a@0 b@1 b@2; u2: a@0"), ["d", "m", "d", None])
    frame = event_funnel(events, ["a", "b"], breakdown="device",
                         breakdown_attribution="step", breakdown_step=1)  # fmt: skip
    by = {(r["breakdown_value"], r["step"]): r["unit_count"] for r in frame.to_dicts()}
    assert by == {("", 1): 1, ("", 2): 0, ("d", 1): 1, ("d", 2): 1, ("m", 1): 1, ("m", 2): 1}
    # bucket d's b is b@2: 2 s from a; bucket m's is b@1: 1 s
    times = {
        r["breakdown_value"]: r["avg_time_from_previous_seconds"]
        for r in frame.to_dicts()
        if r["step"] == 2
    }
    assert times == {"": None, "d": 2.0, "m": 1.0}


# --- time to convert, first time, dates, units --------------------------------------------------


def test_time_to_convert_is_average_and_median_over_units_reaching_the_step():
    # a->b: 1, 2 and 6 s -> avg 3, median 2; b->c: only u1 and u2 (10 and 20 s) -> 15, 15
    events = log("u1: a@0 b@1 c@11; u2: a@0 b@2 c@22; u3: a@0 b@6")
    frame = event_funnel(events, ["a", "b", "c"], window_seconds=100)
    assert frame["avg_time_from_previous_seconds"].to_list() == [None, 3.0, 15.0]
    assert frame["median_time_from_previous_seconds"].to_list() == [None, 2.0, 15.0]


def test_first_time_matches_only_the_first_ever_event_of_that_name():
    # u1's first a is at 0 (outside the date range); the a at 100 is not a first time.
    # u2's first a is at 100: counted
    events = log("u1: a@0 a@100 b@101; u2: a@100 b@101")
    steps = [{"event": "a", "first_time": True}, "b"]
    after = T0 + timedelta(seconds=50)
    assert units(events, steps, date_from=after) == {"u2": 2}
    # without the first_time flag both count
    assert units(events, ["a", "b"], date_from=after) == {"u1": 2, "u2": 2}


def test_date_bounds_are_inclusive_and_a_date_covers_its_whole_day():
    events = log("u1: a@0 b@86399; u2: a@0 b@86400")
    # date_to=2024-05-01 keeps u1's b at 23:59:59 and drops u2's at midnight
    assert units(events, ["a", "b"], date_to=date(2024, 5, 1)) == {"u1": 2, "u2": 1}
    # a datetime bound equal to an event's time keeps it
    assert units(events, ["a", "b"], date_from=T0, date_to=T0 + timedelta(seconds=86400)) == {
        "u1": 2,
        "u2": 2,
    }
    assert units(events, ["a", "b"], date_from="2024-05-01T00:00:01") == {}


def test_unit_can_be_any_column():
    # two sessions of one customer: per customer the funnel converts, per session it doesn't
    events = log("u1: a@0 b@1").with_columns(session_id=pl.Series(["s1", "s2"]))
    assert counts(events, ["a", "b"]) == [1, 1]
    assert counts(events, ["a", "b"], unit="session_id") == [1, 0]
    assert units(events, ["a", "b"], unit="session_id") == {"s1": 1}


def test_every_input_kind_gives_the_same_answer():
    events = log("u1: a@0 b@1; u2: a@0")
    expected = counts(events, ["a", "b"])
    assert counts(events.to_arrow(), ["a", "b"]) == expected  # type: ignore[arg-type]
    con = warehouse.connect()
    try:
        con.register("raw_events", events.to_arrow())
        con.execute("CREATE TABLE touchpoints AS SELECT * FROM raw_events")
        assert counts(con.table("touchpoints"), ["a", "b"]) == expected  # type: ignore[arg-type]
        assert event_funnel("touchpoints", ["a", "b"], con=con)["unit_count"].to_list() == expected
        # temporary tables are cleaned up after a run
        left = con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_cjm_funnel%'")
        assert left.fetchall() == [(0,)]
    finally:
        con.close()
    assert expected == [2, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "sideways"}, "mode"),
        ({"window_seconds": -1}, "window_seconds"),
        ({"exclusions": [{"event": "x", "from_step": 1, "to_step": 1}]}, "from_step"),
        ({"breakdown": "nope"}, "no column 'nope'"),
        ({"breakdown": "device", "breakdown_attribution": "step"}, "breakdown_step"),
        ({"breakdown_attribution": "middle_touch"}, "breakdown_attribution"),
        (
            {"mode": "unordered", "exclusions": [{"event": "x", "from_step": 0, "to_step": 1}]},
            "unordered",
        ),
    ],
)
def test_invalid_definitions_say_what_is_wrong(kwargs: dict[str, Any], message: str):
    events = log("u1: a@0 b@1 c@2").with_columns(device=pl.lit("m"))
    with pytest.raises(FunnelError, match=message):
        event_funnel(events, ["a", "b", "c"], **kwargs)


def test_bad_steps_are_rejected():
    events = log("u1: a@0")
    with pytest.raises(FunnelError, match="steps"):
        event_funnel(events, [])
    with pytest.raises(FunnelError, match="unknown keys"):
        event_funnel(events, [{"event": "a", "filter": {}}])
    with pytest.raises(FunnelError, match="no column 'plan'"):
        event_funnel(events, [{"event": "a", "where": {"plan": "pro"}}])
    with pytest.raises(FunnelError, match="expected a polars"):
        event_funnel([{"customer_id": "u1"}], ["a"])


def test_values_are_bound_not_pasted():
    # an event name full of SQL is just a name that matches nothing
    events = log("u1: a@0")
    assert counts(events, ["a' OR 1=1 --"]) == [0]
    assert isinstance(duckdb.__version__, str)


def test_a_wrong_column_type_is_a_funnel_error():
    events = log("u1: a@0").with_columns(event_at=pl.lit("yesterday"))
    with pytest.raises(FunnelError, match="event_at a timestamp"):
        event_funnel(events, ["a"])


def test_exclusions_between_each_pair_of_steps_of_a_long_funnel():
    # five steps s,p,i,v,q (1 h apart, q at 6 h); x falls at different places:
    # u1: x between p..i, i..v and v..q; u2: x between i..v and v..q; u3: x between s..p and v..q
    events = log(
        "u1: s@3600 p@7200 x@10800 i@14400 x@16200 v@18000 x@19800 q@21600;"
        "u2: s@3600 p@7200 i@14400 x@16200 v@18000 x@19800 q@21600;"
        "u3: s@3600 x@5400 p@7200 i@14400 v@18000 x@19800 q@21600"
    )
    steps = ["s", "p", "i", "v", "q"]

    def kept(lo: int) -> dict[str, int]:
        x = [{"event": "x", "from_step": lo, "to_step": lo + 1}]
        return units(events, steps, exclusions=x)

    assert kept(0) == {"u1": 5, "u2": 5}  # u3 has x between s and p
    assert kept(1) == {"u2": 5, "u3": 5}  # u1 has x between p and i
    assert kept(2) == {"u3": 5}  # u1, u2 have x between i and v
    assert kept(3) == {}  # everyone has x between v and q
    # with everyone excluded the funnel still lists its steps, with 0 units
    x34 = [{"event": "x", "from_step": 3, "to_step": 4}]
    assert counts(events, steps, exclusions=x34) == [0, 0, 0, 0, 0]


def test_unordered_exclusion_spans_the_whole_funnel():
    # steps [a, b] in any order, x excluded from step 0 to step 1 (the whole funnel):
    # u1: b@0 x@1 a@2 has x between its first and last step: removed;
    # u2: x@0 b@0 a@1 has x at the first step's instant, not strictly after: kept;
    # u3: b@0 then x@3 inside the 10 s window, never a: removed
    events = log("u1: b@0 x@1 a@2; u2: x@0 b@0 a@1; u3: b@0 x@3")
    x = [{"event": "x", "from_step": 0, "to_step": 1}]
    assert units(events, ["a", "b"], mode="unordered", exclusions=x, window_seconds=10) == {"u2": 2}


def test_an_infinite_window_means_no_window():
    # a and b a year apart: inside an infinite window, outside a 14-day one
    events = log("u1: a@0 b@31536000")
    assert counts(events, ["a", "b"], window_seconds=float("inf")) == [1, 1]
    assert counts(events, ["a", "b"]) == [1, 0]


def test_the_sort_free_path_is_taken_only_where_the_window_cannot_bind():
    from cjm_analytics.funnels import sortfree
    from cjm_analytics.funnels.spec import build_spec

    con = warehouse.connect()
    con.register("ev", log("u1: a@0 b@50 c@100; u2: a@10 x@120").to_arrow())

    def takes(steps: list[Any], **kw: Any) -> bool:
        options = {"mode": "ordered", "window_seconds": 100, "exclusions": (),
                   "breakdown": None, "breakdown_attribution": "first_touch",
                   "breakdown_step": None, "unit": "customer_id", "date_from": None,
                   "date_to": None} | kw  # fmt: skip
        spec = build_spec(steps, columns=["customer_id", "event_at", "event_name"], **options)
        return sortfree.applies(con, "ev", spec)

    # the events span 120 s: a 120 s window cannot bind, a 119 s one could
    assert takes(["a", "b", "c"], window_seconds=120)
    assert not takes(["a", "b", "c"], window_seconds=119)
    # a date range shorter than the window, or clipping the events to a shorter span
    assert takes(["a", "b"], window_seconds=99, date_from=T0, date_to=T0 + timedelta(seconds=99))
    assert takes(["a", "b"], window_seconds=100, date_to=T0 + timedelta(seconds=100))
    assert not takes(["a", "b"], window_seconds=100, date_from=T0 + timedelta(seconds=10))
    assert takes(["a", "b"], window_seconds=float("inf"))
    # repeated names, exclusions, strict and unordered keep the general engine
    forever = {"window_seconds": float("inf")}
    assert not takes(["a", "a"], **forever)
    assert not takes(
        ["a", "c"], exclusions=[{"event": "b", "from_step": 0, "to_step": 1}], **forever
    )
    assert not takes(["a", "b"], mode="strict", **forever)
    assert not takes(["a", "b"], mode="unordered", **forever)


def test_sort_free_funnel_keeps_every_rule_on_a_hand_built_log():
    # u1: two starts; the furthest attempt completes at c@9, and the latest start that
    # still completes there is a@4 (b@5, c@9): times from previous 1 s and 4 s
    # u2: b and c at the same instant as a (the walk order lets them follow);
    # u3: never starts; u4: stops after b
    events = log("u1: a@0 a@4 b@5 b@6 c@9; u2: a@20 b@20 c@20; u3: b@1 c@2; u4: a@0 b@3")
    frame = event_funnel(events, ["a", "b", "c"], window_seconds=float("inf"))
    assert frame["unit_count"].to_list() == [3, 3, 2]
    # step 2: u1 1 s, u2 0 s, u4 3 s -> avg 4/3; step 3: u1 4 s, u2 0 s -> 2
    assert frame["avg_time_from_previous_seconds"].to_list()[1:] == [pytest.approx(4 / 3), 2.0]
