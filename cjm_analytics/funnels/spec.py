"""A validated ad-hoc funnel definition, and the SQL predicates its steps compile to.

Values (event names, property values, dates, the window) always reach SQL as bound `?`
parameters; only column identifiers are written into the SQL text, double-quoted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from cjm_analytics.errors import FunnelError
from cjm_analytics.warehouse import quote_identifier as quote

MODES = ("ordered", "strict", "unordered")
ATTRIBUTIONS = ("first_touch", "last_touch", "all_events", "step")
_STEP_KEYS = {"event", "where", "first_time"}
_EXCLUSION_KEYS = {"event", "where", "from_step", "to_step"}
_EPOCH = datetime(1970, 1, 1)
#: A window this long (about 3,000 years) is "no window"; `float("inf")` means it too.
_NO_WINDOW_SECONDS = 1e11
NO_WINDOW_US = round(_NO_WINDOW_SECONDS * 1_000_000)


@dataclass(frozen=True)
class Matcher:
    """Which events a step (or an exclusion) matches: a name, property equalities, first-time."""

    event: str
    where: tuple[tuple[str, Any], ...] = ()
    first_time: bool = False

    def to_sql(self, alias: str = "") -> tuple[str, list[Any]]:
        """`(predicate, params)`; a list value means "any of", None means "is null"."""
        prefix = f"{alias}." if alias else ""
        parts, params = [f"{prefix}event_name = ?"], [self.event]
        for column, value in self.where:
            ident = f"{prefix}{quote(column)}"
            if value is None:
                parts.append(f"{ident} IS NULL")
            elif isinstance(value, tuple):
                parts.append(f"{ident} IN ({', '.join('?' for _ in value)})")
                params.extend(value)
            else:
                parts.append(f"{ident} = ?")
                params.append(value)
        if self.first_time:
            parts.append(f"{prefix}is_first_of_name")
        return "(" + " AND ".join(parts) + ")", params


@dataclass(frozen=True)
class Exclusion:
    matcher: Matcher
    from_step: int
    to_step: int


@dataclass(frozen=True)
class FunnelSpec:
    """Everything `event_funnel` was asked, checked; times in epoch microseconds."""

    steps: tuple[Matcher, ...]
    mode: str = "ordered"
    window_us: int = 14 * 86400 * 1_000_000
    exclusions: tuple[Exclusion, ...] = ()
    breakdown: str | None = None
    attribution: str = "first_touch"
    breakdown_step: int | None = None
    unit: str = "customer_id"
    from_us: int | None = None
    to_us: int | None = None

    @property
    def n(self) -> int:
        return len(self.steps)

    @property
    def uses_first_time(self) -> bool:
        return any(m.first_time for m in self.steps)

    @property
    def by_touch(self) -> bool:
        """Broken down by each unit's first- or last-touch value (not per event or step)."""
        return self.breakdown is not None and self.attribution in ("first_touch", "last_touch")

    @property
    def property_columns(self) -> list[str]:
        """Columns the predicates read, besides event_name."""
        cols = [c for m in self.steps for c, _ in m.where]
        cols += [c for x in self.exclusions for c, _ in x.matcher.where]
        return sorted(set(cols))


def parse_matcher(raw: Any, where_from: str, allowed: set[str]) -> Matcher:
    if isinstance(raw, str):
        return Matcher(raw)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("event"), str):
        raise FunnelError(
            f"{where_from}: expected an event name or a dict with 'event' (a string), got {raw!r}"
        )
    unknown = set(raw) - allowed
    if unknown:
        raise FunnelError(
            f"{where_from}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    where = raw.get("where") or {}
    if not isinstance(where, Mapping):
        raise FunnelError(
            f"{where_from}.where: expected a mapping of column to value, got {where!r}"
        )
    items = tuple(
        (str(k), tuple(v) if isinstance(v, list | tuple | set | frozenset) else v)
        for k, v in sorted(where.items())
    )
    return Matcher(raw["event"], items, bool(raw.get("first_time", False)))


def _parse_exclusion(raw: Any, i: int, n: int, mode: str) -> Exclusion:
    where_from = f"exclusions[{i}]"
    if not isinstance(raw, Mapping) or "from_step" not in raw or "to_step" not in raw:
        raise FunnelError(f"{where_from}: expected {{'event', 'from_step', 'to_step'[, 'where']}}")
    matcher = parse_matcher(raw, where_from, _EXCLUSION_KEYS)
    lo, hi = raw["from_step"], raw["to_step"]
    if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo < hi <= n - 1):
        raise FunnelError(
            f"{where_from}: from_step/to_step are 0-based step indexes with "
            f"0 <= from_step < to_step <= {n - 1}; got {lo!r}, {hi!r}"
        )
    if mode == "unordered" and (lo, hi) != (0, n - 1):
        raise FunnelError(
            f"{where_from}: an unordered funnel has no step order, so an exclusion must span "
            f"the whole funnel (from_step=0, to_step={n - 1})"
        )
    return Exclusion(matcher, lo, hi)


