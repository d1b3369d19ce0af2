"""Stage rules from journey.yaml -> small rule tables that SQL matches by joining.

Rules are data, never SQL text. `load_stage_tables(con, cfg)` writes:

- `stage_definitions`: one row per stage (`stage`, `stage_order` 1-based in config order,
  `is_success_stage`, `is_final_stage`);
- `stage_rules`: one row per (rule, source, event name) combination: a rule listing two
  sources and three event names becomes six rows sharing `rule_id`; `rule_priority` is
  the rule's position in config order (stage by stage, rule by rule), and the first
  matching rule decides an event's stage (so an earlier stage wins a tie);
- `stage_rule_conditions`: one row per (rule, condition, accepted value) of the rule's
  `where:` block. A condition field is a canonical event column (`device`, `nps_score`,
  ...) when it names one, otherwise a key of the event's `properties` JSON, which must be
  declared in the `properties:` list of one of the rule's sources; `properties.<key>`
  names a property key explicitly (for sources whose properties are not declared, such
  as XES logs). A value matches when it is equal as text or equal as a number ("9"
  matches 9.0).

`sql/intermediate/int_stage_rule_matches.sql` joins events to these tables and tests URL
patterns with the TEMP macro `stage_rule_url_matches` (`define_url_matcher`).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from cjm_analytics import warehouse
from cjm_analytics.config import CANONICAL_FIELDS, JourneyConfig, StageRule
from cjm_analytics.errors import ConfigError

#: The TEMP SQL macro int_stage_rule_matches calls to test a rule's url_pattern.
URL_MATCHER = "stage_rule_url_matches"

#: Canonical event columns a `where:` condition may test (the SQL matcher knows exactly these).
#: The source, and every canonical field but the event's id and time.
CONDITION_COLUMNS: tuple[str, ...] = (
    "source",
    *(field for field in CANONICAL_FIELDS if field not in ("event_id", "event_at")),
)
PROPERTY_PREFIX = "properties."


@dataclass(frozen=True)
class RuleRow:
    """One row of `stage_rules` (NULL parts match anything)."""

    rule_id: int
    rule_priority: int
    stage: str
    stage_order: int
    source: str | None
    event_name: str | None
    url_pattern: str | None
    channel: str | None
    condition_count: int


@dataclass(frozen=True)
class ConditionRow:
    """One accepted value of one `where:` condition of a rule."""

    rule_id: int
    condition_id: int
    field: str
    is_property: bool
    json_path: str | None
    value: str


def stage_definition_frame(cfg: JourneyConfig) -> pl.DataFrame:
    """One row per configured stage: stage, stage_order, is_success_stage, is_final_stage."""
    names = cfg.stage_names
    return pl.DataFrame(
        {
            "stage": names,
            "stage_order": list(range(1, len(names) + 1)),
            "is_success_stage": [stage.success for stage in cfg.stages],
            "is_final_stage": [i == len(names) for i in range(1, len(names) + 1)],
        },
        schema={
            "stage": pl.String,
            "stage_order": pl.Int32,
            "is_success_stage": pl.Boolean,
            "is_final_stage": pl.Boolean,
        },
    )


def rule_rows(cfg: JourneyConfig) -> list[RuleRow]:
    """Every rule expanded to one row per (source, event name) it lists, in config order."""
    rows: list[RuleRow] = []
    priority = 0
    for stage_order, stage in enumerate(cfg.stages, start=1):
        for rule in stage.rules:
            priority += 1
            conditions = len(rule.where)
            for source in _listed(rule.source):
                for event_name in _listed(rule.event):
                    rows.append(
                        RuleRow(
                            priority,
                            priority,
                            stage.name,
                            stage_order,
                            source,
                            event_name,
                            rule.url_pattern,
                            rule.channel,
                            conditions,
                        )
                    )
    return rows


def condition_rows(cfg: JourneyConfig) -> list[ConditionRow]:
    """Every `where:` value of every rule, with its field validated (see module doc)."""
    rows: list[ConditionRow] = []
    priority = 0
    for stage in cfg.stages:
        for index, rule in enumerate(stage.rules):
            priority += 1
            for condition_id, (field, values) in enumerate(sorted(rule.where.items()), start=1):
                is_property, key = _condition_field(
                    cfg, rule, field, f"stages.{stage.name}.rules[{index}]"
                )
                path = _json_path(key) if is_property else None
                for value in [values] if isinstance(values, str) else values:
                    rows.append(ConditionRow(priority, condition_id, key, is_property, path, value))
    return rows


def _listed(value: str | list[str] | None) -> list[str | None]:
    if value is None:
        return [None]
    return [value] if isinstance(value, str) else list(value)


def _condition_field(
    cfg: JourneyConfig, rule: StageRule, field: str, where: str
) -> tuple[bool, str]:
    """(is_property, column or key) for a `where:` field; ConfigError when it is unknown."""
    if field.startswith(PROPERTY_PREFIX) and len(field) > len(PROPERTY_PREFIX):
        return True, field[len(PROPERTY_PREFIX) :]
    if field in CONDITION_COLUMNS:
        return False, field
    sources = [s for s in _listed(rule.source) if s is not None] or list(cfg.sources)
    declared = sorted({p for s in sources for p in cfg.sources[s].properties})
    if field in declared:
        return True, field
    raise ConfigError(
        f"{where}.where: unknown field {field!r}; use a canonical column "
        f"({', '.join(CONDITION_COLUMNS)}), a property declared in the `properties:` list of "
        f"source(s) {sources} ({declared or 'none declared'}), or `properties.<key>`"
    )


def _json_path(key: str) -> str:
    """A JSON path selecting one key of `properties`, whatever characters the key holds."""
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'$."{escaped}"'


def validate_url_patterns(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """Raise ConfigError when DuckDB's regex engine (RE2) rejects a rule's url_pattern."""
    for stage in cfg.stages:
        for index, rule in enumerate(stage.rules):
            if rule.url_pattern is None:
                continue
            try:
                con.execute("SELECT regexp_matches('', ?)", [rule.url_pattern]).fetchall()
            except duckdb.Error as exc:
                raise ConfigError(
                    f"stages.{stage.name}.rules[{index}].url_pattern {rule.url_pattern!r} is not "
                    f"accepted by DuckDB's RE2 engine ({exc}); look-arounds and back-references "
                    f"are not supported"
                ) from None


def load_stage_tables(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """Write stage_definitions, stage_rules and stage_rule_conditions (see module doc)."""
    if not cfg.stages:
        raise ConfigError("stages: the journey map has no stages; list them in journey.yaml")
    validate_url_patterns(con, cfg)
    rules = pl.DataFrame(
        [r.__dict__ for r in rule_rows(cfg)],
        schema={
            "rule_id": pl.Int32,
            "rule_priority": pl.Int32,
            "stage": pl.String,
            "stage_order": pl.Int32,
            "source": pl.String,
            "event_name": pl.String,
            "url_pattern": pl.String,
            "channel": pl.String,
            "condition_count": pl.Int32,
        },
    )
    conditions = pl.DataFrame(
        [c.__dict__ for c in condition_rows(cfg)],
        schema={
            "rule_id": pl.Int32,
            "condition_id": pl.Int32,
            "field": pl.String,
            "is_property": pl.Boolean,
            "json_path": pl.String,
            "value": pl.String,
        },
    )
    write_table(con, "stage_definitions", stage_definition_frame(cfg))
    write_table(con, "stage_rules", rules)
    write_table(con, "stage_rule_conditions", conditions)
    define_url_matcher(con, cfg)


def define_url_matcher(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """Define the TEMP macro `stage_rule_url_matches(page_url, rule_id)`: does page_url match
    the rule's url_pattern (RE2 search; NULL for a rule without one)?

    Each pattern is a bound SQL variable, which DuckDB folds to a constant and compiles once
    per query; a pattern read from a column is compiled again for every row (at 1M events
    about 2 s for 142k distinct URLs, ADR 0076). The macro's text holds only rule ids.
    """
    patterns = {
        row.rule_id: row.url_pattern for row in rule_rows(cfg) if row.url_pattern is not None
    }
    warehouse.set_variables(
        con, {f"stage_rule_url_pattern_{rule_id}": p for rule_id, p in patterns.items()}
    )
    branches = " ".join(
        f"WHEN {int(rule_id)} THEN regexp_matches(page_url, "
        f"getvariable('stage_rule_url_pattern_{int(rule_id)}'))"
        for rule_id in sorted(patterns)
    )
    body = f"CASE rule_id {branches} END" if branches else "CAST(NULL AS BOOLEAN)"
    con.execute(f"CREATE OR REPLACE TEMP MACRO {URL_MATCHER}(page_url, rule_id) AS {body}")


def write_table(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    """Replace table `name` (a constant of this package) by a polars frame, in one transaction."""
    con.register("_cjm_frame", frame.to_arrow())
    try:
        con.execute("BEGIN")
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _cjm_frame')
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_cjm_frame")
