"""Small statistics the stage marts use, in plain Python (and scipy where it serves).

The SQL models compute the same Wilson interval and Kaplan-Meier quantiles in SQL; these
functions are their reference (the tests compare both) and serve the Python-on-aggregates
marts (constraint, drop-off drivers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

#: Two-sided 95% normal quantile.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval of successes / trials; None when trials is 0.

    (p + z²/2n ∓ z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), clipped to [0, 1].
    """
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    center = p + z * z / (2 * trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (center - half) / denominator), min(1.0, (center + half) / denominator)


def kaplan_meier(durations: Sequence[float], observed: Sequence[bool]) -> list[tuple[float, float]]:
    """One (time, survival) pair per distinct event time: S(t) = Π (1 - d_i / n_i).

    n_i counts everyone with duration >= t_i (censored at t_i are still at risk at t_i).
    """
    pairs = sorted(zip(durations, observed, strict=True))
    survival, curve, index, at_risk = 1.0, [], 0, len(pairs)
    while index < len(pairs):
        time = pairs[index][0]
        same = [event for t, event in pairs[index:] if t == time]
        events = sum(same)
        if events:
            survival *= 1 - events / at_risk
            curve.append((time, survival))
        at_risk -= len(same)
        index += len(same)
    return curve


def kaplan_meier_quantile(
    durations: Sequence[float], observed: Sequence[bool], share_moved: float
) -> float | None:
    """Smallest event time with S(t) <= 1 - share_moved (0.5: median, 0.9: p90); None if never."""
    for time, survival in kaplan_meier(durations, observed):
        if survival <= 1 - share_moved + 1e-12:
            return time
    return None


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg q-values (step-up adjusted p-values), in input order."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    q_values = [1.0] * count
    running = 1.0
    for rank in range(count, 0, -1):
        index = order[rank - 1]
        running = min(running, p_values[index] * count / rank)
        q_values[index] = min(running, 1.0)
    return q_values


@dataclass(frozen=True)
class TwoByTwo:
    """Journeys with/without a feature that abandoned / moved on, and its test."""

    odds_ratio: float
    odds_ratio_low: float
    odds_ratio_high: float
    p_value: float


def odds_ratio_test(
    abandoned_with: int, abandoned_without: int, moved_with: int, moved_without: int
) -> TwoByTwo:
    """Odds of abandoning with vs without the feature; Woolf 95% interval; Fisher exact p.

    The odds ratio and its interval add 0.5 to every cell when any cell is 0 (Haldane);
    the p-value is the two-sided Fisher exact test on the raw counts.
    """
    cells = [abandoned_with, abandoned_without, moved_with, moved_without]
    a, b, c, d = (x + 0.5 for x in cells) if min(cells) == 0 else cells
    log_or = math.log((a * d) / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    table = [[abandoned_with, abandoned_without], [moved_with, moved_without]]
    p_value = float(scipy_stats.fisher_exact(table, alternative="two-sided").pvalue)
    return TwoByTwo(
        odds_ratio=math.exp(log_or),
        odds_ratio_low=math.exp(log_or - Z_95 * se),
        odds_ratio_high=math.exp(log_or + Z_95 * se),
        p_value=p_value,
    )
