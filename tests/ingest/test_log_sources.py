"""Source options real event logs need: gzip CSV, repeated records, long spans, `on:` in YAML.

Each was found by running a real log from ../shared/data/real through its example config
(see tests/real/); the cases here are small and hand-built.
"""

from __future__ import annotations

import gzip
from datetime import date, timedelta

import yaml
from conftest import rows

from cjm_analytics.config import parse_config

LOG = {
    "path": "raw/*.csv*", "format": "csv", "channel": "crm", "timezone": "UTC",
    "columns": {"event_name": "activity", "event_at": "at"},
    "identifiers": {"case": "case"},
}  # fmt: skip


def test_gzip_csv_is_read_like_plain_csv(lake):
    lake.write("raw/log.csv.gz", gzip.compress(b"case,activity,at\nc1,open,2024-01-01 10:00:00\n"))
    cfg = lake.config({"log": LOG})
    (result,) = lake.ingest(cfg).files
    assert (result.status, result.rows_loaded) == ("loaded", 1)
    assert rows(lake.warehouse(cfg), "SELECT case_id, event_name FROM stg_events") == [
        ("c1", "open")
    ]


def test_gzip_jsonl_is_read_like_plain_jsonl_and_a_broken_one_is_named(lake):
    web = {"path": "raw/*.jsonl*", "format": "jsonl", "channel": "web",
           "columns": {"event_name": "e", "event_at": "at"}, "identifiers": {"cookie": "c"}}  # fmt: skip
    body = b'{"e": "open", "at": "2024-01-01T10:00:00Z", "c": "k1"}\n{"e": "close"\n'
    lake.write("raw/a.jsonl.gz", gzip.compress(body))
    cfg = lake.config({"web": web})
    (result,) = lake.ingest(cfg).files
    # the same rows as the plain file: one loaded, the truncated line rejected with its reason
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_rejected) == (
        "loaded", 2, 1, 1,
    )  # fmt: skip
    assert rows(lake.warehouse(cfg), "SELECT cookie_id, event_name FROM stg_events") == [
        ("k1", "open")
    ]
    lake.write("raw/b.jsonl.gz", gzip.compress(body)[:-9])  # cut off: no gzip trailer
    failed = [f for f in lake.ingest(lake.config({"web": web})).files if f.status == "failed"]
    assert [f.source_file.rsplit("/", 1)[-1] for f in failed] == ["b.jsonl.gz"]
    assert "starts like a gzip file but cannot be decompressed" in (failed[0].message or "")


def test_identical_records_without_an_id_column_are_separate_events(lake):
    # rows 2 and 3 are the same record: an event log repeating an activity in one second
    # (helpdesk: 127 such pairs). Both are events; the second gets the id suffix ".2".
    text = (
        "case,activity,at\n"
        "c1,resolve,2024-01-01 10:00:00\n"
        "c1,close,2024-01-01 11:00:00\n"
        "c1,close,2024-01-01 11:00:00\n"
    )
    lake.write("raw/a.csv", text)
    cfg = lake.config({"log": LOG})
    (result,) = lake.ingest(cfg).files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 3, 0)
    ids = [
        r[0]
        for r in rows(lake.warehouse(cfg), "SELECT event_id FROM stg_events ORDER BY source_row")
    ]
    assert len(set(ids)) == 3 and ids[2] == ids[1] + ".2"


def test_a_record_delivered_again_in_another_file_is_still_a_duplicate(lake):
    lake.write("raw/a.csv", "case,activity,at\nc1,close,2024-01-01 11:00:00\n")
    lake.write(
        "raw/b.csv", "case,activity,at\nc1,close,2024-01-01 11:00:00\nc2,open,2024-01-02 09:00:00\n"
    )
    cfg = lake.config({"log": LOG})
    _first, second = lake.ingest(cfg).files
    # b.csv: its first row is a.csv's record again (same first-copy id) -> rejected
    assert (second.rows_read, second.rows_loaded, second.rows_rejected) == (2, 1, 1)
    assert rows(lake.warehouse(cfg), "SELECT count(*) FROM stg_events") == [(2,)]


def test_a_log_spanning_more_than_1024_days_is_written(lake):
    # one Parquet partition per event date; Arrow refuses more than 1024 by default
    start = date(2010, 1, 1)
    lines = [f"c{i},open,{start + timedelta(days=i)} 10:00:00" for i in range(1100)]
    lake.write("raw/a.csv", "case,activity,at\n" + "\n".join(lines) + "\n")
    cfg = lake.config({"log": LOG})
    (result,) = lake.ingest(cfg).files
    assert (result.status, result.events_loaded) == ("loaded", 1100)


def test_join_on_key_survives_yaml_reading_on_as_true(tmp_path):
    # YAML 1.1: a bare `on:` key is the boolean true
    source = yaml.safe_load(
        "path: a.csv\nformat: csv\nchannel: crm\njoin: {path: b.csv, on: [lead]}\n"
        "columns: {event_name: e, event_at: t}\nidentifiers: {case: lead}\n"
    )
    assert True in source["join"]
    cfg = parse_config({"sources": {"leads": source}}, tmp_path)
    assert cfg.sources["leads"].join.on == ["lead"]
