"""journey.yaml -> typed, validated settings.

Everything a business user tunes lives in one YAML file: the sources and their column
mappings, identity rules, the ordered stages and their rules, the designed journey,
timeouts, segments, the schedule and alert rules. `load_config(path)` returns a
`JourneyConfig` or raises `ConfigError` whose message names the key and what is allowed.

Paths in the file are relative to the file's own folder.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cjm_analytics.errors import ConfigError

#: A name that may become a SQL identifier or a table/column name: validated, never quoted blindly.
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]

#: The identifier kinds the identity graph knows. `case` is for process logs whose case id
#: already is the customer (or journey) and links to nothing else.
IdentifierKind = Literal["cookie", "user_id", "email", "phone", "contact_id", "case"]
IDENTIFIER_KINDS: tuple[str, ...] = ("cookie", "user_id", "email", "phone", "contact_id", "case")
#: Identifier kinds that are personal data: stored only as salted hashes.
PII_IDENTIFIER_KINDS: tuple[str, ...] = ("email", "phone")

#: Canonical event fields a source column may map to (besides identifiers and properties).
CanonicalField = Literal[
    "event_id",
    "event_name",
    "event_at",
    "channel",
    "page_url",
    "device",
    "region",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "amount",
    "csat_score",
    "nps_score",
    "outcome",
]
CANONICAL_FIELDS: tuple[str, ...] = CanonicalField.__args__  # type: ignore[attr-defined]

SourceFormat = Literal["csv", "jsonl", "parquet", "xes"]
Channel = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvDialect(_Strict):
    """How a CSV file is written. Passed to DuckDB explicitly: no sniffing."""

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quote: str = Field(default='"', max_length=1)
    escape: str = Field(default='"', max_length=1)
    header: bool = True
    encoding: Literal["utf-8", "latin-1", "utf-16"] = "utf-8"
    null_values: list[str] = Field(default_factory=lambda: [""])


class JoinSpec(_Strict):
    """A second file joined to each row of the source before mapping (e.g. leads + closed deals)."""

    path: str
    format: Literal["csv", "jsonl", "parquet"] = "csv"
    csv: CsvDialect = Field(default_factory=CsvDialect)
    on: list[Identifier] = Field(min_length=1)
    how: Literal["left", "inner"] = "left"

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: Any) -> Any:
        """YAML 1.1 reads a bare `on:` key as the boolean true; take it as `on`."""
        if isinstance(data, dict) and True in data and "on" not in data:
            return {("on" if key is True else key): value for key, value in data.items()}
        return data


class Condition(_Strict):
    """A condition on one source column: equals one of `in_`, or is (not) null."""

    column: str
    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = Field(
        default=None, description="the value is present and none of these (e.g. a zero time)"
    )
    is_null: bool | None = None


class WideEvent(_Strict):
    """One event taken from a wide record: a row with several timestamps becomes several events."""

    name: str = Field(min_length=1)
    at: str | list[str] = Field(
        min_length=1,
        description="the source column holding this event's time, or columns joined with a "
        "space (a date column and a time-of-day column)",
    )
    when: list[Condition] = Field(default_factory=list)
    properties: dict[CanonicalField, str] = Field(
        default_factory=dict, description="canonical field -> source column, for this event only"
    )


class SourceConfig(_Strict):
    """One source system: where its files are, how they are written, how columns map."""

    path: str = Field(min_length=1, description="glob of input files, relative to journey.yaml")
    format: SourceFormat
    channel: Channel = Field(description="default channel of this source's touchpoints")
    csv: CsvDialect = Field(default_factory=CsvDialect)
    timezone: str | None = Field(
        default=None,
        description="IANA zone for naive timestamps; without it naive timestamps are rejected",
    )
    timestamp_format: str | None = Field(
        default=None,
        description="strptime format, or epoch_s / epoch_ms for Unix seconds / milliseconds (UTC)",
    )
    join: JoinSpec | None = None
    columns: dict[CanonicalField, str | list[str]] = Field(default_factory=dict)
    event_name_separator: str = " / "
    identifiers: dict[IdentifierKind, str | list[str]] = Field(
        default_factory=dict,
        description="kind -> column, or columns whose values joined by `identifier_separator` "
        "make the identifier (NULL when one of them is empty)",
    )
    identifier_separator: str = "|"
    properties: list[str] = Field(default_factory=list, description="extra columns kept as JSON")
    events: list[WideEvent] = Field(
        default_factory=list, description="wide records: one row becomes several events"
    )
    not_before: str | None = Field(
        default=None, description="ISO date; events earlier than this are rejected"
    )
    explode: str | None = Field(
        default=None,
        description="JSON lines: a key holding a list of objects; each element becomes a row "
        "with the line's other keys (element keys win), mapped by key name (ADR 0064)",
    )
    record_order: Literal["by_time", "as_listed"] = Field(
        default="by_time",
        description="as_listed: the events one row gives (wide `events`, `explode` elements) "
        "happen in their listed order; a time earlier than the row's previous event is raised "
        "to it (ADR 0063)",
    )
    day_wraps: bool = Field(
        default=False,
        description="times are a time of day on the row's date: an event more than 12 hours "
        "before the row's previous event is on the next day (a call crossing midnight)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        # one zone file read, not the whole tz database listed (available_timezones: about
        # 0.3 s in a night's cold process)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'"
            ) from None
        return value

    @model_validator(mode="after")
    def _has_time_and_name(self) -> SourceConfig:
        if self.explode is not None and self.format != "jsonl":
            raise ValueError("explode: only for format jsonl (a key holding a list of objects)")
        if self.events:
            return self
        if self.format != "xes":
            for needed in ("event_name", "event_at"):
                if needed not in self.columns:
                    raise ValueError(
                        f"columns.{needed} is required (or list wide-record `events`); "
                        f"map it to one of the source's columns"
                    )
        if not self.identifiers:
            raise ValueError("identifiers: map at least one of " + ", ".join(IDENTIFIER_KINDS))
        return self


_DEFAULT_PRECEDENCE: tuple[IdentifierKind, ...] = (
    "contact_id",
    "user_id",
    "email",
    "phone",
    "cookie",
    "case",
)


class IdentityRules(_Strict):
    """How identifiers link into customers (see docs/adr on identity precedence)."""

    links: list[tuple[IdentifierKind, IdentifierKind]] | None = Field(
        default=None, description="kinds that link when they occur on one event; None = all pairs"
    )
    precedence: list[IdentifierKind] = Field(default_factory=lambda: list(_DEFAULT_PRECEDENCE))
    shared_identifiers: dict[IdentifierKind, list[str]] = Field(
        default_factory=dict, description="raw values that never link (e.g. a switchboard phone)"
    )
    max_partners_per_identifier: int = Field(default=25, ge=1)
    max_cluster_identifiers: int = Field(default=200, ge=2)


class StageRule(_Strict):
    """Events that map to a stage. All given parts must match (AND); lists mean any-of."""

    source: str | list[str] | None = None
    event: str | list[str] | None = None
    url_pattern: str | None = Field(default=None, description="regular expression on page_url")
    where: dict[str, str | list[str]] = Field(
        default_factory=dict, description="canonical field or property -> value(s)"
    )
    channel: Channel | None = Field(default=None, description="overrides the source's channel")

    @field_validator("url_pattern")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"url_pattern is not a valid regular expression: {exc}") from exc
        return value


class Stage(_Strict):
    name: Identifier
    rules: list[StageRule] = Field(default_factory=list)
    success: bool = False
    channels: list[Channel] | None = Field(
        default=None, description="channels the designed journey expects at this stage"
    )


class DesignedJourney(_Strict):
    """The transitions the business expects; default: each stage to the next one."""

    transitions: list[tuple[Identifier, Identifier]] | None = None


class Timeouts(_Strict):
    journey_inactivity_days: float = Field(default=30, gt=0)
    abandonment_days: float = Field(default=14, gt=0)
    funnel_window_days: float = Field(default=14, gt=0)


class FunnelSettings(_Strict):
    mode: Literal["furthest", "ordered"] = "furthest"
    benchmark_min_journeys: int = Field(default=200, ge=1)
    cohort_weeks_recent: int = Field(default=8, ge=1)
    dropoff_min_journeys: int = Field(
        default=5,
        ge=1,
        description="a drop-off driver is tested only when this many journeys have it",
    )


class EmotionSettings(_Strict):
    """Which touchpoints are calls, failed calls and negative outcomes (the emotion line)."""

    call_events: list[str] = Field(
        default_factory=lambda: ["call_answered", "call_abandoned", "call_voicemail"],
        description="event names that are the outcome of one call",
    )
    failed_call_events: list[str] = Field(
        default_factory=lambda: ["call_abandoned", "call_voicemail"],
        description="event names of calls that failed (abandoned in queue, voicemail)",
    )
    negative_outcomes: list[str] = Field(
        default_factory=lambda: [
            "abandoned",
            "voicemail",
            "lost",
            "declined",
            "cancelled",
            "complaint",
        ],
        description="values of the `outcome` column that count as a negative outcome",
    )


class Schedule(_Strict):
    cron: str = "0 2 * * *"
    timezone: str = "UTC"


class AlertRule(_Strict):
    kind: Literal["constraint_moved", "stage_drop", "rejects_rate"]
    stage: Identifier | None = None
    threshold: float | None = None


class Paths(_Strict):
    lake: str = "../lake"
    warehouse: str = "../warehouse/cjm.duckdb"
    reports: str = "../reports"
    runs: str = "../runs"


class WarehouseSettings(_Strict):
    memory_limit: str | None = None
    threads: int | None = Field(default=None, ge=1)
    temp_directory: str | None = None
    incremental: bool = Field(
        default=True,
        description="recompute per-customer models only for customers whose events changed "
        "since the published night (same results; docs/adr/0100); false recomputes all",
    )


class MiningSettings(_Strict):
    """Process mining: model discovery from variants and conformance to the designed journey."""

    noise_threshold: float = Field(
        default=0.2, ge=0, le=1, description="inductive miner (IMf) noise threshold; 0 = plain IM"
    )
    heuristics_dependency_threshold: float = Field(default=0.5, ge=0, le=1)
    conformance_variant_coverage: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="replay the most frequent stage variants covering this share of journeys",
    )
    conformance_max_variants: int = Field(default=20000, ge=1)
    conformance_allow_late_entry: bool = Field(
        default=False,
        description="a journey first seen after the map's first stage is not a skip "
        "(for sources whose early touchpoints are often unobserved)",
    )


class Pii(_Strict):
    salt_env: str = Field(default="CJM_PII_SALT", pattern=r"^[A-Z_][A-Z0-9_]*$")
    default_country_code: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]{0,2}$",
        description="country code for national phone numbers (leading 0), e.g. '49'",
    )


class JourneyConfig(_Strict):
    """The whole journey.yaml. `base_dir` is the folder the file was read from."""

    company: str = "unnamed company"
    base_dir: Path = Field(default=Path("."), exclude=True)
    paths: Paths = Field(default_factory=Paths)
    sources: dict[Identifier, SourceConfig] = Field(min_length=1)
    identity: IdentityRules = Field(default_factory=IdentityRules)
    pii: Pii = Field(default_factory=Pii)
    stages: list[Stage] = Field(default_factory=list)
    designed_journey: DesignedJourney = Field(default_factory=DesignedJourney)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    funnel: FunnelSettings = Field(default_factory=FunnelSettings)
    segments: list[Identifier] = Field(
        default_factory=lambda: ["first_touch_channel", "device", "region", "customer_type"]
    )
    schedule: Schedule = Field(default_factory=Schedule)
    alerts: list[AlertRule] = Field(default_factory=list)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    mining: MiningSettings = Field(default_factory=MiningSettings)
    emotion: EmotionSettings = Field(default_factory=EmotionSettings)

    @model_validator(mode="after")
    def _stages_consistent(self) -> JourneyConfig:
        names = [stage.name for stage in self.stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stages: names must be unique, repeated: {duplicates}")
        if self.stages and sum(stage.success for stage in self.stages) != 1:
            raise ValueError("stages: mark exactly one stage `success: true` (e.g. purchase)")
        for stage in self.stages:
            for rule in stage.rules:
                for source in _as_list(rule.source):
                    if source not in self.sources:
                        raise ValueError(
                            f"stages.{stage.name}.rules.source: unknown source {source!r}; "
                            f"allowed: {sorted(self.sources)}"
                        )
        for a, b in self.designed_journey.transitions or []:
            for name in (a, b):
                if name not in names:
                    raise ValueError(
                        f"designed_journey.transitions: unknown stage {name!r}; allowed: {names}"
                    )
        return self

    # -- derived values -------------------------------------------------------------
    def resolve(self, relative: str) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        path = Path(os.path.expandvars(relative)).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def lake_dir(self) -> Path:
        return self.resolve(self.paths.lake)

    @property
    def warehouse_path(self) -> Path:
        return self.resolve(self.paths.warehouse)

    @property
    def reports_dir(self) -> Path:
        return self.resolve(self.paths.reports)

    @property
    def runs_dir(self) -> Path:
        return self.resolve(self.paths.runs)

    @property
    def stage_names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    @property
    def success_stage(self) -> str | None:
        return next((stage.name for stage in self.stages if stage.success), None)

    @property
    def designed_transitions(self) -> list[tuple[str, str]]:
        if self.designed_journey.transitions is not None:
            return [tuple(t) for t in self.designed_journey.transitions]  # type: ignore[misc]
        names = self.stage_names
        return list(itertools.pairwise(names))

    def pii_salt(self) -> str:
        """The pseudonymization salt, from the environment (never from the repo)."""
        salt = os.environ.get(self.pii.salt_env, "")
        if len(salt) < 16:
            raise ConfigError(
                f"environment variable {self.pii.salt_env} must hold the PII salt "
                f"(at least 16 characters, e.g. from `python -c 'import secrets; "
                f"print(secrets.token_hex(32))'`); it is {'too short' if salt else 'not set'}"
            )
        return salt


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _format_error(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid journey config ({error.error_count()} problem(s))"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/configuration.md)"
        elif item["type"] == "missing":
            message = "required key is missing"
        ctx = item.get("ctx") or {}
        if "expected" in ctx:
            message += f" (allowed: {ctx['expected']})"
        lines.append(f"  - {key}: {message}")
    return "\n".join(lines)


def parse_config(
    data: dict[str, Any], base_dir: Path, origin: str = "journey.yaml"
) -> JourneyConfig:
    """Validate an already-parsed mapping (tests build configs this way)."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: the top level must be a mapping of keys, got {type(data).__name__}"
        )
    try:
        return JourneyConfig.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_format_error(Path(origin), exc)) from None


#: libyaml's safe loader when PyYAML was built with it (the same documents, about 8x faster)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str | Path) -> JourneyConfig:
    """Read and validate journey.yaml; raise ConfigError naming the key and what is allowed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (pass --config PATH to a journey.yaml)")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_config(data or {}, path.resolve().parent, origin=str(path))
