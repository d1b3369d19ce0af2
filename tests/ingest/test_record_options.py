"""Source options for records that hold several events (ADR 0063, 0064): identifiers and
times built from several columns, times of day that wrap at midnight, a record's events in
their listed order, a JSON list exploded into events, Unix epoch times."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import rows

from cjm_analytics.config import parse_config
from cjm_analytics.errors import ConfigError

#: a call-center table: a date column and times of day; 0:00:00 marks a step not taken
CALLS = {
    "path": "raw/calls/*.csv", "format": "csv", "channel": "phone", "timezone": "UTC",
    "identifiers": {"case": ["date", "line", "call"]}, "identifier_separator": "_",
    "events": [
        {"name": "entered", "at": ["date", "entry"]},
        {"name": "queued", "at": ["date", "queue"], "when": [{"column": "queue", "not_in": ["0:00:00"]}]},
        {"name": "answered", "at": ["date", "answer"]},
    ],
}  # fmt: skip
CALL_ROWS = (
    "date,line,call,entry,queue,answer\n"
    "2024-01-01,L1,7,10:00:05,10:00:10,10:00:09\n"  # answered 1 s before the queue time
    "2024-01-01,L2,7,23:59:50,0:00:00,0:00:20\n"  # not queued; answered after midnight
    "2024-01-01,,8,11:00:00,0:00:00,11:01:00\n"  # no line: no case id (the event still loads)
)


def _events(con) -> list[tuple]:
    return rows(
        con,
        "SELECT case_id, event_name, event_at, source_row, source_event_seq FROM stg_events "
        "ORDER BY source_row, source_event_seq",
    )


def test_times_as_recorded_by_default_and_ties_keep_the_listed_order(lake):
    lake.write("raw/calls/a.csv", CALL_ROWS)
    cfg = lake.config({"calls": CALLS})
    (result,) = lake.ingest(cfg).files
    # 3 rows; 3 + 2 + 2 events (queued only on row 1)
    assert (result.rows_read, result.rows_loaded, result.rows_rejected, result.events_loaded) == (
        3, 3, 0, 7,
    )  # fmt: skip
    d = datetime
    assert _events(lake.warehouse(cfg)) == [
        ("2024-01-01_L1_7", "entered", d(2024, 1, 1, 10, 0, 5), 1, 1),
        ("2024-01-01_L1_7", "queued", d(2024, 1, 1, 10, 0, 10), 1, 2),
        ("2024-01-01_L1_7", "answered", d(2024, 1, 1, 10, 0, 9), 1, 3),  # as recorded
        ("2024-01-01_L2_7", "entered", d(2024, 1, 1, 23, 59, 50), 2, 1),
        ("2024-01-01_L2_7", "answered", d(2024, 1, 1, 0, 0, 20), 2, 3),  # the row's date
        (None, "entered", d(2024, 1, 1, 11, 0), 3, 1),
        (None, "answered", d(2024, 1, 1, 11, 1), 3, 3),
    ]


def test_day_wraps_and_listed_order_make_a_calls_clock_agree(lake):
    lake.write("raw/calls/a.csv", CALL_ROWS)
    cfg = lake.config({"calls": {**CALLS, "day_wraps": True, "record_order": "as_listed"}})
    lake.ingest(cfg)
    got = [(r[1], r[2]) for r in _events(lake.warehouse(cfg))[:5]]
    d = datetime
    assert got == [
        ("entered", d(2024, 1, 1, 10, 0, 5)),
        ("queued", d(2024, 1, 1, 10, 0, 10)),
        ("answered", d(2024, 1, 1, 10, 0, 10)),  # raised to the queue time (was 10:00:09)
        ("entered", d(2024, 1, 1, 23, 59, 50)),
        ("answered", d(2024, 1, 2, 0, 0, 20)),  # 23 h 59 min before entry: the next day
    ]


def test_a_small_step_back_is_not_a_day_wrap(lake):
    # exit 87 s before entry (a clock error, not midnight): same day, raised to the entry
    lake.write(
        "raw/calls/a.csv",
        "date,line,call,entry,queue,answer\n2024-01-01,L1,1,12:04:42,0:00:00,12:03:15\n",
    )
    cfg = lake.config({"calls": {**CALLS, "day_wraps": True, "record_order": "as_listed"}})
    lake.ingest(cfg)
    assert [r[2] for r in _events(lake.warehouse(cfg))] == [datetime(2024, 1, 1, 12, 4, 42)] * 2


def test_a_list_of_objects_per_line_becomes_one_event_per_element(lake):
    lines = [
        {"session": 1, "events": [
            {"aid": 5, "ts": 1659304800025, "type": "clicks"},
            {"aid": 6, "ts": 1659304800025, "type": "orders"},  # same ms: list order breaks the tie
        ]},
        {"session": 2, "events": []},  # no events: rejected, not lost
        {"session": 3, "events": [{"aid": 5, "ts": 1659304800025, "type": "clicks"}, 7]},
        {"session": 4, "events": [{"aid": 5, "ts": "soon", "type": "clicks"}]},
        {"session": 5, "events": {"aid": 1}},
        {"session": 6, "events": [{"aid": 9, "ts": 1659304801000, "type": "carts", "session": 60}]},
    ]  # fmt: skip
    lake.write("raw/web/a.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    web = {
        "path": "raw/web/*.jsonl", "format": "jsonl", "channel": "web", "explode": "events",
        "timestamp_format": "epoch_ms", "columns": {"event_name": "type", "event_at": "ts"},
        "identifiers": {"case": "session"}, "properties": ["aid"],
    }  # fmt: skip
    cfg = lake.config({"web": web})
    (result,) = lake.ingest(cfg).files
    # accounting by line: 6 read = 2 loaded (lines 1, 6) + 4 rejected; 3 events
    assert (result.rows_read, result.rows_loaded, result.rows_rejected, result.events_loaded) == (
        6, 2, 4, 3,
    )  # fmt: skip
    con = lake.warehouse(cfg)
    got = rows(
        con,
        "SELECT case_id, event_name, event_at, properties->>'aid', source_row, source_event_seq, "
        "event_id FROM stg_events ORDER BY source_row, source_event_seq",
    )
    at = datetime(2022, 7, 31, 22, 0, 0, 25000)  # 1659304800025 ms after 1970-01-01 UTC
    assert [g[:6] for g in got] == [
        ("1", "clicks", at, "5", 1, 1),
        ("1", "orders", at, "6", 1, 2),
        ("60", "carts", datetime(2022, 7, 31, 22, 0, 1), "9", 6, 1),  # the element's key wins
    ]
    assert got[0][6].endswith(":1") and got[1][6] == got[0][6][:-1] + "2"
    rejects = rows(con, "SELECT source_row, reason FROM ingest_rejects ORDER BY 1")
    assert [r[0] for r in rejects] == [2, 3, 4, 5]
    assert rejects[0][1] == "key events holds an empty list: no events"
    assert rejects[1][1].startswith("list element 2 is a JSON ")
    assert rejects[2][1].startswith("list element 1: unparseable timestamp 'soon'")
    assert rejects[3][1] == "key events holds a JSON object; expected a list of objects"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20)),
        ("1700000000.5", datetime(2023, 11, 14, 22, 13, 20, 500000)),
        ("-1", datetime(1969, 12, 31, 23, 59, 59)),
        ("12:00", None),  # not a number: rejected
    ],
)
def test_epoch_seconds(lake, text, expected):
    lake.write("raw/a.csv", f"case,activity,at\nc1,open,{text}\n")
    log = {
        "path": "raw/*.csv", "format": "csv", "channel": "crm", "timestamp_format": "epoch_s",
        "columns": {"event_name": "activity", "event_at": "at"}, "identifiers": {"case": "case"},
    }  # fmt: skip
    cfg = lake.config({"log": log})
    lake.ingest(cfg)
    got = rows(lake.warehouse(cfg), "SELECT event_at FROM stg_events")
    assert got == ([(expected,)] if expected else [])


def test_a_plain_row_is_event_zero_of_its_row(lake):
    lake.write("raw/a.csv", "case,activity,at\nc1,open,2024-01-01 10:00:00\n")
    log = {
        "path": "raw/*.csv", "format": "csv", "channel": "crm", "timezone": "UTC",
        "columns": {"event_name": "activity", "event_at": "at"}, "identifiers": {"case": "case"},
    }  # fmt: skip
    cfg = lake.config({"log": log})
    lake.ingest(cfg)
    assert rows(lake.warehouse(cfg), "SELECT source_row, source_event_seq FROM stg_events") == [
        (1, 0)
    ]


def test_explode_is_for_json_lines_only(tmp_path):
    source = {
        "path": "a.csv", "format": "csv", "channel": "web", "explode": "events",
        "columns": {"event_name": "e", "event_at": "t"}, "identifiers": {"case": "c"},
    }  # fmt: skip
    with pytest.raises(ConfigError, match="explode"):
        parse_config({"sources": {"web": source}}, tmp_path)


CASE_LOG = {
    "path": "raw/*.csv", "format": "csv", "channel": "crm", "timezone": "UTC",
    "columns": {"event_name": "activity", "event_at": "at"}, "identifiers": {"case": "case"},
}  # fmt: skip


def _written_before_source_event_seq(parts: list[Path]) -> None:
    """Rewrite lake parts as a version before ADR 0063 wrote them."""
    assert parts
    for part in parts:
        pq.write_table(pq.read_table(part).drop_columns(["source_event_seq"]), part)


def test_a_lake_written_before_source_event_seq_still_loads(lake):
    lake.write("raw/a.csv", "case,activity,at\nc1,open,2024-01-01 10:00:00\n")
    cfg = lake.config({"log": CASE_LOG})
    lake.ingest(cfg)
    _written_before_source_event_seq(list(cfg.lake_dir.rglob("*.parquet")))
    got = rows(
        lake.warehouse(cfg), "SELECT event_name, source_row, source_event_seq FROM stg_events"
    )
    assert got == [("open", 1, None)]


def test_a_lake_of_old_and_new_files_reads_each_files_columns(lake):
    # load_lake reads the stored columns from one part per input file: an old file's parts
    # lack source_event_seq, a new file's have it, and both must be read
    lake.write(
        "raw/a.csv", "case,activity,at\nc1,open,2024-01-01 10:00:00\nc1,x,2024-01-02 10:00:00\n"
    )
    cfg = lake.config({"log": CASE_LOG})
    lake.ingest(cfg)
    old_parts = list(cfg.lake_dir.rglob("*.parquet"))
    assert len(old_parts) == 2  # one per event date
    _written_before_source_event_seq(old_parts)
    lake.write(
        "raw/b.csv", "case,activity,at\nc2,open,2024-01-03 10:00:00\nc2,y,2024-01-04 10:00:00\n"
    )
    lake.ingest(cfg)
    got = rows(
        lake.warehouse(cfg),
        "SELECT event_name, source_event_seq FROM stg_events ORDER BY event_at",
    )
    assert got == [("open", None), ("x", None), ("open", 0), ("y", 0)]


def test_exploded_elements_can_be_wide_records_too(lake):
    # each element (a ticket step) gives two events; seq = (element - 1) * 2 + event place
    line = {"case": "t1", "steps": [
        {"opened": "2024-01-01T09:00:00Z", "closed": "2024-01-01T09:30:00Z"},
        {"opened": "2024-01-01T10:00:00Z", "closed": "2024-01-01T10:00:00Z"},
    ]}  # fmt: skip
    lake.write("raw/t/a.jsonl", json.dumps(line) + "\n")
    tickets = {
        "path": "raw/t/*.jsonl", "format": "jsonl", "channel": "crm", "explode": "steps",
        "identifiers": {"case": "case"},
        "events": [{"name": "opened", "at": "opened"}, {"name": "closed", "at": "closed"}],
    }  # fmt: skip
    cfg = lake.config({"t": tickets})
    (result,) = lake.ingest(cfg).files
    assert (result.rows_read, result.rows_loaded, result.events_loaded) == (1, 1, 4)
    got = rows(
        lake.warehouse(cfg),
        "SELECT event_name, source_event_seq, event_id FROM stg_events ORDER BY source_event_seq",
    )
    assert [g[:2] for g in got] == [("opened", 1), ("closed", 2), ("opened", 3), ("closed", 4)]
    assert len({g[2] for g in got}) == 4
