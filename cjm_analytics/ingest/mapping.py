"""A source's column mapping, resolved into event specs: which source column feeds which field.

A plain source gives one spec per row. A wide record (`events:` in journey.yaml) gives one
spec per listed event, each with its own time column, conditions and extra fields. The
event id of a wide event is `<row id>:<event name>` when several events share the id column,
and, when no id column is mapped at all, a hash of the raw record (`h<sha256[:24]>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cjm_analytics.config import CANONICAL_FIELDS, Condition, SourceConfig

#: canonical fields read as numbers (validated with try_cast)
NUMERIC_FIELDS: tuple[str, ...] = ("amount", "csat_score", "nps_score")
#: canonical fields copied as text
TEXT_FIELDS: tuple[str, ...] = tuple(
    field
    for field in CANONICAL_FIELDS
    if field not in ("event_id", "event_name", "event_at", "channel", *NUMERIC_FIELDS)
)


@dataclass(frozen=True)
class EventSpec:
    """How one event is taken from a row (source column names, not yet generated names)."""

    name_columns: tuple[str, ...]  # joined with the separator; empty when `constant_name`
    constant_name: str | None
    at_columns: tuple[str, ...]  # joined with a space (a date column and a time-of-day column)
    fields: dict[str, str] = field(default_factory=dict)  # canonical field -> source column
    when: tuple[Condition, ...] = ()
    id_suffix: bool = False  # event id = <row id>:<event name>


def event_specs(source: SourceConfig) -> list[EventSpec]:
    """One spec for a plain source, one per `events` entry for a wide record."""
    base = {k: v for k, v in source.columns.items() if k not in ("event_name", "event_at")}
    fields: dict[str, str] = {k: v for k, v in base.items() if isinstance(v, str)}
    if not source.events:
        name = source.columns.get("event_name", "activity")
        name_columns = (name,) if isinstance(name, str) else tuple(name)
        return [
            EventSpec(
                name_columns, None, columns_of(source.columns.get("event_at", "timestamp")), fields
            )
        ]
    id_columns = [_merged(fields, e.properties).get("event_id") for e in source.events]
    shared = {c for c in id_columns if c is not None and id_columns.count(c) > 1}
    specs = []
    for event, id_column in zip(source.events, id_columns, strict=True):
        specs.append(
            EventSpec(
                name_columns=(),
                constant_name=event.name,
                at_columns=columns_of(event.at),
                fields=_merged(fields, event.properties),
                when=tuple(event.when),
                id_suffix=id_column in shared,
            )
        )
    return specs


def columns_of(value: str | list[str]) -> tuple[str, ...]:
    """A mapping value as a tuple of source columns (one column, or columns joined)."""
    return (value,) if isinstance(value, str) else tuple(value)


def _merged(base: dict[str, str], extra: Mapping[Any, str]) -> dict[str, str]:
    return {**base, **dict(extra)}


def needed_columns(source: SourceConfig) -> list[str]:
    """Every source column the mapping reads, in a stable order (for JSON and Parquet)."""
    found: list[str] = []
    for spec in event_specs(source):
        found += [*spec.name_columns, *spec.at_columns, *spec.fields.values()]
        found += [c.column for c in spec.when]
    for value in source.identifiers.values():
        found += columns_of(value)
    found += list(source.properties)
    if source.join is not None:
        found += list(source.join.on)
    return list(dict.fromkeys(found))


def time_columns(source: SourceConfig) -> set[str]:
    return {column for spec in event_specs(source) for column in spec.at_columns}
