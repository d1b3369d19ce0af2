"""The bad-input corpus (tests/data/bad, see its README): every kind of broken input gives a
clear message, the good rows still load, and every row is accounted for."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import rows

from cjm_analytics.identity import stitch

BAD = Path(__file__).resolve().parent.parent / "data" / "bad"
CSV_SOURCE = {
    "format": "csv", "channel": "crm", "timezone": "UTC",
    "columns": {"event_id": "id", "event_name": "event", "event_at": "ts"},
    "identifiers": {"contact_id": "contact", "phone": "phone"}, "properties": ["name"],
}  # fmt: skip
JSONL_SOURCE = {
    "format": "jsonl", "channel": "web",
    "columns": {"event_id": "id", "event_name": "event", "event_at": "ts"},
    "identifiers": {"contact_id": "contact"},
}  # fmt: skip


@dataclass
class Case:
    files: list[str]
    source: dict[str, Any]
    status: str  # of the last file
    counts: tuple[int, int, int] | None  # rows read, loaded, rejected of the last file
    rejects: list[tuple[int, str | None, str]] = field(
        default_factory=list
    )  # row, column, reason part
    message: str | None = None  # part of the file-level message


def csv(**overrides: Any) -> dict[str, Any]:
    return {**CSV_SOURCE, **overrides}


CASES: dict[str, Case] = {
    "truncated csv": Case(["truncated.csv"], csv(), "loaded", (3, 2, 1), [(3, "contact", "missing columns")]),
    "truncated jsonl": Case(["truncated.jsonl"], JSONL_SOURCE, "loaded", (3, 2, 1), [(3, None, "malformed JSON")]),
    "wrong delimiter": Case(["wrong_delimiter.csv"], csv(), "failed", None, message="delimiter ';'"),
    "wrong encoding": Case(["wrong_encoding.csv"], csv(), "loaded", (2, 1, 1), [(2, "name", "invalid encoding")]),
    "byte order mark": Case(["bom.csv"], csv(), "loaded", (2, 2, 0)),
    "header only": Case(["header_only.csv"], csv(), "loaded", (0, 0, 0)),
    "empty file": Case(["empty.csv"], csv(), "empty", (0, 0, 0), message="empty"),
    "missing column": Case(["missing_column.csv"], csv(), "failed", None, message="['ts']"),
    "extra columns": Case(["extra_columns.csv"], csv(), "loaded", (2, 1, 1), [(2, None, "too many columns")]),
    "unparseable timestamp": Case(
        ["unparseable_timestamp.csv"], csv(), "loaded", (2, 1, 1), [(2, "ts", "unparseable timestamp '31/02/2024 25:61'")]
    ),
    "naive timestamp, no zone": Case(
        ["naive_without_zone.csv"], csv(timezone=None), "loaded", (1, 0, 1), [(1, "ts", "sources.bad.timezone")]
    ),
    "future date": Case(["future.csv"], csv(), "loaded", (2, 1, 1), [(2, "ts", "is in the future")]),
    "before the company existed": Case(
        ["before_company.csv"], csv(not_before="2020-01-01"), "loaded", (2, 1, 1), [(2, "ts", "before not_before 2020-01-01")]
    ),
    "duplicate ids in a file": Case(
        ["duplicate_ids.csv"], csv(), "loaded", (3, 2, 1), [(3, "id", "duplicate event id 1 in this file (first at row 1)")]
    ),
    "duplicate ids across files": Case(
        ["duplicate_across_1.csv", "duplicate_across_2.csv"], csv(), "loaded", (2, 1, 1),
        [(1, "id", "already loaded from raw/duplicate_across_1.csv")],
    ),
    "null identifiers": Case(["null_identifiers.csv"], csv(), "loaded", (2, 2, 0)),
    "huge field": Case(["huge_field.csv"], csv(), "loaded", (2, 1, 1), [(2, "event", "value longer than 10000")]),
    "malformed json lines": Case(
        ["malformed.jsonl"], JSONL_SOURCE, "loaded", (4, 1, 3),
        [(2, None, "malformed JSON"), (3, None, "malformed JSON"), (4, None, "malformed JSON")],
    ),
    "array where an object is expected": Case(
        ["array_not_object.jsonl"], JSONL_SOURCE, "loaded", (3, 1, 2),
        [(2, None, "a JSON array where a JSON object is expected"), (3, "contact", "field holds a JSON array")],
    ),
    "parquet with wrong types": Case(
        ["wrong_types.parquet"], {**JSONL_SOURCE, "format": "parquet"}, "failed", None,
        message="column 'ts' has Parquet type int64; expected a timestamp, a date or text",
    ),
    "not a parquet file": Case(
        ["not_parquet.parquet"], {**JSONL_SOURCE, "format": "parquet"}, "failed", None, message="not a readable Parquet file"
    ),
    "non-utf-8 names with the encoding set": Case(
        ["latin1_names.csv"], csv(csv={"encoding": "latin-1"}), "loaded", (2, 2, 0)
    ),
    "bad phone and email": Case(
        ["bad_phone_and_email.csv"],
        csv(identifiers={"contact_id": "contact", "phone": "phone", "email": "email"}, properties=[]),
        "loaded", (3, 0, 3),
        [(1, "phone", "not a phone number"), (2, "email", "not an email address"), (3, "phone", "pii.default_country_code")],
    ),
    "amount not a number": Case(
        ["not_a_number.csv"], csv(columns={**CSV_SOURCE["columns"], "amount": "amount"}, identifiers={"contact_id": "contact"}, properties=[]),
        "loaded", (2, 1, 1), [(2, "amount", "amount '12,50 EUR' is not a number")],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(lake, name):
    case = CASES[name]
    for file in case.files:
        (lake.root / "raw").mkdir(exist_ok=True)
        shutil.copy(BAD / file, lake.root / "raw" / file)
    pattern = "raw/*" + Path(case.files[0]).suffix
    cfg = lake.config({"bad": {**case.source, "path": pattern}})
    results = lake.ingest(cfg).files
    result = results[-1]
    assert result.status == case.status, result.message
    for each in results:
        assert each.rows_read == each.rows_loaded + each.rows_rejected
    if case.message:
        assert case.message in (result.message or "")
    if case.counts is not None:
        assert (result.rows_read, result.rows_loaded, result.rows_rejected) == case.counts
    got = (
        lake.warehouse(cfg)
        .execute(
            "SELECT source_row, column_name, reason FROM ingest_rejects WHERE source_file = ? ORDER BY source_row",
            [result.source_file],
        )
        .fetchall()
    )
    assert [(r, c) for r, c, _ in got] == [(r, c) for r, c, _ in case.rejects]
    for (_, _, reason), (_, _, part) in zip(got, case.rejects, strict=True):
        assert part in reason


def test_non_utf8_names_arrive_intact_with_the_encoding_set(lake):
    shutil.copytree(BAD, lake.root / "raw", dirs_exist_ok=True)
    cfg = lake.config(
        {"bad": {**CSV_SOURCE, "path": "raw/latin1_names.csv", "csv": {"encoding": "latin-1"}}}
    )
    lake.ingest(cfg)
    names = rows(
        lake.warehouse(cfg), "SELECT properties->>'name' FROM stg_events ORDER BY event_id"
    )
    assert names == [("Müller",), ("Sørensen",)]


def test_a_phone_shared_by_hundreds_of_contacts_does_not_explode_identity(lake):
    # 300 contacts call from one switchboard number; it is not listed in the config, so the
    # partner count (300 > 25) has to catch it: 300 customers, not one.
    (lake.root / "raw").mkdir()
    shutil.copy(BAD / "switchboard.csv", lake.root / "raw")
    cfg = lake.config({"bad": {**CSV_SOURCE, "path": "raw/*.csv"}})
    lake.ingest(cfg)
    con = lake.warehouse(cfg)
    summary = stitch(con, cfg)
    assert (
        summary.customer_count,
        summary.shared_identifier_count,
        summary.largest_cluster_identifiers,
    ) == (300, 1, 1)


def test_the_good_files_load_when_others_are_broken(lake):
    shutil.copytree(BAD, lake.root / "raw", dirs_exist_ok=True)
    cfg = lake.config({"bad": {**CSV_SOURCE, "path": "raw/*.csv"}})
    summary = lake.ingest(cfg)
    by_file = {Path(f.source_file).name: f for f in summary.files}
    assert by_file["wrong_delimiter.csv"].status == "failed"
    assert by_file["missing_column.csv"].status == "failed"
    assert all(f.rows_read == f.rows_loaded + f.rows_rejected for f in summary.files)
    con = lake.warehouse(cfg)
    assert rows(con, "SELECT sum(rows_rejected) FROM ingest_files") == rows(
        con, "SELECT count(*) FROM ingest_rejects"
    )
