"""Two files in progress at once (ADR 0124): the next file is read and checked while the one
before it commits. The lake, the manifest and the rejects must be those of one file at a
time, and a failure must leave no later file committed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Lake, rows

from cjm_analytics.ingest import run as ingest_run

WEB = {
    "path": "raw/web/*.jsonl",
    "format": "jsonl",
    "channel": "web",
    "columns": {"event_id": "id", "event_name": "event", "event_at": "ts"},
    "identifiers": {"cookie": "anon", "email": "email"},
}


def jsonl(*records: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def web(event_id: str, hour: int, **extra: object) -> dict[str, object]:
    return {
        "id": event_id,
        "event": "e",
        "ts": f"2024-03-01T{hour:02d}:00:00Z",
        "anon": "c1",
        **extra,
    }


def write_files(lake: Lake) -> None:
    """Files whose outcome depends on the files before them: ids repeated across files, a
    copy of an earlier file's content, an empty file, a file that cannot be read, rows
    with bad values and an id repeated inside one file."""
    lake.write("raw/web/a.jsonl", jsonl(web("w1", 1), web("w2", 2)))
    lake.write("raw/web/b.jsonl", jsonl(web("w2", 3), web("w3", 4), web("w3", 5)))
    lake.write("raw/web/c.jsonl", jsonl(web("w1", 1), web("w2", 2)))  # a.jsonl's content
    lake.write("raw/web/d.jsonl", "")
    lake.write("raw/web/e.jsonl", jsonl(web("w4", 6, email="not an email"), web("w3", 7)))
    lake.write("raw/web/f.jsonl", b"\x1f\x8bnot gzip at all")
    lake.write("raw/web/g.jsonl", jsonl(web("w5", 8), {"id": "w6", "ts": "soon"}) + "{x\n")
    lake.write("raw/crm/a.csv", "")
    lake.write("raw/crm/b.csv", "id,activity,at,contact\nw1,call,2024-03-01T09:00:00Z,k1\n")


CRM = {
    "path": "raw/crm/*.csv",
    "format": "csv",
    "channel": "crm",
    "columns": {"event_id": "id", "event_name": "activity", "event_at": "at"},
    "identifiers": {"contact_id": "contact"},
}


def outcome(lake: Lake) -> dict[str, Any]:
    cfg = lake.config({"web": WEB, "crm": CRM})
    summary = lake.ingest(cfg)
    con = lake.warehouse(cfg)
    return {
        "files": [
            (f.source_file, f.status, f.rows_read, f.rows_loaded, f.rows_rejected, f.message)
            for f in summary.files
        ],
        "manifest": rows(
            con,
            "SELECT source_file, status, rows_read, rows_loaded, rows_rejected "
            "FROM ingest_files ORDER BY loaded_at, source_file",
        ),
        "rejects": rows(
            con,
            "SELECT source_file, source_row, column_name, reason FROM ingest_rejects ORDER BY ALL",
        ),
        "events": rows(con, "SELECT * EXCLUDE (properties) FROM stg_events ORDER BY ALL"),
    }


@pytest.mark.parametrize("workers", [2, 3])
def test_files_in_parallel_give_what_one_at_a_time_gives(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    one_at_a_time = Lake(tmp_path / "serial")
    write_files(one_at_a_time)
    monkeypatch.setattr(ingest_run, "INGEST_WORKERS", 1)
    expected = outcome(one_at_a_time)

    parallel = Lake(tmp_path / "parallel")
    write_files(parallel)
    monkeypatch.setattr(ingest_run, "INGEST_WORKERS", workers)
    assert outcome(parallel) == expected

    files = {f[0]: f for f in expected["files"]}
    assert files["raw/web/b.jsonl"][2:5] == (3, 1, 2)  # w2 loaded by a.jsonl; w3 twice
    assert files["raw/web/c.jsonl"][1] == "skipped"
    assert files["raw/web/c.jsonl"][5] == "same content as raw/web/a.jsonl"
    assert files["raw/web/d.jsonl"][1:5] == ("loaded", 0, 0, 0)
    assert files["raw/crm/a.csv"][1] == "empty"
    assert files["raw/crm/b.csv"][1:5] == ("loaded", 1, 1, 0)
    assert files["raw/web/f.jsonl"][1] == "failed"
    assert ("raw/web/e.jsonl", 2, "id", "duplicate event id w3: already loaded from "
            "raw/web/b.jsonl") in [r[:4] for r in expected["rejects"]]  # fmt: skip


def test_an_unexpected_failure_commits_no_later_file(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(lake)
    commit = ingest_run._commit

    def failing_commit(con: Any, cfg: Any, raw: Any, ctx: Any, *rest: Any) -> Any:
        if ctx.source_file == "raw/web/b.jsonl":
            raise RuntimeError("disk gone")
        return commit(con, cfg, raw, ctx, *rest)

    monkeypatch.setattr(ingest_run, "_commit", failing_commit)
    cfg = lake.config({"web": WEB})
    with pytest.raises(RuntimeError, match="disk gone"):
        lake.ingest(cfg)
    con = lake.warehouse(cfg)
    assert rows(con, "SELECT source_file FROM ingest_files") == [("raw/web/a.jsonl",)]
    monkeypatch.setattr(ingest_run, "_commit", commit)
    # the next run finishes the rest, as one run would have
    statuses = {f.source_file: f.status for f in lake.ingest(cfg).files}
    assert statuses["raw/web/a.jsonl"] == "skipped"
    assert statuses["raw/web/b.jsonl"] == statuses["raw/web/e.jsonl"] == "loaded"
