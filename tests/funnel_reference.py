"""A slow, obvious pure-Python reference of the event-funnel semantics (issue #4).

It exists only to cross-check `cjm_analytics.funnels` on small logs. It follows the
rules word by word, with brute force where the engine is clever:
- ties: every order of the events that share a timestamp is tried (so "events at the
  same instant may be taken in whichever order helps" is exact, not a heuristic);
- ordered/strict: every step-1 event starts an attempt, later steps take the next
  matching event in the (tie-permuted) sequence; strict takes only the very next event;
- unordered: every step event anchors a window; the largest set of distinct steps
  matched to distinct events inside it is found by exhaustive search;
- best attempt: furthest, then not excluded, then the earliest completion, then the
  latest start, then the earliest intermediate times.
Times are seconds (float). Events are dicts with the unit column, `event_at`
(datetime) and `event_name`, plus property keys.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import datetime
from itertools import permutations, product
from typing import Any

Event = dict[str, Any]


def norm_step(step: Any) -> dict[str, Any]:
    if isinstance(step, str):
        return {"event": step, "where": {}, "first_time": False}
    return {
        "event": step["event"],
        "where": dict(step.get("where") or {}),
        "first_time": bool(step.get("first_time")),
    }


def _matches(spec: dict[str, Any], ev: Event) -> bool:
    if ev["event_name"] != spec["event"]:
        return False
    for key, value in spec["where"].items():
        if isinstance(value, list | tuple | set):
            if ev.get(key) not in value:
                return False
        elif ev.get(key) != value:
            return False
    if "bucket" in spec and _bucket(ev.get(spec["bucket"][0])) != spec["bucket"][1]:
        return False
    return not (spec.get("first_time") and not ev["_is_first"])


def _seconds(at: datetime) -> float:
    return at.timestamp() if at.tzinfo else (at - datetime(1970, 1, 1)).total_seconds()


def _tie_orders(events: list[Event]) -> list[list[Event]]:
    """Every sequence obtained by permuting events that share a timestamp."""
    groups: dict[float, list[Event]] = defaultdict(list)
    for ev in events:
        groups[ev["_t"]].append(ev)
    ordered = [groups[t] for t in sorted(groups)]
    if math.prod(math.factorial(len(g)) for g in ordered) > 20000:
        raise ValueError("reference: too many tie permutations; keep test logs small")
    return [
        [ev for group in combo for ev in group]
        for combo in product(*(permutations(g) for g in ordered))
    ]


def _excluded(
    events: list[Event], times: list[float], exclusions: list[dict[str, Any]], window: float
) -> bool:
    reached = len(times)
    for x in exclusions:
        f, to = x["from_step"], x["to_step"]
        if reached <= f:
            continue
        lower = times[f]
        for ev in events:
            if not _matches(x, ev) or ev["_t"] <= lower:
                continue
            if (reached > to and ev["_t"] < times[to]) or (
                reached <= to and ev["_t"] <= times[0] + window
            ):
                return True
    return False


def _best_ordered(events, steps, strict, window, exclusions):
    best = None
    for seq in _tie_orders(events):
        for i, anchor in enumerate(seq):
            if not _matches(steps[0], anchor):
                continue
            chain = [i]
            for step in steps[1:]:
                start = chain[-1] + 1
                candidates = [start] if strict else range(start, len(seq))
                nxt = next((j for j in candidates if j < len(seq) and _matches(step, seq[j])), None)
                if nxt is None or seq[nxt]["_t"] - anchor["_t"] > window:
                    break
                chain.append(nxt)
            times = [seq[j]["_t"] for j in chain]
            excluded = _excluded(events, times, exclusions, window)
            key = (-len(times), excluded, times[-1], -times[0], times)
            if best is None or key < best[0]:
                best = (key, times, excluded)
    return best


def _largest_assignment(steps, window_events):
    """Max number of steps matched to distinct events; ties: smallest sorted times."""
    best: tuple[int, list[float]] = (0, [])

    def search(k: int, used: frozenset[int], times: list[float]) -> None:
        nonlocal best
        if k == len(steps):
            cand = (len(times), sorted(times))
            if cand[0] > best[0] or (cand[0] == best[0] and cand[1] < best[1]):
                best = cand
            return
        search(k + 1, used, times)
        for idx, ev in enumerate(window_events):
            if idx not in used and _matches(steps[k], ev):
                search(k + 1, used | {idx}, [*times, ev["_t"]])

    search(0, frozenset(), [])
    return best[1]


def _best_unordered(events, steps, window, exclusions):
    best = None
    for anchor in events:
        if not any(_matches(s, anchor) for s in steps):
            continue
        ta = anchor["_t"]
        inside = [ev for ev in events if ta <= ev["_t"] <= ta + window]
        times = _largest_assignment(steps, inside)
        excluded = _excluded(events, times, exclusions, window)
        key = (-len(times), excluded, times[-1], -ta, times)
        if best is None or key < best[0]:
            best = (key, times, excluded)
    return best


def _prepare(events: list[Event], unit: str, date_from, date_to) -> list[Event]:
    firsts: dict[tuple[Any, str], float] = {}
    rows = []
    for ev in events:
        if ev.get(unit) is None or ev.get("event_at") is None:
            continue
        row = dict(ev, _t=_seconds(ev["event_at"]))
        key = (row[unit], row["event_name"])
        firsts[key] = min(firsts.get(key, math.inf), row["_t"])
        rows.append(row)
    for row in rows:
        row["_is_first"] = row["_t"] == firsts[(row[unit], row["event_name"])]
    lo = _seconds(date_from) if date_from is not None else -math.inf
    hi = _seconds(date_to) if date_to is not None else math.inf
    return [r for r in rows if lo <= r["_t"] <= hi]


def _pseudo_units(rows, steps, unit, breakdown, attribution, breakdown_step):
    """(unit, bucket) -> (events, steps) following the breakdown attribution."""
    by_unit: dict[Any, list[Event]] = defaultdict(list)
    for r in rows:
        by_unit[r[unit]].append(r)
    out: dict[tuple[Any, str], tuple[list[Event], list[dict[str, Any]]]] = {}
    for u, evs in by_unit.items():
        if breakdown is None or attribution in ("first_touch", "last_touch"):
            out[(u, "")] = (evs, steps)
        elif attribution == "all_events":
            for value in {_bucket(e.get(breakdown)) for e in evs}:
                out[(u, value)] = ([e for e in evs if _bucket(e.get(breakdown)) == value], steps)
        else:
            b = breakdown_step
            values = {_bucket(e.get(breakdown)) for e in evs if _matches(steps[b], e)} or {""}
            for value in values:
                restricted = [dict(s) for s in steps]
                restricted[b]["bucket"] = (breakdown, value)
                out[(u, value)] = (evs, restricted)
    return out


def _bucket(value: Any) -> str:
    return "" if value is None else str(value)


def _touch(evs, steps, breakdown, last: bool) -> str:
    values = [
        (e["_t"], str(e[breakdown]))
        for e in evs
        if e.get(breakdown) is not None and any(_matches(s, e) for s in steps)
    ]
    if not values:
        return ""
    return (max(values) if last else min(values))[1]


def reference_units(
    events: list[Event],
    steps: list[Any],
    *,
    mode: str = "ordered",
    window_seconds: float = 14 * 86400,
    exclusions: list[dict[str, Any]] = (),  # type: ignore[assignment]
    breakdown: str | None = None,
    breakdown_attribution: str = "first_touch",
    breakdown_step: int | None = None,
    unit: str = "customer_id",
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> dict[tuple[Any, str], list[float]]:
    """(unit, breakdown bucket) -> step times (seconds) of the attempt that counted."""
    specs = [norm_step(s) for s in steps]
    xs = [dict(norm_step(x), from_step=x["from_step"], to_step=x["to_step"]) for x in exclusions]
    rows = _prepare(events, unit, date_from, date_to)
    result: dict[tuple[Any, str], list[float]] = {}
    pseudo = _pseudo_units(rows, specs, unit, breakdown, breakdown_attribution, breakdown_step)
    for (u, bucket), (evs, unit_steps) in pseudo.items():
        evs = sorted(evs, key=lambda e: e["_t"])
        if mode == "unordered":
            best = _best_unordered(evs, unit_steps, window_seconds, xs)
        else:
            best = _best_ordered(evs, unit_steps, mode == "strict", window_seconds, xs)
        if best is None or best[2]:
            continue
        if breakdown is not None and breakdown_attribution in ("first_touch", "last_touch"):
            bucket = _touch(evs, specs, breakdown, breakdown_attribution == "last_touch")
        result[(u, bucket)] = best[1]
    return result


def reference_funnel(events: list[Event], steps: list[Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Rows like `event_funnel`: per (breakdown value, step) count, rates, avg/median times."""
    specs = [norm_step(s) for s in steps]
    units = reference_units(events, steps, **kwargs)
    buckets = sorted({b for _, b in units}) if kwargs.get("breakdown") else [""]
    rows = []
    for bucket in buckets:
        mine = [t for (_, b), t in units.items() if b == bucket]
        counts = [sum(1 for t in mine if len(t) >= k) for k in range(1, len(specs) + 1)]
        for k, spec in enumerate(specs, start=1):
            diffs = [t[k - 1] - t[k - 2] for t in mine if len(t) >= k and k > 1]
            prev = counts[k - 2] if k > 1 else counts[0]
            row = {
                "step": k,
                "event_name": spec["event"],
                "unit_count": counts[k - 1],
                "conversion_rate_from_previous": counts[k - 1] / prev if prev else None,
                "conversion_rate_from_start": counts[k - 1] / counts[0] if counts[0] else None,
                "avg_time_from_previous_seconds": statistics.fmean(diffs) if diffs else None,
                "median_time_from_previous_seconds": statistics.median(diffs) if diffs else None,
            }
            if kwargs.get("breakdown"):
                row["breakdown_value"] = bucket
            rows.append(row)
    return rows
