"""The generated files: deterministic, shaped as data/demo/journey.yaml maps them, and
their dirty rows counted correctly in truth.json (counted here independently)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cjm_analytics import warehouse
from cjm_analytics.cli import app
from cjm_analytics.config import load_config
from cjm_analytics.errors import CjmError
from cjm_analytics.synthetic import generate
from cjm_analytics.synthetic.timetext import timestamp_text

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "data" / "demo" / "journey.yaml"
BERLIN = ZoneInfo("Europe/Berlin")


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate(tmp_path / name, customers=300, seed=seed, days=60)
    first, second, other = (_files(tmp_path / n) for n in "abc")
    assert first == second
    assert first.keys() >= {"truth.json", "truth_customers.parquet", "truth_identifiers.parquet"}
    assert first["truth.json"] != other["truth.json"]


def test_demo_config_loads_and_its_globs_find_every_source(company: Path) -> None:
    config = load_config(CONFIG)
    for name, source in config.sources.items():
        matched = sorted(company.glob(source.path))
        assert len(matched) >= 2, f"{name}: {source.path} matched {matched}"


def test_csv_sources_parse_with_the_configs_dialect(company: Path, truth: dict) -> None:
    config = load_config(CONFIG)
    with warehouse.connection() as con:
        for name in ("crm", "calls"):
            source = config.sources[name]
            dialect = source.csv
            header = (
                (company / next(iter(truth["files"].keys() & _paths(truth, name))))
                .read_text()
                .splitlines()[0]
            )
            columns = header.split(dialect.delimiter)
            rows = con.execute(
                "select count(*) from read_csv(?, delim = ?, quote = ?, header = ?, auto_detect = false, "
                "columns = ?, strict_mode = true)",
                [str(company / source.path), dialect.delimiter, dialect.quote, dialect.header,
                 dict.fromkeys(columns, "VARCHAR")],
            ).fetchone()[0]  # fmt: skip
            assert rows == truth["row_counts"][name]
            mapped = {*source.columns.values(), *source.identifiers.values(), *source.properties}
            mapped |= {e.at for e in source.events} | {
                c.column for e in source.events for c in e.when
            }
            mapped |= {v for e in source.events for v in e.properties.values()}
            assert mapped <= set(columns), f"{name}: mapped columns missing from the header"


def _paths(truth: dict, source: str) -> set[str]:
    return {p for p in truth["files"] if p.startswith(f"raw/{source}/")}


def _web_lines(company: Path) -> list[str]:
    return [
        line for p in sorted(company.glob("raw/web/*.jsonl")) for line in p.read_text().splitlines()
    ]


def _json_or_none(line: str) -> dict | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def test_web_lines_are_json_with_the_mapped_keys_except_the_planted_malformed(
    company: Path, truth: dict
) -> None:
    source = load_config(CONFIG).sources["web"]
    parsed = [_json_or_none(line) for line in _web_lines(company)]
    assert sum(p is None for p in parsed) == truth["dirty"]["web"]["malformed_json"] > 0
    mapped = {*source.columns.values(), *source.identifiers.values(), *source.properties}
    assert all(mapped <= p.keys() for p in parsed if p is not None)
    assert all(
        p["url"].startswith("https://www.voltstore.example/") for p in parsed if p is not None
    )


def _dirty_kinds(rows: list[dict], id_key: str, time_key: str, ids: tuple[str, ...],
                 parse: callable, as_of: datetime) -> dict[str, int]:  # fmt: skip
    """Count dirty rows by kind, from the rows alone."""
    counts = {"duplicate": 0, "broken_timestamp": 0, "missing_ids": 0, "future_date": 0}
    seen: set[str] = set()
    for row in rows:
        if row[id_key] in seen:
            counts["duplicate"] += 1
            continue
        seen.add(row[id_key])
        moment = parse(row[time_key])
        if moment is None:
            counts["broken_timestamp"] += 1
        elif moment >= as_of:
            counts["future_date"] += 1
        elif not any(row[i] for i in ids):
            counts["missing_ids"] += 1
    return counts


def _iso(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _naive(zone: ZoneInfo | None):
    def parse(text: str) -> datetime | None:
        try:
            moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        return moment.replace(tzinfo=zone or UTC)

    return parse


def test_dirty_rows_in_the_files_match_truth_counts(company: Path, truth: dict) -> None:
    as_of = datetime.fromisoformat(truth["as_of"]).replace(tzinfo=UTC)
    web = [p for p in map(_json_or_none, _web_lines(company)) if p is not None]
    crm = [r for p in sorted(company.glob("raw/crm/*.csv")) for r in csv.DictReader(p.open())]
    calls = [
        r
        for p in sorted(company.glob("raw/calls/*.csv"))
        for r in csv.DictReader(p.open(), delimiter=";")
    ]
    counted = {
        "web": _dirty_kinds(web, "event_id", "timestamp", ("anonymous_id", "user_id", "email"), _iso, as_of),
        "crm": _dirty_kinds(crm, "record_id", "occurred_at", ("contact_id", "email", "phone", "web_user_id"),
                            _naive(BERLIN), as_of),
        "calls": _dirty_kinds(calls, "call_id", "queued_at", ("caller_phone",), _naive(None), as_of),
    }  # fmt: skip
    counted["web"]["malformed_json"] = truth["dirty"]["web"]["malformed_json"]  # checked above
    assert counted == truth["dirty"]
    assert all(n > 0 for kinds in truth["dirty"].values() for n in kinds.values())
    assert truth["row_counts"] == {
        "web": len(_web_lines(company)),
        "crm": len(crm),
        "calls": len(calls),
    }


def test_timestamps_carry_berlin_offsets_and_calls_use_the_switchboard(company: Path) -> None:
    text = "".join(p.read_text() for p in company.glob("raw/web/*.jsonl"))
    assert "+01:00" in text and "+02:00" in text  # the period spans the March DST change
    calls = "".join(p.read_text() for p in company.glob("raw/calls/*.csv"))
    assert load_config(CONFIG).identity.shared_identifiers["phone"][0] in calls


def test_cli_generate_writes_and_rejects_an_unknown_constraint(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app,
        ["generate", "--customers", "50", "--seed", "1", "--out", str(tmp_path), "--days", "30"],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "truth.json").is_file()
    bad = runner.invoke(
        app, ["generate", "--out", str(tmp_path), "--constraint", "purchase->retention"]
    )
    assert bad.exit_code == 2
    assert "intent->purchase" in bad.output


def test_generate_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(CjmError, match="customers must be >= 1"):
        generate(tmp_path, customers=0, seed=1)


def test_timestamp_text_matches_strftime_across_the_dst_changes() -> None:
    # 2026-03-29 01:00 UTC and 2026-10-25 01:00 UTC are Berlin's DST changes: a second
    # before and at each, plus ordinary times, in both display styles
    moments = [datetime(2026, 3, 29, 0, 59, 59, 999000), datetime(2026, 3, 29, 1), datetime(2026, 10, 25, 0, 59, 59),
               datetime(2026, 10, 25, 1), datetime(2026, 1, 1, 23, 5, 7, 45000)]  # fmt: skip
    at_us = np.array([int(m.replace(tzinfo=UTC).timestamp() * 1_000_000) for m in moments])
    web = timestamp_text(at_us, "Europe/Berlin", sep="T", millis=True, with_offset=True).to_list()
    assert web == [
        m.replace(tzinfo=UTC).astimezone(BERLIN).isoformat(timespec="milliseconds") for m in moments
    ]
    naive = timestamp_text(at_us, None, sep=" ", millis=False, with_offset=False).to_list()
    assert naive == [m.strftime("%Y-%m-%d %H:%M:%S") for m in moments]


def test_identifier_truth_covers_every_identifier_in_the_files_once(
    company: Path, truth: dict
) -> None:
    identifiers = pl.read_parquet(company / "truth_identifiers.parquet")
    assert identifiers.select("identifier_kind", "identifier_value").is_duplicated().sum() == 0
    known = set(identifiers.select("identifier_kind", "identifier_value").iter_rows())
    crm = [r for p in sorted(company.glob("raw/crm/*.csv")) for r in csv.DictReader(p.open())]
    calls = [
        r
        for p in sorted(company.glob("raw/calls/*.csv"))
        for r in csv.DictReader(p.open(), delimiter=";")
    ]
    web = [p for p in map(_json_or_none, _web_lines(company)) if p is not None]
    found = {("cookie", r["anonymous_id"]) for r in web} | {("user_id", r["user_id"]) for r in web}
    found |= {("email", r["email"]) for r in web} | {("contact_id", r["contact_id"]) for r in crm}
    found |= {("email", r["email"]) for r in crm} | {("user_id", r["web_user_id"]) for r in crm}
    found |= {("phone", r["phone"]) for r in crm} | {("phone", r["caller_phone"]) for r in calls}
    shared = ("phone", "+49 30 1234 5000")
    found = {(kind, value) for kind, value in found if value}
    assert shared in found and shared not in known
    assert found - {shared} <= known
    # the rest sit only in the planted malformed lines (at most 3 identifiers per line)
    assert len(known - found) <= 3 * truth["dirty"]["web"]["malformed_json"]


def test_a_tiny_company_still_writes_a_consistent_truth(tmp_path: Path) -> None:
    # one customer over a week: possibly no rows at all, but truth.json and both Parquet files exist
    summary = generate(tmp_path / "tiny", customers=1, seed=1, days=7)
    truth = json.loads(summary.truth_path.read_text())
    assert truth["row_counts"] == summary.row_counts
    assert sum(truth["files"].values()) == sum(summary.row_counts.values())
    assert (tmp_path / "tiny" / "truth_identifiers.parquet").is_file()
