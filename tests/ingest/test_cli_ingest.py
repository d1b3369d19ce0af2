"""`cjm ingest --config PATH` prints rows read/loaded/rejected per file and the reasons."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from cjm_analytics.cli import app


def test_cli_ingest_prints_counts_and_reasons(lake):
    lake.write("raw/a.csv", "id,event,ts,contact\n1,a,2024-01-01T00:00:00Z,k1\n2,b,not-a-time,k2\n")
    source = {
        "path": "raw/*.csv", "format": "csv", "channel": "crm",
        "columns": {"event_id": "id", "event_name": "event", "event_at": "ts"},
        "identifiers": {"contact_id": "contact"},
    }  # fmt: skip
    config = lake.write(
        "journey.yaml", yaml.safe_dump({"paths": {"lake": "lake"}, "sources": {"crm": source}})
    )
    result = CliRunner().invoke(app, ["ingest", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "raw/a.csv" in result.output
    assert "2 rows read, 1 loaded, 1 rejected; 0 file(s) failed" in result.output
    assert "unparseable timestamp" in result.output


def test_cli_ingest_exits_non_zero_when_a_file_fails(lake):
    lake.write("raw/a.csv", "id;event;ts;contact\n1;a;2024-01-01T00:00:00Z;k1\n")
    source = {
        "path": "raw/*.csv", "format": "csv", "channel": "crm",
        "columns": {"event_id": "id", "event_name": "event", "event_at": "ts"},
        "identifiers": {"contact_id": "contact"},
    }  # fmt: skip
    config = lake.write(
        "journey.yaml", yaml.safe_dump({"paths": {"lake": "lake"}, "sources": {"crm": source}})
    )
    result = CliRunner().invoke(app, ["ingest", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "delimiter" in result.output
