"""Wilson, Kaplan-Meier, Benjamini-Hochberg and the odds-ratio test against known values."""

from __future__ import annotations

import pytest
from scipy import stats as scipy_stats

from cjm_analytics import stats


def test_wilson_interval_known_values() -> None:
    # 5/10: 0.2366..0.7634 and 0/10: 0..0.2775 (standard tables, z = 1.96)
    assert stats.wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert stats.wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert stats.wilson_interval(0, 0) is None


def test_kaplan_meier_textbook_example() -> None:
    # durations 1, 2+, 3, 3, 4+, 5 (+ = censored):
    # t=1: 6 at risk, 1 event -> 5/6; t=3: 4 at risk, 2 events -> 5/6 * 2/4 = 5/12;
    # t=5: 1 at risk, 1 event -> 0.
    durations, observed = [1, 2, 3, 3, 4, 5], [True, False, True, True, False, True]
    curve = stats.kaplan_meier(durations, observed)
    assert [t for t, _ in curve] == [1, 3, 5]
    assert [s for _, s in curve] == pytest.approx([5 / 6, 5 / 12, 0.0])
    assert stats.kaplan_meier_quantile(durations, observed, 0.5) == 3
    assert stats.kaplan_meier_quantile(durations, observed, 0.9) == 5
    assert stats.kaplan_meier_quantile([1, 9, 9], [True, False, False], 0.5) is None


def test_benjamini_hochberg() -> None:
    # p sorted 0.01, 0.02, 0.03, 0.5 (m = 4): p*m/rank = 0.04, 0.04, 0.04, 0.5
    assert stats.benjamini_hochberg([0.03, 0.5, 0.01, 0.02]) == pytest.approx(
        [0.04, 0.5, 0.04, 0.04]
    )


def test_odds_ratio_test() -> None:
    # abandoned with / without = 8 / 2, moved on with / without = 4 / 6: OR = (8*6)/(2*4) = 6
    result = stats.odds_ratio_test(8, 2, 4, 6)
    assert result.odds_ratio == pytest.approx(6.0)
    assert result.p_value == pytest.approx(scipy_stats.fisher_exact([[8, 2], [4, 6]]).pvalue)
    assert result.odds_ratio_low < 6 < result.odds_ratio_high
    # a zero cell: 0.5 added to each cell for the ratio (Haldane): (5.5*6.5)/(0.5*4.5)
    assert stats.odds_ratio_test(5, 0, 4, 6).odds_ratio == pytest.approx(5.5 * 6.5 / (0.5 * 4.5))
