"""The incremental stitch reads only the Parquet parts of the files `events` does not hold yet
(load_lake lists every part with the file content it came from, in `stg_event_parts`)."""

from __future__ import annotations

from conftest import Lake, rows

from cjm_analytics.identity.incremental import _new_file_events
from cjm_analytics.ingest import lake as lake_module

SOURCE = {
    "path": "raw/web/*.csv",
    "format": "csv",
    "channel": "web",
    "timezone": "UTC",
    "columns": {"event_id": "id", "event_name": "event", "event_at": "ts"},
    "identifiers": {"cookie": "cookie"},
}


def _csv(first_id: int, days: list[str]) -> str:
    lines = ["id,event,ts,cookie"]
    lines += [f"{first_id + i},view,{day}T10:00:00Z,c{i}" for i, day in enumerate(days)]
    return "\n".join(lines) + "\n"


def test_only_the_new_files_parts_are_read(lake: Lake) -> None:
    lake.write("raw/web/a.csv", _csv(100, ["2024-01-01", "2024-01-02", "2024-01-03"]))
    lake.write("raw/web/b.csv", _csv(200, ["2024-01-02", "2024-01-04"]))
    cfg = lake.config({"web": SOURCE})
    lake.ingest(cfg)
    con = lake.warehouse(cfg)
    # every part of the lake is listed once, under the content hash of the file it came from
    parts = rows(con, f"SELECT p.path, f.source_file FROM {lake_module.EVENT_PARTS} p "
                 "JOIN ingest_files f USING (source, sha256) ORDER BY p.path")  # fmt: skip
    assert len(parts) == 5  # a.csv spans three event dates, b.csv two
    assert sorted({file.rsplit("/", 1)[-1] for _, file in parts}) == ["a.csv", "b.csv"]
    # `events` holds a.csv already: b.csv is tonight's only new file
    con.execute(
        "CREATE TEMP TABLE inc_files AS SELECT source, source_file, events_loaded AS lake_count, "
        "CASE WHEN source_file LIKE '%a.csv' THEN events_loaded ELSE 0 END AS previous_count "
        "FROM ingest_files"
    )
    select = _new_file_events(con)
    b_parts = [path for path, file in parts if file.endswith("b.csv")]
    assert all(path in select for path in b_parts)
    assert not any(path in select for path, file in parts if file.endswith("a.csv"))
    assert rows(con, f"SELECT event_id FROM ({select}) ORDER BY event_id") == [("200",), ("201",)]


def test_without_the_parts_list_every_lake_event_is_read(lake: Lake) -> None:
    lake.write("raw/web/a.csv", _csv(100, ["2024-01-01"]))
    cfg = lake.config({"web": SOURCE})
    lake.ingest(cfg)
    con = lake.warehouse(cfg)
    con.execute(f"DROP TABLE {lake_module.EVENT_PARTS}")
    assert _new_file_events(con) == "SELECT * FROM stg_events"
