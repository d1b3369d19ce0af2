"""Property tests: the DuckDB engine equals the brute-force Python reference on random small
logs (tests/funnel_reference.py), and the funnel's invariants hold."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from funnel_reference import reference_funnel, reference_units
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cjm_analytics.funnels import event_funnel, funnel_units, sortfree

T0 = datetime(2024, 3, 1)
NAMES = ["a", "b", "c", "z"]
# CJM_FUNNEL_EXAMPLES=2000 for a deep run; the default keeps the suite quick.
PROFILE = settings(
    max_examples=int(os.environ.get("CJM_FUNNEL_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@st.composite
def logs(draw: Any, max_units: int = 3, max_events: int = 6) -> list[dict[str, Any]]:
    """A few units, each with up to `max_events` events on a coarse clock (many ties)."""
    rows = []
    for u in range(draw(st.integers(0, max_units))):
        for _ in range(draw(st.integers(0, max_events))):
            rows.append(
                {
                    "customer_id": f"u{u}",
                    "event_at": T0 + timedelta(seconds=draw(st.integers(0, 8))),
                    "event_name": draw(st.sampled_from(NAMES)),
                    "device": draw(st.sampled_from([None, "m", "d"])),
                }
            )
    return rows


step_st = st.one_of(
    st.sampled_from(["a", "b", "c"]),
    st.builds(
        lambda e, d: {"event": e, "where": {"device": d}},
        st.sampled_from("abc"),
        st.sampled_from(["m", "d"]),
    ),
    st.builds(lambda e: {"event": e, "first_time": True}, st.sampled_from("abc")),
)


@st.composite
def funnels(draw: Any) -> dict[str, Any]:
    steps = draw(st.lists(step_st, min_size=1, max_size=4))
    mode = draw(st.sampled_from(["ordered", "strict", "unordered"]))
    kwargs: dict[str, Any] = {
        "mode": mode,
        "window_seconds": draw(st.sampled_from([0, 1, 3, 100])),
    }
    n = len(steps)
    if n >= 2 and draw(st.booleans()):
        lo, hi = (
            (0, n - 1)
            if mode == "unordered"
            else sorted(draw(st.sets(st.integers(0, n - 1), min_size=2, max_size=2)))
        )
        kwargs["exclusions"] = [{"event": "z", "from_step": lo, "to_step": hi}]
    if draw(st.integers(0, 3)) == 0:
        kwargs["date_from"] = T0 + timedelta(seconds=draw(st.integers(0, 4)))
        kwargs["date_to"] = T0 + timedelta(seconds=draw(st.integers(4, 8)))
    if draw(st.booleans()):
        kwargs["breakdown"] = "device"
        kwargs["breakdown_attribution"] = draw(
            st.sampled_from(["first_touch", "last_touch", "all_events", "step"])
        )
        if kwargs["breakdown_attribution"] == "step":
            kwargs["breakdown_step"] = draw(st.integers(0, n - 1))
    return {"steps": steps, **kwargs}


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {
        "customer_id": pl.String,
        "event_at": pl.Datetime("us"),
        "event_name": pl.String,
        "device": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _assert_same(engine: pl.DataFrame, expected: list[dict[str, Any]]) -> None:
    got = engine.to_dicts()
    assert len(got) == len(expected), (got, expected)
    for g, e in zip(got, expected, strict=True):
        assert all(_close(g[k], e[k]) for k in e), (g, e)


@PROFILE
@given(rows=logs(), funnel=funnels())
def test_engine_equals_reference(rows: list[dict[str, Any]], funnel: dict[str, Any]) -> None:
    steps = funnel.pop("steps")
    expected = reference_funnel(rows, steps, **funnel)
    _assert_same(event_funnel(_frame(rows), steps, **funnel), expected)


@PROFILE
@given(rows=logs(), funnel=funnels())
def test_units_equal_reference(rows: list[dict[str, Any]], funnel: dict[str, Any]) -> None:
    steps = funnel.pop("steps")
    for key in ("breakdown", "breakdown_attribution", "breakdown_step"):
        funnel.pop(key, None)
    expected = {u: len(t) for (u, _), t in reference_units(rows, steps, **funnel).items()}
    got = funnel_units(_frame(rows), steps, **funnel)
    assert dict(zip(got["unit"], got["furthest_step"], strict=True)) == expected


@PROFILE
@given(rows=logs(max_units=4), funnel=funnels())
def test_counts_never_increase_and_rates_are_rates(
    rows: list[dict[str, Any]], funnel: dict[str, Any]
) -> None:
    steps = funnel.pop("steps")
    frame = event_funnel(_frame(rows), steps, **funnel)
    by_bucket = (
        frame.partition_by("breakdown_value") if "breakdown_value" in frame.columns else [frame]
    )
    for part in by_bucket:
        values = part["unit_count"].to_list()
        assert values == sorted(values, reverse=True)
    for column in ("conversion_rate_from_previous", "conversion_rate_from_start"):
        assert all(0 <= r <= 1 for r in frame[column].drop_nulls())


@PROFILE
@given(rows=logs(max_units=4), funnel=funnels(), seed=st.integers(0, 1000))
def test_renaming_units_and_shuffling_rows_changes_nothing(
    rows: list[dict[str, Any]], funnel: dict[str, Any], seed: int
) -> None:
    steps = funnel.pop("steps")
    before = event_funnel(_frame(rows), steps, **funnel)
    shuffled = [dict(r, customer_id="renamed-" + r["customer_id"][::-1]) for r in rows]
    random.Random(seed).shuffle(shuffled)
    after = event_funnel(_frame(shuffled), steps, **funnel)
    assert before.equals(after)


@PROFILE
@given(rows=logs(), funnel=funnels())
def test_window_zero_only_counts_same_instant_steps(
    rows: list[dict[str, Any]], funnel: dict[str, Any]
) -> None:
    steps = funnel.pop("steps")
    funnel["window_seconds"] = 0
    frame = event_funnel(_frame(rows), steps, **funnel)
    # every counted conversion took 0 s
    assert all(t == 0 for t in frame["avg_time_from_previous_seconds"].drop_nulls())
    # and moving every event to its own second leaves only step 1
    apart = [dict(r, event_at=T0 + timedelta(seconds=i)) for i, r in enumerate(rows)]
    per_unit = funnel_units(_frame(apart), steps, mode=funnel["mode"], window_seconds=0)
    assert set(per_unit["furthest_step"].to_list()) <= {1}


@st.composite
def walkable_funnels(draw: Any) -> dict[str, Any]:
    """Ordered and unordered funnels with distinct step names: the numpy paths (ADR 0044)."""
    names = draw(st.permutations(["a", "b", "c"]))[: draw(st.integers(1, 3))]
    steps = [
        draw(
            st.sampled_from(
                [e, {"event": e, "where": {"device": "m"}}, {"event": e, "first_time": True}]
            )
        )
        for e in names
    ]
    funnel = draw(funnels())
    mode = draw(st.sampled_from(["ordered", "unordered"]))
    funnel.update(steps=steps, mode=mode)
    funnel.pop("exclusions", None)
    if len(steps) >= 2 and draw(st.booleans()):
        lo, hi = (
            (0, len(steps) - 1)
            if mode == "unordered"
            else sorted(draw(st.sets(st.integers(0, len(steps) - 1), min_size=2, max_size=2)))
        )
        funnel["exclusions"] = [{"event": "z", "from_step": lo, "to_step": hi}]
    if funnel.get("breakdown_step") is not None:
        funnel["breakdown_step"] = min(funnel["breakdown_step"], len(steps) - 1)
    return funnel


@PROFILE
@given(rows=logs(max_units=4), funnel=walkable_funnels())
def test_walked_chains_equal_reference(rows: list[dict[str, Any]], funnel: dict[str, Any]) -> None:
    steps = funnel.pop("steps")
    expected = reference_funnel(rows, steps, **funnel)
    _assert_same(event_funnel(_frame(rows), steps, **funnel), expected)


@st.composite
def sortfree_funnels(draw: Any) -> dict[str, Any]:
    """Ordered funnels the sort-free path takes (ADR 0103): distinct step names, no
    exclusion, a window no shorter than the log (8 s here), any breakdown or date range."""
    funnel = draw(walkable_funnels())
    funnel.pop("exclusions", None)
    funnel.update(mode="ordered", window_seconds=draw(st.sampled_from([8, 100, math.inf])))
    return funnel


@PROFILE
@given(rows=logs(max_units=4), funnel=sortfree_funnels())
def test_sort_free_path_equals_reference_and_the_walk(
    rows: list[dict[str, Any]], funnel: dict[str, Any]
) -> None:
    steps = funnel.pop("steps")
    sort_free = event_funnel(_frame(rows), steps, **funnel)
    _assert_same(sort_free, reference_funnel(rows, steps, **funnel))
    with _sort_free_off():
        walked = event_funnel(_frame(rows), steps, **funnel)
    assert sort_free.equals(walked), (sort_free, walked)


@contextmanager
def _sort_free_off() -> Iterator[None]:
    """Make the engine take the numpy walk for funnels the sort-free path would take."""
    original = sortfree.applies
    sortfree.applies = lambda con, source, spec: False  # type: ignore[assignment]
    try:
        yield
    finally:
        sortfree.applies = original
