"""The CLI commands of the nightly area on a real published warehouse: query, report,
doctor, run's argument checks, and help text for every command and option."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from _tiny_night import TinyNights, tiny_nights
from typer.testing import CliRunner, Result

from cjm_analytics.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def nights() -> TinyNights:
    return tiny_nights()


def cjm(*args: str, **kwargs: object) -> Result:
    return runner.invoke(app, list(args), **kwargs)  # type: ignore[arg-type]


def test_query_prints_rows_of_the_published_warehouse(nights: TinyNights) -> None:
    config = str(nights.config_path)
    outcome = cjm(
        "query", "SELECT stage, reached_count FROM stage_funnel ORDER BY stage_order", "-c", config
    )
    assert outcome.exit_code == 0, outcome.output
    assert "awareness" in outcome.output and "advocacy" in outcome.output
    limited = cjm("query", "SELECT * FROM range(5)", "-c", config, "--max-rows", "2")
    assert "3 more rows not shown" in limited.output


def test_query_is_read_only_and_explains_failures(nights: TinyNights, tmp_path: Path) -> None:
    write = cjm("query", "CREATE TABLE mine AS SELECT 1", "-c", str(nights.config_path))
    assert write.exit_code == 2
    assert "read-only" in write.output.lower()
    missing_config = tmp_path / "journey.yaml"
    missing_config.write_text((nights.config_path).read_text(encoding="utf-8"), encoding="utf-8")
    nothing = cjm("query", "SELECT 1", "-c", str(missing_config))
    assert nothing.exit_code == 2
    assert "no published warehouse" in nothing.output


def test_report_rebuilds_from_the_published_warehouse(nights: TinyNights, tmp_path: Path) -> None:
    outcome = cjm("report", "-c", str(nights.config_path), "--out", str(tmp_path / "again"))
    assert outcome.exit_code == 0, outcome.output
    index = tmp_path / "again" / "index.html"
    assert index.is_file()
    text = index.read_text(encoding="utf-8")
    assert "Recent runs" in text  # the published file carries the run history
    assert nights.second.record.run_id in text


def test_doctor_says_what_to_fix(nights: TinyNights) -> None:
    healthy = cjm("doctor", "-c", str(nights.config_path))
    assert "ok   config" in healthy.output
    unsalted = cjm("doctor", "-c", str(nights.config_path), env={"CJM_PII_SALT": ""})
    assert unsalted.exit_code == 1
    assert "FIX  PII salt" in unsalted.output and "CJM_PII_SALT" in unsalted.output
    broken = cjm("doctor", "-c", "/nonexistent/journey.yaml")
    assert broken.exit_code == 1 and "config file not found" in broken.output


def test_run_rejects_a_bad_as_of(nights: TinyNights) -> None:
    outcome = cjm("run", "-c", str(nights.config_path), "--as-of", "yesterday-ish")
    assert outcome.exit_code == 2
    assert "not an ISO time" in outcome.output


def test_every_command_and_option_has_help() -> None:
    group = typer.main.get_command(app)
    assert group.commands  # type: ignore[attr-defined]
    undocumented = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if not (command.help or "").strip():
            undocumented.append(name)
        undocumented += [
            f"{name} {param.name}"
            for param in command.params
            if param.param_type_name == "option" and not (getattr(param, "help", "") or "").strip()
        ]
    assert undocumented == []
