"""Each source kind and mapping option, on hand-built mini logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import rows

WEB = {
    "path": "raw/web/*.jsonl",
    "format": "jsonl",
    "channel": "web",
    "columns": {"event_id": "id", "event_name": "event", "event_at": "ts", "page_url": "url"},
    "identifiers": {"cookie": "anon", "user_id": "user", "email": "email"},
    "properties": ["category"],
}


def jsonl(*records: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_jsonl_events_land_in_utc_with_hashed_email(lake):
    lake.write(
        "raw/web/a.jsonl",
        jsonl(
            {
                "id": "w1",
                "event": "page_view",
                "ts": "2024-03-01T10:00:00+01:00",
                "anon": "c1",
                "url": "/x",
                "category": "tv",
            },
            {
                "id": "w2",
                "event": "login",
                "ts": "2024-03-01T10:05:00Z",
                "anon": "c1",
                "user": "u1",
                "email": " Ann@Example.COM ",
            },
        ),
    )
    cfg = lake.config({"web": WEB})
    summary = lake.ingest(cfg)
    assert [(f.rows_read, f.rows_loaded, f.rows_rejected) for f in summary.files] == [(2, 2, 0)]
    con = lake.warehouse(cfg)
    got = rows(
        con,
        "SELECT event_id, event_at, channel, cookie_id, user_id, properties->>'category', source_row FROM stg_events ORDER BY event_id",
    )
    # +01:00 -> 09:00 UTC; Z stays 10:05
    assert got == [
        ("w1", datetime(2024, 3, 1, 9, 0), "web", "c1", None, "tv", 1),
        ("w2", datetime(2024, 3, 1, 10, 5), "web", "c1", "u1", None, 2),
    ]
    from cjm_analytics.pii import pseudonymize

    (email_hash,) = rows(con, "SELECT email_hash FROM stg_events WHERE event_id = 'w2'")[0]
    assert email_hash == pseudonymize("email", "ann@example.com", cfg.pii_salt())
    assert "example" not in json.dumps(rows(con, "SELECT * FROM stg_events"), default=str).lower()


def test_csv_dialect_naive_local_time_and_dst(lake):
    # Berlin: 2024-03-31 02:00 -> 03:00 (02:30 does not exist); 2024-10-27 03:00 -> 02:00.
    lake.write(
        "raw/crm/a.csv",
        "rid;what;at;contact\n"
        "r1;order;2024-03-31 01:30:00;k1\n"  # CET +1 -> 00:30 UTC
        "r2;order;2024-03-31 03:30:00;k1\n"  # CEST +2 -> 01:30 UTC
        "r3;order;2024-03-31 02:30:00;k1\n"  # in the gap -> rejected
        "r4;order;2024-10-27 02:30:00;k1\n"  # ambiguous -> the later, standard-time one (ICU): 01:30 UTC
        "r5;order;2024-07-01 12:00:00+00:00;k1\n",  # an explicit offset wins over the zone
    )
    crm = {
        "path": "raw/crm/*.csv", "format": "csv", "channel": "crm", "timezone": "Europe/Berlin",
        "csv": {"delimiter": ";"},
        "columns": {"event_id": "rid", "event_name": "what", "event_at": "at"},
        "identifiers": {"contact_id": "contact"},
    }  # fmt: skip
    cfg = lake.config({"crm": crm})
    (result,) = lake.ingest(cfg, as_of=datetime(2025, 1, 1, tzinfo=UTC)).files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (5, 4, 1)
    con = lake.warehouse(cfg)
    assert rows(con, "SELECT event_id, event_at FROM stg_events ORDER BY event_id") == [
        ("r1", datetime(2024, 3, 31, 0, 30)),
        ("r2", datetime(2024, 3, 31, 1, 30)),
        ("r4", datetime(2024, 10, 27, 1, 30)),
        ("r5", datetime(2024, 7, 1, 12, 0)),
    ]
    ((row, column, reason),) = rows(
        con, "SELECT source_row, column_name, reason FROM ingest_rejects"
    )
    assert (row, column) == (3, "at")
    assert "does not exist in Europe/Berlin" in reason


def test_naive_timestamp_without_zone_is_rejected_with_the_key_to_set(lake):
    lake.write(
        "raw/web/a.jsonl",
        jsonl({"id": "w1", "event": "e", "ts": "2024-03-01 10:00:00", "anon": "c1"}),
    )
    cfg = lake.config({"web": WEB})
    (result,) = lake.ingest(cfg).files
    assert (result.rows_loaded, result.rows_rejected) == (0, 1)
    ((reason,),) = rows(lake.warehouse(cfg), "SELECT reason FROM ingest_rejects")
    assert "has no UTC offset" in reason and "sources.web.timezone" in reason


def test_multi_column_event_name_and_mapped_channel(lake):
    lake.write(
        "raw/crm/a.csv",
        "id,obj,verb,when,c,chan\n1,deal,won,2024-01-02T00:00:00Z,k1,Store\n2,deal,lost,2024-01-02T00:00:00Z,k2,\n",
    )
    crm = {
        "path": "raw/crm/*.csv", "format": "csv", "channel": "crm", "event_name_separator": ".",
        "columns": {"event_id": "id", "event_name": ["obj", "verb"], "event_at": "when", "channel": "chan"},
        "identifiers": {"contact_id": "c"},
    }  # fmt: skip
    cfg = lake.config({"crm": crm})
    lake.ingest(cfg)
    got = rows(
        lake.warehouse(cfg), "SELECT event_id, event_name, channel FROM stg_events ORDER BY 1"
    )
    assert got == [("1", "deal.won", "store"), ("2", "deal.lost", "crm")]


CALLS = {
    "path": "raw/calls/*.csv", "format": "csv", "channel": "phone", "timezone": "UTC",
    "identifiers": {"phone": "caller"}, "properties": ["queue"],
    "events": [
        {"name": "call_queued", "at": "queued", "properties": {"event_id": "call"}},
        {"name": "call_answered", "at": "answered", "when": [{"column": "outcome", "equals": "answered"}],
         "properties": {"event_id": "call", "outcome": "outcome"}},
        {"name": "call_abandoned", "at": "ended", "when": [{"column": "outcome", "in": ["abandoned", "hung_up"]}],
         "properties": {"event_id": "call", "outcome": "outcome"}},
    ],
}  # fmt: skip


def test_wide_record_becomes_several_events_with_derived_ids(lake):
    lake.write(
        "raw/calls/a.csv",
        "call,caller,queued,answered,ended,outcome,queue\n"
        "q1,+49 30 111222,2024-01-01 09:00:00,2024-01-01 09:01:00,2024-01-01 09:05:00,answered,sales\n"
        "q2,+49 30 111333,2024-01-01 10:00:00,,2024-01-01 10:02:00,abandoned,sales\n"
        "q3,+49 30 111444,2024-01-01 11:00:00,,2024-01-01 11:02:00,answered,sales\n",  # answered without time
    )
    cfg = lake.config({"calls": CALLS})
    (result,) = lake.ingest(cfg).files
    # q1 -> queued + answered, q2 -> queued + abandoned, q3 rejected as a whole row
    assert (result.rows_read, result.rows_loaded, result.rows_rejected, result.events_loaded) == (
        3,
        2,
        1,
        4,
    )
    con = lake.warehouse(cfg)
    assert rows(con, "SELECT event_id, event_name, outcome FROM stg_events ORDER BY 1") == [
        ("q1:call_answered", "call_answered", "answered"),
        ("q1:call_queued", "call_queued", None),
        ("q2:call_abandoned", "call_abandoned", "abandoned"),
        ("q2:call_queued", "call_queued", None),
    ]
    assert rows(con, "SELECT source_row, column_name, reason FROM ingest_rejects") == [
        (3, "answered", "missing timestamp")
    ]


def test_join_adds_the_second_files_columns(lake):
    lake.write(
        "raw/leads/a.csv",
        "lead,contact,created\nL1,k1,2024-01-01T00:00:00Z\nL2,k2,2024-01-02T00:00:00Z\n",
    )
    lake.write("raw/deals.csv", "lead,amount_eur\nL1,120.5\n")
    leads = {
        "path": "raw/leads/*.csv", "format": "csv", "channel": "crm",
        "join": {"path": "raw/deals.csv", "on": ["lead"], "how": "left"},
        "columns": {"event_id": "lead", "event_name": "lead", "event_at": "created", "amount": "amount_eur"},
        "identifiers": {"contact_id": "contact"},
    }  # fmt: skip
    cfg = lake.config({"leads": leads})
    lake.ingest(cfg)
    got = rows(
        lake.warehouse(cfg), "SELECT event_id, contact_id, amount FROM stg_events ORDER BY 1"
    )
    assert got == [("L1", "k1", 120.5), ("L2", "k2", None)]


def test_inner_join_rejects_rows_without_a_match(lake):
    lake.write(
        "raw/leads/a.csv",
        "lead,contact,created\nL1,k1,2024-01-01T00:00:00Z\nL2,k2,2024-01-02T00:00:00Z\n",
    )
    lake.write("raw/deals.csv", "lead,amount_eur\nL1,120.5\n")
    leads = {
        "path": "raw/leads/*.csv", "format": "csv", "channel": "crm",
        "join": {"path": "raw/deals.csv", "on": ["lead"], "how": "inner"},
        "columns": {"event_id": "lead", "event_name": "lead", "event_at": "created", "amount": "amount_eur"},
        "identifiers": {"contact_id": "contact"},
    }  # fmt: skip
    cfg = lake.config({"leads": leads})
    (result,) = lake.ingest(cfg).files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (2, 1, 1)
    ((row, reason),) = rows(lake.warehouse(cfg), "SELECT source_row, reason FROM ingest_rejects")
    assert row == 2 and "no row in the join file" in reason


def test_parquet_source_with_timestamp_types(lake):
    table = pa.table({
        "id": ["p1", "p2"],
        "name": ["signup", "order"],
        "at": pa.array([datetime(2024, 1, 1, 12), datetime(2024, 5, 1, 12)], pa.timestamp("us", tz="UTC")),
        "user": ["u1", "u2"],
        "total": [10.0, None],
    })  # fmt: skip
    (lake.root / "raw/app").mkdir(parents=True)
    pq.write_table(table, lake.root / "raw/app/a.parquet")
    app = {
        "path": "raw/app/*.parquet", "format": "parquet", "channel": "app",
        "columns": {"event_id": "id", "event_name": "name", "event_at": "at", "amount": "total"},
        "identifiers": {"user_id": "user"},
    }  # fmt: skip
    cfg = lake.config({"app": app})
    lake.ingest(cfg)
    got = rows(lake.warehouse(cfg), "SELECT event_id, event_at, amount FROM stg_events ORDER BY 1")
    assert got == [("p1", datetime(2024, 1, 1, 12), 10.0), ("p2", datetime(2024, 5, 1, 12), None)]


def test_reingest_adds_nothing_and_cross_file_duplicates_are_rejected(lake):
    lake.write(
        "raw/web/a.jsonl",
        jsonl({"id": "w1", "event": "e", "ts": "2024-03-01T10:00:00Z", "anon": "c1"}),
    )
    cfg = lake.config({"web": WEB})
    first = lake.ingest(cfg)
    again = lake.ingest(cfg)
    assert [f.status for f in first.files] == ["loaded"] and [f.status for f in again.files] == [
        "skipped"
    ]
    lake.write(
        "raw/web/b.jsonl",
        jsonl(
            {"id": "w1", "event": "e", "ts": "2024-03-01T10:00:00Z", "anon": "c1"},
            {"id": "w2", "event": "e", "ts": "2024-03-01T11:00:00Z", "anon": "c1"},
        ),
    )
    (skipped, loaded) = lake.ingest(cfg).files
    assert skipped.status == "skipped"
    assert (loaded.rows_read, loaded.rows_loaded, loaded.rows_rejected) == (2, 1, 1)
    con = lake.warehouse(cfg)
    assert rows(con, "SELECT count(*), count(DISTINCT event_id) FROM stg_events") == [(2, 2)]
    ((reason,),) = rows(con, "SELECT reason FROM ingest_rejects")
    assert reason == "duplicate event id w1: already loaded from raw/web/a.jsonl"
    assert rows(
        con,
        "SELECT source_file, rows_read, rows_loaded, rows_rejected FROM ingest_files ORDER BY 1",
    ) == [
        ("raw/web/a.jsonl", 1, 1, 0),
        ("raw/web/b.jsonl", 2, 1, 1),
    ]


def test_dirty_rows_land_in_rejects_with_reason_and_location(lake):
    lake.write(
        "raw/web/a.jsonl",
        jsonl({"id": "w1", "event": "e", "ts": "2024-03-01T10:00:00Z", "anon": "c1"})
        + "{not json\n"
        + jsonl(
            {"id": "w1", "event": "e", "ts": "2024-03-01T10:00:00Z", "anon": "c1"},
            {"id": "w3", "event": "e", "ts": "yesterday", "anon": "c1"},
            {"id": "w4", "event": "e", "ts": "2030-01-01T00:00:00Z", "anon": "c1"},
            {"id": "w5", "ts": "2024-03-01T10:00:00Z", "anon": "c1"},
            {"event": "e", "ts": "2024-03-01T10:00:00Z", "anon": "c1"},
            {"id": "w8", "event": "e", "ts": "2024-03-01T10:00:00Z", "anon": {"nested": 1}},
            {"id": "w9", "event": "e", "ts": "2024-03-01T10:00:00Z", "email": "not-an-email"},
            {"id": "w10", "event": "e", "ts": "2023-12-31T23:59:59Z", "anon": "c1"},
        )
        + "[1, 2]\n",
    )
    cfg = lake.config({"web": {**WEB, "not_before": "2024-01-01"}})
    (result,) = lake.ingest(cfg).files
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (11, 1, 10)
    got = rows(
        lake.warehouse(cfg), "SELECT source_row, column_name, reason FROM ingest_rejects ORDER BY 1"
    )
    expected = [
        (2, None, "malformed JSON"),
        (3, "id", "duplicate event id w1 in this file (first at row 1)"),
        (4, "ts", "unparseable timestamp 'yesterday'"),
        (5, "ts", "is in the future"),
        (6, "event", "missing event name"),
        (7, "id", "missing event id"),
        (8, "anon", "field holds a JSON object"),
        (9, "email", "email is not an email address"),
        (10, "ts", "is before not_before 2024-01-01"),
        (11, None, "a JSON array where a JSON object is expected"),
    ]
    assert [(r, c) for r, c, _ in got] == [(r, c) for r, c, _ in expected]
    for (_, _, reason), (_, _, part) in zip(got, expected, strict=True):
        assert part in reason


def test_raw_emails_and_phones_are_masked_in_rejects(lake):
    lake.write(
        "raw/crm/a.csv",
        "id,what,at,contact,email,phone\n"
        "1,x,not a time,k1,ann@example.com,+49 30 1234567\n"
        "2,x,2024-01-01T00:00:00Z,k2,bob@example.com,+49 30 7654321,extra\n",
    )
    crm = {
        "path": "raw/crm/*.csv", "format": "csv", "channel": "crm",
        "columns": {"event_id": "id", "event_name": "what", "event_at": "at"},
        "identifiers": {"contact_id": "contact", "email": "email", "phone": "phone"},
    }  # fmt: skip
    cfg = lake.config({"crm": crm})
    (result,) = lake.ingest(cfg).files
    assert result.rows_rejected == 2
    dumped = json.dumps(rows(lake.warehouse(cfg), "SELECT * FROM ingest_rejects"), default=str)
    for secret in ("ann@example.com", "bob@example.com", "1234567", "7654321"):
        assert secret not in dumped


def test_timestamp_format_with_zone(lake):
    # 01.03.2024 10:00 Berlin (CET, +1) -> 09:00 UTC; with %z the offset in the text is used
    lake.write("raw/a.csv", "id,what,at,c\n1,x,01.03.2024 10:00,k1\n2,x,2024-03-01T10:00:00Z,k1\n")
    lake.write("raw/b/b.csv", "id,what,at,c\n3,x,01.03.2024 10:00 +0200,k1\n")
    base = {
        "format": "csv", "channel": "crm", "timezone": "Europe/Berlin",
        "columns": {"event_id": "id", "event_name": "what", "event_at": "at"}, "identifiers": {"contact_id": "c"},
    }  # fmt: skip
    cfg = lake.config({
        "local": {**base, "path": "raw/a.csv", "timestamp_format": "%d.%m.%Y %H:%M"},
        "offset": {**base, "path": "raw/b/*.csv", "timestamp_format": "%d.%m.%Y %H:%M %z"},
    })  # fmt: skip
    lake.ingest(cfg)
    con = lake.warehouse(cfg)
    assert rows(con, "SELECT event_id, event_at FROM stg_events ORDER BY 1") == [
        ("1", datetime(2024, 3, 1, 9, 0)),
        ("3", datetime(2024, 3, 1, 8, 0)),
    ]
    ((row, reason),) = rows(con, "SELECT source_row, reason FROM ingest_rejects")
    assert row == 2 and "expected format %d.%m.%Y %H:%M" in reason
