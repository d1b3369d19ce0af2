"""Small statistics the stage marts use, in plain Python (and scipy where it serves).

The SQL models compute the same Wilson interval and Kaplan-Meier quantiles in SQL; these
functions are their reference (the tests compare both) and serve the Python-on-aggregates
marts (constraint, drop-off drivers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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


@dataclass(frozen=True)
class GroupQuantiles:
    """Kaplan-Meier quantiles per (group, stage) with at least one row at risk (arrays of
    one length; a quantile is NaN where S(t) never falls to it)."""

    group_id: np.ndarray
    stage_order: np.ndarray
    quantiles: dict[float, np.ndarray]
    observed_count: np.ndarray
    censored_count: np.ndarray


#: Group-row pairs taken at once by `kaplan_meier_groups` (memory: about 40 bytes a pair).
KM_PAIRS_PER_CHUNK = 4_000_000


def kaplan_meier_groups(
    stage_order: np.ndarray,
    duration: np.ndarray,
    observed: np.ndarray,
    group_offsets: np.ndarray,
    group_ids: np.ndarray,
    shares_moved: Sequence[float] = (0.5, 0.9),
    pairs_per_chunk: int = KM_PAIRS_PER_CHUNK,
) -> GroupQuantiles:
    """`kaplan_meier_quantile` for every (group, stage) at once, vectorized (ADR 0121).

    Row i (a journey at risk at a stage) has `stage_order[i]`, `duration[i]`, `observed[i]`
    (moved on: an event; else censored) and belongs to the groups
    `group_ids[group_offsets[i]:group_offsets[i + 1]]` (non-negative integers). The rows
    must be sorted by (stage_order, duration): each group's rows are then a subsequence in
    the same order, picked by a stable sort of the group ids, so no group is sorted on its
    own. Ties and censoring as in `kaplan_meier`: at a duration, the censored rows are
    still at risk, the events come first. Groups are taken a chunk of about
    `pairs_per_chunk` (group, row) pairs at a time, so memory does not grow with the log.
    """
    rows = len(stage_order)
    if len(group_offsets) != rows + 1:
        raise ValueError(f"group_offsets has {len(group_offsets)} entries for {rows} rows")
    if rows and np.any(
        (np.diff(stage_order) < 0) | ((np.diff(stage_order) == 0) & (np.diff(duration) < 0))
    ):
        raise ValueError("rows must be sorted by (stage_order, duration)")
    if len(group_ids) and group_ids.min() < 0:
        raise ValueError("group ids must be non-negative integers")
    # runs: rows of one stage and one duration (in the sorted rows)
    new_run = np.ones(rows, dtype=bool)
    new_run[1:] = (stage_order[1:] != stage_order[:-1]) | (duration[1:] != duration[:-1])
    index = np.int32 if rows < 2**31 else np.int64  # half the memory of int64 indices
    run_of_row = np.cumsum(new_run, dtype=index) - 1
    run_duration = duration[new_run]
    pairs_per_group = np.bincount(group_ids) if len(group_ids) else np.zeros(0, np.int64)
    parts: list[GroupQuantiles] = []
    first = 0
    while first < len(pairs_per_group):
        # the next groups, up to pairs_per_chunk pairs (at least one group)
        ends = np.cumsum(pairs_per_group[first:])
        last = first + max(1, int(np.searchsorted(ends, pairs_per_chunk, side="right")))
        if ends[last - first - 1]:
            parts.append(
                _km_chunk(
                    (stage_order, observed, group_offsets, group_ids),
                    (run_of_row, run_duration),
                    (first, last),
                    shares_moved,
                )
            )
        first = last
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return GroupQuantiles(empty, empty, {q: np.zeros(0) for q in shares_moved}, empty, empty)
    return GroupQuantiles(
        group_id=np.concatenate([p.group_id for p in parts]),
        stage_order=np.concatenate([p.stage_order for p in parts]),
        quantiles={q: np.concatenate([p.quantiles[q] for p in parts]) for q in shares_moved},
        observed_count=np.concatenate([p.observed_count for p in parts]),
        censored_count=np.concatenate([p.censored_count for p in parts]),
    )


def _km_chunk(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    runs: tuple[np.ndarray, np.ndarray],
    groups: tuple[int, int],
    shares_moved: Sequence[float],
) -> GroupQuantiles:
    """`kaplan_meier_groups` for the groups first <= id < last."""
    stage_order, observed, group_offsets, group_ids = data
    run_of_row, run_duration = runs
    first, last = groups
    picked = np.flatnonzero((group_ids >= first) & (group_ids < last))  # in row order
    keys = group_ids[picked] - first
    # a stable sort of 16-bit keys is a radix sort in numpy (2.5x faster here than int32's)
    by_group = np.argsort(keys.astype(np.uint16) if last - first < 2**16 else keys, kind="stable")
    group = keys[by_group] + first
    row = (np.searchsorted(group_offsets, picked[by_group], side="right") - 1).astype(
        run_of_row.dtype
    )
    del picked, keys, by_group
    run = run_of_row[row]
    event = observed[row]
    stage = stage_order[row]
    pairs = len(group)
    # partitions: one group and one stage; distinct durations: one run within a partition
    new_part = np.ones(pairs, dtype=bool)
    new_part[1:] = (group[1:] != group[:-1]) | (stage[1:] != stage[:-1])
    new_time = new_part.copy()
    new_time[1:] |= run[1:] != run[:-1]
    part_start = np.flatnonzero(new_part)
    part_size = np.diff(np.append(part_start, pairs))
    time_start = np.flatnonzero(new_time)
    part_of_time = np.cumsum(new_part)[time_start] - 1
    # at risk at a duration: the partition's rows minus those before it (shorter durations)
    at_risk = part_size[part_of_time] - (time_start - part_start[part_of_time])
    events = np.add.reduceat(event, time_start, dtype=np.int64)
    observed_count = np.add.reduceat(event, part_start, dtype=np.int64)
    found = {q: np.full(len(part_start), np.nan) for q in shares_moved}
    first_time = np.searchsorted(time_start, part_start)
    last_time = np.append(first_time[1:], len(time_start))
    for part, (begin, end) in enumerate(zip(first_time, last_time, strict=True)):
        moved = events[begin:end] > 0
        if not moved.any():
            continue
        # S changes only at durations with events; the product as kaplan_meier takes it
        survival = np.cumprod(1 - events[begin:end][moved] / at_risk[begin:end][moved])
        times = run_duration[run[time_start[begin:end][moved]]]
        for share in shares_moved:
            below = np.flatnonzero(survival <= 1 - share + 1e-12)
            if len(below):
                found[share][part] = times[below[0]]
    return GroupQuantiles(
        group_id=group[part_start],
        stage_order=stage[part_start],
        quantiles=found,
        observed_count=observed_count,
        censored_count=part_size - observed_count,
    )


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
