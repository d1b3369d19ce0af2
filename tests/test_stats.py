"""Wilson, Kaplan-Meier, Benjamini-Hochberg and the odds-ratio test against known values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


def test_odds_ratio_interval_and_fisher_p_value() -> None:
    # abandoned with / without = 8 / 2, moved on with / without = 4 / 6: OR = (8*6)/(2*4) = 6
    odds_ratio, low, high = stats.odds_ratio_interval(8, 2, 4, 6)
    assert odds_ratio == pytest.approx(6.0)
    (p_value,) = stats.fisher_exact_p_values(*np.array([[8, 2, 4, 6]]).T)
    assert p_value == pytest.approx(scipy_stats.fisher_exact([[8, 2], [4, 6]]).pvalue)
    assert low < 6 < high
    # a zero cell: 0.5 added to each cell for the ratio (Haldane): (5.5*6.5)/(0.5*4.5)
    assert stats.odds_ratio_interval(5, 0, 4, 6)[0] == pytest.approx(5.5 * 6.5 / (0.5 * 4.5))


_ROW = st.tuples(
    st.integers(1, 3),  # stage_order
    st.integers(0, 6),  # duration: few values, so ties between events and censored rows
    st.booleans(),  # observed (moved on)
    st.sets(st.integers(0, 4), min_size=1, max_size=3),  # the row's groups
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ROW, max_size=40), st.integers(1, 60))
def test_kaplan_meier_groups_equals_the_reference_per_group(rows: list, chunk: int) -> None:
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    groups = [sorted(r[3]) for r in rows]
    offsets = np.cumsum([0] + [len(g) for g in groups])
    found = stats.kaplan_meier_groups(
        np.array([r[0] for r in rows], dtype=np.int32),
        np.array([r[1] for r in rows], dtype=np.float64),
        np.array([r[2] for r in rows], dtype=bool),
        offsets,
        np.array([g for gs in groups for g in gs], dtype=np.int32),
        pairs_per_chunk=chunk,  # small chunks: several groups' chunks, one group alone
    )
    expected = {}
    for key in sorted({(g, r[0]) for r in rows for g in r[3]}):
        members = [r for r in rows if key[0] in r[3] and r[0] == key[1]]
        durations, observed = [r[1] for r in members], [r[2] for r in members]
        expected[key] = (
            *(stats.kaplan_meier_quantile(durations, observed, q) for q in (0.5, 0.9)),
            sum(observed),
            len(members) - sum(observed),
        )
    got = {
        (int(g), int(s)): (
            *(
                None if np.isnan(found.quantiles[q][i]) else found.quantiles[q][i]
                for q in (0.5, 0.9)
            ),
            int(found.observed_count[i]),
            int(found.censored_count[i]),
        )
        for i, (g, s) in enumerate(zip(found.group_id, found.stage_order, strict=True))
    }
    assert got == expected


def test_kaplan_meier_groups_refuses_unsorted_rows() -> None:
    with pytest.raises(ValueError, match="sorted by"):
        stats.kaplan_meier_groups(
            np.array([1, 1]),
            np.array([5.0, 2.0]),
            np.array([True, True]),
            np.array([0, 1, 2]),
            np.array([0, 0]),
        )


_COUNT = st.one_of(st.integers(0, 12), st.integers(0, 200_000))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_COUNT, _COUNT, _COUNT, _COUNT), min_size=1, max_size=12))
def test_fisher_exact_p_values_equal_scipys(tables: list) -> None:
    columns = [np.array(column) for column in zip(*tables, strict=True)]
    found = stats.fisher_exact_p_values(*columns)
    expected = [scipy_stats.fisher_exact([[a, b], [c, d]]).pvalue for a, b, c, d in tables]
    assert found.tolist() == expected