def to_epoch_us(value: Any, *, end_of_day: bool, name: str) -> int | None:
    """A date bound as UTC epoch microseconds; a bare date covers its whole day."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
        except ValueError:
            raise FunnelError(
                f"{name}: {value!r} is not an ISO date or datetime (e.g. 2024-05-01)"
            ) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time()) + (timedelta(days=1) if end_of_day else timedelta())
        return _us(value) - (1 if end_of_day else 0)
    if isinstance(value, datetime):
        return _us(value)
    raise FunnelError(f"{name}: expected a date, datetime or ISO string, got {value!r}")


def _us(value: datetime) -> int:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def build_spec(
    steps: Sequence[Any],
    *,
    columns: Sequence[str],
    mode: str,
    window_seconds: float,
    exclusions: Sequence[Any],
    breakdown: str | None,
    breakdown_attribution: str,
    breakdown_step: int | None,
    unit: str,
    date_from: Any,
    date_to: Any,
) -> FunnelSpec:
    """Check every argument against the events' columns; raise FunnelError saying what is wrong."""
    if isinstance(steps, str) or not steps:
        raise FunnelError("steps: expected a non-empty list of event names or step dicts")
    matchers = tuple(parse_matcher(s, f"steps[{i}]", _STEP_KEYS) for i, s in enumerate(steps))
    if mode not in MODES:
        raise FunnelError(f"mode: {mode!r} is not one of {list(MODES)}")
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, int | float):
        raise FunnelError(f"window_seconds: expected a number of seconds, got {window_seconds!r}")
    if window_seconds < 0:
        raise FunnelError(f"window_seconds: must be >= 0, got {window_seconds}")
    xs = tuple(_parse_exclusion(x, i, len(matchers), mode) for i, x in enumerate(exclusions))
    _check_attribution(breakdown, breakdown_attribution, breakdown_step, len(matchers), mode)
    spec = FunnelSpec(
        steps=matchers,
        mode=mode,
        window_us=round(min(window_seconds, _NO_WINDOW_SECONDS) * 1_000_000),
        exclusions=xs,
        breakdown=breakdown,
        attribution=breakdown_attribution,
        breakdown_step=breakdown_step if breakdown and breakdown_attribution == "step" else None,
        unit=unit,
        from_us=to_epoch_us(date_from, end_of_day=False, name="date_from"),
        to_us=to_epoch_us(date_to, end_of_day=True, name="date_to"),
    )
    _check_columns(spec, columns)
    return spec


def _check_attribution(
    breakdown: str | None, attribution: str, breakdown_step: int | None, n: int, mode: str
) -> None:
    if attribution not in ATTRIBUTIONS:
        raise FunnelError(
            f"breakdown_attribution: {attribution!r} is not one of {list(ATTRIBUTIONS)}"
        )
    if breakdown is None or attribution != "step":
        return
    if not isinstance(breakdown_step, int) or not 0 <= breakdown_step < n:
        raise FunnelError(
            f"breakdown_step: attribution 'step' needs a 0-based step index in 0..{n - 1}, "
            f"got {breakdown_step!r}"
        )


def _check_columns(spec: FunnelSpec, columns: Sequence[str]) -> None:
    have = set(columns)
    needed = {"event_at": "events", "event_name": "events", spec.unit: "unit"}
    if spec.breakdown:
        needed[spec.breakdown] = "breakdown"
    for column in spec.property_columns:
        needed.setdefault(column, "a step or exclusion 'where'")
    for column, role in needed.items():
        if column not in have:
            raise FunnelError(
                f"events: no column {column!r} (needed by {role}); available: {sorted(have)}"
            )
