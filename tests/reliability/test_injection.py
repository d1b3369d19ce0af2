"""Config values never become SQL: hypothesis feeds stage-rule values, segment names and
source column mappings with quotes, semicolons, comments and SQL fragments.

- stage-rule values (event names, `where:` values) are matched as data: an event named
  `x'; drop table events; --` matches a rule with exactly that value, and nothing else does;
  the SQL the stage step executes is the same text whatever the values are;
- names that become identifiers (segments, stage names, channels) are validated: a bad one
  is a ConfigError naming the key and the accepted pattern;
- a source column called anything at all is mapped by name and read as data.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stage_builders import event, load_events

from cjm_analytics import stages, warehouse
from cjm_analytics.config import IDENTIFIER_PATTERN, parse_config
from cjm_analytics.errors import ConfigError
from cjm_analytics.ingest import ingest, load_lake

FRAGMENTS = [
    "x'; drop table events; --", "'; DELETE FROM stage_rules; --", '"; DROP TABLE "journeys"; --',
    "/* comment */", "*/", "-- tail", "' OR '1'='1", "$1", "?", "$as_of", "getvariable('x')",
    "\\", "%", "_", "${HOME}", "union select 1", "');", "\"", "'",
]  # fmt: skip
#: text a config value may hold: SQL fragments and odd characters, glued together
VALUES = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(alphabet="ab;'\"-*/\\%_() =$?#", min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=4,
).map("".join)
SOURCES = {
    "web": {"path": "w", "format": "csv", "channel": "web", "identifiers": {"cookie": "c"},
            "columns": {"event_name": "e", "event_at": "t"}, "properties": ["reason"]},
}  # fmt: skip
FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Recorder:
    """A DuckDB connection that writes down the SQL text of every statement it runs."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.statements = con, []

    def execute(self, sql: str, *args: Any) -> Any:
        self.statements.append(sql)
        return self.con.execute(sql, *args)

    def sql(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self.statements.append(sql)
        return self.con.sql(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def stage_of_each_event(event_value: str, where_value: str) -> tuple[list[tuple], list[str]]:
    """Events named around `event_value`; rule `event: <value>, where reason: <value>`."""
    cfg = parse_config(
        {"sources": SOURCES, "stages": [
            {"name": "a", "success": True,
             "rules": [{"event": event_value, "where": {"reason": where_value}}]},
        ]},
        Path("."),
    )  # fmt: skip
    with warehouse.connection() as con:
        load_events(
            con,
            [
                event("c", event_value, 0, properties={"reason": where_value}),  # e1 matches
                event("c", event_value + "x", 1, properties={"reason": where_value}),  # e2 name
                event("c", event_value, 2, properties={"reason": where_value + " "}),  # e3 where
                event("c", "x", 3, properties={"reason": "x"}),  # e4
            ],
        )
        recorder = Recorder(con)
        stages.load_stage_tables(recorder, cfg)  # type: ignore[arg-type]
        model = next(m for m in warehouse.discover_models() if m.name == "int_stage_rule_matches")
        warehouse.run_models(recorder, [model])  # type: ignore[arg-type]
        matched = con.execute(
            "SELECT event_id, stage FROM int_stage_rule_matches ORDER BY event_id"
        ).fetchall()
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"events", "stage_rules", "stage_rule_conditions"} <= tables  # nothing dropped
    return matched, recorder.statements


@FAST
@given(event_value=VALUES, where_value=VALUES)
def test_rule_values_match_as_data_and_the_sql_never_changes(
    event_value: str, where_value: str
) -> None:
    matched, statements = stage_of_each_event(event_value, where_value)
    assert matched == [("e1", "a")]
    _, reference = stage_of_each_event("page_view", "product_question")
    assert statements == reference


def test_the_sql_injection_classic_matches_its_own_event() -> None:
    matched, statements = stage_of_each_event("x'; drop table events; --", "' OR '1'='1")
    assert matched == [("e1", "a")]
    assert not any("drop table events" in s for s in statements)


@FAST
@given(name=VALUES)
def test_names_that_become_identifiers_are_validated(name: str) -> None:
    import re

    valid = re.fullmatch(IDENTIFIER_PATTERN.strip("^$"), name) is not None
    for key, data in (
        ("segments.0", {"segments": [name]}),
        ("stages.0.name", {"stages": [{"name": name, "success": True}]}),
        ("sources.web.channel", {"sources": {"web": {**SOURCES["web"], "channel": name}}}),
    ):
        try:
            parse_config({"sources": SOURCES, **data}, Path("."))
        except ConfigError as error:
            assert not valid
            assert key in str(error) and "should match pattern" in str(error)
        else:
            assert valid


@FAST
@given(column=VALUES, name=VALUES)
def test_source_columns_with_any_name_are_read_as_data(column: str, name: str) -> None:
    column, name = column.strip(), name.strip()
    if not column or not name or column in ("c", "t"):
        return  # empty after trimming, or the name of another column
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerows([["c", "t", column], ["k1", "2024-05-01 10:00:00", name]])
        (root / "web.csv").write_text(text.getvalue(), encoding="utf-8")
        source = {**SOURCES["web"], "path": "web.csv", "timezone": "UTC", "properties": [],
                  "columns": {"event_name": column, "event_at": "t"}}  # fmt: skip
        cfg = parse_config({"paths": {"lake": "lake"}, "sources": {"web": source}}, root)
        summary = ingest(cfg, as_of=datetime(2024, 6, 1, tzinfo=UTC))
        assert (summary.rows_read, summary.rows_loaded) == (1, 1), summary.files[0].message
        with warehouse.connection() as con:
            load_lake(con, cfg)
            assert con.execute("SELECT event_name, cookie_id FROM stg_events").fetchall() == [
                (name, "k1")
            ]


@pytest.mark.parametrize("value", ["x'; drop table events; --"])
def test_rule_listing_the_value_keeps_it_verbatim(value: str) -> None:
    cfg = parse_config(
        {
            "sources": SOURCES,
            "stages": [{"name": "a", "success": True, "rules": [{"event": value}]}],
        },
        Path("."),
    )
    assert [r.event_name for r in stages.rule_rows(cfg)] == [value]
