"""What changed: the beyond-noise screen, the mix/rate split and the alert rules."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cjm_analytics import changes
from cjm_analytics.config import AlertRule


def test_two_proportion_p_value_matches_hand_computation() -> None:
    # 60/100 vs 40/100: pooled 0.5, se = sqrt(0.25 * 0.02) = 0.070711, z = 0.2 / se = 2.8284,
    # two-sided p = erfc(z / sqrt 2) = erfc(2) = 0.0046777
    z, p = changes.two_proportion_p_value(60, 100, 40, 100)
    assert z == pytest.approx(2.828427, rel=1e-6)
    assert p == pytest.approx(math.erfc(2), rel=1e-9)
    assert changes.two_proportion_p_value(0, 0, 1, 2) == (None, None)
    assert changes.two_proportion_p_value(5, 5, 3, 3) == (None, None)  # no variance


def segment_nights(rows: list[tuple[str, str, str, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["run_id", "segment", "segment_value", "journey_count", "converted_count"],
        orient="row",
    )


def test_decomposition_all_mix_when_rates_stay() -> None:
    # r1: mobile 10/100, desktop 30/100 -> overall 0.20; r2: mobile 30/300, desktop 30/100 ->
    # overall 0.15. Rates unchanged, shares 0.5/0.5 -> 0.75/0.25:
    # mix = (0.75-0.5)*0.1 + (0.25-0.5)*0.3 = -0.05, rate = 0
    history = segment_nights(
        [
            ("r1", "device", "mobile", 100, 10),
            ("r1", "device", "desktop", 100, 30),
            ("r2", "device", "mobile", 300, 30),
            ("r2", "device", "desktop", 100, 30),
        ]
    )
    totals = changes.decomposition_totals(changes.decompose_conversion(history, "r2"))
    assert totals.row(0, named=True) == {
        "segment": "device",
        "mix_effect": pytest.approx(-0.05),
        "rate_effect": pytest.approx(0.0),
        "conversion_change": pytest.approx(-0.05),
    }


def test_decomposition_all_rate_when_shares_stay() -> None:
    # shares stay 0.5/0.5; mobile 10/100 -> 20/100: rate = 0.5 * 0.1 = 0.05, mix = 0
    history = segment_nights(
        [
            ("r1", "device", "mobile", 100, 10),
            ("r1", "device", "desktop", 100, 30),
            ("r2", "device", "mobile", 100, 20),
            ("r2", "device", "desktop", 100, 30),
        ]
    )
    totals = changes.decomposition_totals(changes.decompose_conversion(history, "r2"))
    assert totals["mix_effect"][0] == pytest.approx(0.0)
    assert totals["rate_effect"][0] == pytest.approx(0.05)


def test_first_night_has_no_decomposition() -> None:
    history = segment_nights([("r1", "device", "mobile", 10, 1)])
    assert changes.decompose_conversion(history, "r1").height == 0


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(
        st.tuples(
            st.integers(1, 500), st.integers(0, 500), st.integers(1, 500), st.integers(0, 500)
        ),
        min_size=1,
        max_size=6,
    ),
    only_now=st.booleans(),
)
def test_mix_plus_rate_equals_overall_change(
    counts: list[tuple[int, int, int, int]], only_now: bool
) -> None:
    rows = []
    for i, (n0, c0, n1, c1) in enumerate(counts):
        if not (only_now and i == 0):  # a segment value that is new tonight
            rows.append(("r1", "region", f"v{i}", n0, min(c0, n0)))
        rows.append(("r2", "region", f"v{i}", n1, min(c1, n1)))
    rows.append(("r1", "region", "anchor", 1, 0))  # r1 never empty
    history = segment_nights(rows)
    before = history.filter(pl.col("run_id") == "r1")
    now = history.filter(pl.col("run_id") == "r2")
    change = now["converted_count"].sum() / now["journey_count"].sum() - (
        before["converted_count"].sum() / before["journey_count"].sum()
    )
    totals = changes.decomposition_totals(changes.decompose_conversion(history, "r2"))
    assert totals["conversion_change"][0] == pytest.approx(change, abs=1e-12)


def stage_history() -> pl.DataFrame:
    rows = [
        # run, stage, order, reached, converted
        ("r0", "visit", 1, 1000, 500),
        ("r1", "visit", 1, 1000, 500),
        ("r1", "buy", 2, 500, None),
        ("r2", "visit", 1, 1000, 400),
        ("r2", "buy", 2, 400, None),
    ]
    frame = pl.DataFrame(
        rows,
        schema=["run_id", "stage", "stage_order", "reached_count", "converted_count"],
        orient="row",
    )
    return frame.with_columns(
        (pl.col("converted_count") / pl.col("reached_count")).alias("conversion_rate"),
        pl.col("stage_order").cast(pl.Int32),
    )


def test_stage_changes_compare_with_the_latest_previous_night() -> None:
    # visit: 500/1000 (r1) -> 400/1000 (r2): pooled 0.45, se = sqrt(0.45*0.55*0.002) = 0.022249,
    # z = -0.1 / se = -4.4947, p ~ 7e-6: beyond noise. buy has no conversion: no test.
    result = changes.stage_changes(stage_history(), "r2")
    visit = result.filter(pl.col("stage") == "visit").row(0, named=True)
    assert visit["previous_run_id"] == "r1"
    assert visit["conversion_change"] == pytest.approx(-0.1)
    assert visit["z_score"] == pytest.approx(-4.4947, rel=1e-4)
    assert visit["is_beyond_noise"] is True
    buy = result.filter(pl.col("stage") == "buy").row(0, named=True)
    assert buy["p_value"] is None and buy["is_beyond_noise"] is False


def test_alert_rules_fire_as_configured() -> None:
    stage_frame = changes.stage_changes(stage_history(), "r2")
    rules = [
        AlertRule(kind="constraint_moved"),
        AlertRule(kind="stage_drop"),
        AlertRule(kind="stage_drop", stage="visit", threshold=0.2),  # drop 0.1 < 0.2: silent
        AlertRule(kind="rejects_rate", threshold=0.05),
    ]
    alerts = changes.evaluate_alerts(
        rules, stage_frame, "intent -> purchase", "interest -> consideration", 1000, 60
    )
    assert [a.kind for a in alerts] == ["constraint_moved", "stage_drop", "rejects_rate"]
    assert alerts[1].stage == "visit"
    assert alerts[2].value == pytest.approx(0.06)
    quiet = changes.evaluate_alerts(rules, stage_frame.head(0), "a -> b", "a -> b", 1000, 50)
    assert quiet == []  # same constraint, no stage rows, 5.0% is not above 5%
