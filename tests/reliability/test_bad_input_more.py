"""Kinds of bad input the corpus of tests/data/bad (tests/ingest/test_bad_inputs.py) does not
hold, built inline: JSON objects where a list of records or a scalar is expected, a phone
shared by thousands of customers, and broken journey.yaml files.

Each: the run finishes for the good rows, the reason names the row and column and what is
accepted, rows read = loaded + rejected, and every rejected row is kept with its reason.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cjm_analytics import warehouse
from cjm_analytics.config import load_config, parse_config
from cjm_analytics.errors import ConfigError
from cjm_analytics.identity import stitch
from cjm_analytics.ingest import ingest, load_lake

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)
COLUMNS = {"event_id": "id", "event_name": "event", "event_at": "ts"}
JSONL = {"format": "jsonl", "channel": "web", "columns": COLUMNS,
         "identifiers": {"contact_id": "contact"}, "path": "raw/*.jsonl"}  # fmt: skip
GOOD = {"id": "9", "event": "e", "ts": "2024-01-01T00:00:00Z", "contact": "k"}


def ingest_rejects(root: Path, source: dict[str, Any]) -> tuple[Any, list[tuple], list[tuple]]:
    cfg = parse_config({"paths": {"lake": "lake"}, "sources": {"bad": source}}, root)
    summary = ingest(cfg, as_of=AS_OF)
    with warehouse.connection() as con:
        load_lake(con, cfg)
        rejects = con.execute(
            "SELECT source_row, column_name, reason FROM ingest_rejects ORDER BY source_row"
        ).fetchall()
        loaded = con.execute("SELECT event_id FROM stg_events ORDER BY event_id").fetchall()
    for result in summary.files:
        assert result.rows_read == result.rows_loaded + result.rows_rejected
    assert len(rejects) == summary.rows_rejected
    return summary, rejects, loaded


def write_lines(root: Path, name: str, lines: list[str]) -> None:
    (root / "raw").mkdir(exist_ok=True)
    (root / "raw" / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_json_object_where_the_records_or_a_value_are_expected(tmp_path: Path) -> None:
    write_lines(
        tmp_path,
        "a.jsonl",
        [
            json.dumps({"events": [GOOD]}),  # an object wrapping the list of records
            json.dumps({**GOOD, "id": "2", "contact": {"id": "k"}}),  # object as identifier
            json.dumps({**GOOD, "id": "3", "event": {"name": "x"}}),  # object as event name
            json.dumps(GOOD),
        ],
    )
    summary, rejects, loaded = ingest_rejects(tmp_path, JSONL)
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (4, 1, 3)
    assert rejects == [
        (1, "id", "missing event id"),
        (2, "contact", "field holds a JSON object; expected a text, number or boolean"),
        (3, "event", "field holds a JSON object; expected a text, number or boolean"),
    ]
    assert loaded == [("9",)]


def test_pretty_printed_json_document_instead_of_json_lines(tmp_path: Path) -> None:
    document = json.dumps({"events": [GOOD]}, indent=2).splitlines()
    assert len(document) == 10  # {, "events": [, {, 4 fields, }, ], }
    write_lines(tmp_path, "a.jsonl", document)
    write_lines(tmp_path, "b.jsonl", [json.dumps(GOOD)])  # a good file beside it
    summary, rejects, loaded = ingest_rejects(tmp_path, JSONL)
    # each of the 10 lines is rejected as malformed JSON; the good file's row loads
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (11, 1, 10)
    assert {(column, reason) for _, column, reason in rejects} == {
        (None, "malformed JSON; expected one JSON object per line")
    }
    assert loaded == [("9",)]


def test_a_phone_shared_by_thousands_of_customers_does_not_explode_identity(
    tmp_path: Path,
) -> None:
    # 3,000 contacts call from one switchboard number that the config does not list: the
    # partner count (3,000 > 25) marks it shared, so it links no one: 3,000 customers.
    rows = ["id,event,ts,contact,phone"] + [
        f"{i},call,2024-01-01 10:00:00,K{i},+49 30 1234 5000" for i in range(3000)
    ]
    write_lines(tmp_path, "calls.csv", rows)
    source = {"format": "csv", "channel": "phone", "timezone": "UTC", "columns": COLUMNS,
              "identifiers": {"contact_id": "contact", "phone": "phone"}, "path": "raw/*.csv"}  # fmt: skip
    cfg = parse_config({"paths": {"lake": "lake"}, "sources": {"calls": source}}, tmp_path)
    assert ingest(cfg, as_of=AS_OF).rows_loaded == 3000
    with warehouse.connection() as con:
        load_lake(con, cfg)
        summary = stitch(con, cfg)
        shared = con.execute(
            "SELECT partner_count FROM identity_map WHERE identifier_kind = 'phone' AND is_shared"
        ).fetchall()
    assert (summary.customer_count, summary.shared_identifier_count) == (3000, 1)
    assert summary.largest_cluster_identifiers == 1
    assert shared == [(3000,)]


BASE = """\
sources:
  web:
    path: raw/*.jsonl
    format: jsonl
    channel: web
    columns: {event_id: id, event_name: event, event_at: ts}
    identifiers: {cookie: anon}
stages:
  - name: visit
  - name: buy
    success: true
"""
BROKEN: dict[str, tuple[str, list[str]]] = {
    "unknown key": (BASE + "funnel:\n  windw_days: 3\n", ["funnel.windw_days", "unknown key"]),
    "value outside the allowed ones": (
        BASE + "funnel:\n  mode: fastest\n", ["funnel.mode", "'furthest' or 'ordered'"]
    ),
    "unknown source format": (
        BASE.replace("format: jsonl", "format: xlsx"),
        ["sources.web.format", "'csv', 'jsonl', 'parquet' or 'xes'"],
    ),
    "identifier kind not known": (
        BASE.replace("{cookie: anon}", "{fax: f}"),
        ["sources.web.identifiers.fax", "'cookie', 'user_id', 'email', 'phone', 'contact_id'"],
    ),
    "wrong type": (BASE + "timeouts:\n  journey_inactivity_days: soon\n",
                   ["timeouts.journey_inactivity_days", "valid number"]),
    "unknown stage in the designed journey": (
        BASE + "designed_journey:\n  transitions: [[visit, pay]]\n",
        ["designed_journey.transitions", "'pay'", "allowed: ['visit', 'buy']"],
    ),
    "no success stage": (BASE.replace("    success: true\n", ""), ["stages", "success: true"]),
    "unknown time zone": (
        BASE.replace("channel: web", "channel: web\n    timezone: Europe/Berln"),
        ["sources.web.timezone", "IANA name"],
    ),
    "not YAML": (BASE + "stages: [\n", ["not valid YAML"]),
    "not a mapping": ("- just\n- a list\n", ["top level must be a mapping"]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_journey_yaml_names_the_key_and_what_is_allowed(tmp_path: Path, name: str) -> None:
    text, parts = BROKEN[name]
    path = tmp_path / "journey.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    for part in parts:
        assert part in message, message


def test_the_unbroken_base_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "journey.yaml"
    path.write_text(BASE, encoding="utf-8")
    assert load_config(path).stage_names == ["visit", "buy"]
    assert os.environ.get("CJM_PII_SALT")  # the suite's salt, set by tests/conftest.py
