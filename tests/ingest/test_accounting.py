"""Property: every input row is either loaded or rejected, exactly once, at its own row number."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from conftest import Lake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TIMES = st.sampled_from([
    "2024-01-01T10:00:00Z", "2024-01-01 10:00:00", "2024-03-31T02:30:00+02:00", "garbage", "",
    "2999-01-01T00:00:00Z", "2024-02-30T00:00:00Z",
])  # fmt: skip
IDS = st.sampled_from(["1", "2", "3", "", "a,b", 'q"x'])
FIELD = st.text(alphabet='ab,"\n;é ', max_size=6)
CSV_ROW = st.one_of(
    st.tuples(IDS, st.sampled_from(["view", ""]), TIMES, st.sampled_from(["k1", "", "k2"])).map(
        lambda r: ",".join(f'"{v}"' if ("," in v or '"' in v) and '"' not in v else v for v in r)
    ),
    st.lists(FIELD, min_size=1, max_size=6).map(",".join),  # arbitrary junk, quotes and newlines
)
JSON_ROW = st.one_of(
    st.fixed_dictionaries(
        {
            "id": IDS,
            "event": st.sampled_from(["view", None]),
            "ts": TIMES,
            "contact": st.sampled_from(["k1", None, ["x"]]),
        }
    ).map(json.dumps),
    st.text(alphabet='{}[]":,ab1 ', max_size=12),
)
SOURCE = {
    "channel": "web", "timezone": "UTC",
    "columns": {"event_id": "id", "event_name": "event", "event_at": "ts"},
    "identifiers": {"contact_id": "contact"},
}  # fmt: skip


def check_accounting(lake: Lake, cfg_sources: dict, blank_lines: int = 0) -> None:
    cfg = lake.config(cfg_sources)
    summary = lake.ingest(cfg)
    con = lake.warehouse(cfg)
    for f in summary.files:
        if f.status != "loaded":
            continue
        assert f.rows_read == f.rows_loaded + f.rows_rejected
        loaded = {
            r
            for (r,) in con.execute(
                "SELECT DISTINCT source_row FROM stg_events WHERE source_file = ?", [f.source_file]
            ).fetchall()
        }
        rejected = [
            r
            for (r,) in con.execute(
                "SELECT source_row FROM ingest_rejects WHERE source_file = ?", [f.source_file]
            ).fetchall()
        ]
        assert len(rejected) == len(set(rejected)) == f.rows_rejected
        assert len(loaded) == f.rows_loaded
        assert not loaded & set(rejected)
        # rows are numbered in the file (blank lines take a number but are not rows)
        assert loaded | set(rejected) <= set(range(1, f.rows_read + blank_lines + 1))


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(CSV_ROW, max_size=12))
def test_csv_rows_are_accounted_for(lines):
    with tempfile.TemporaryDirectory() as folder:
        lake = Lake(Path(folder))
        text = "id,event,ts,contact\n" + "".join(line + "\n" for line in lines)
        lake.write("raw/a.csv", text)
        # blank lines: every newline right after a newline (count() would miss overlaps)
        blank_lines = sum(text[i : i + 2] == "\n\n" for i in range(len(text) - 1))
        check_accounting(lake, {"s": {**SOURCE, "path": "raw/*.csv", "format": "csv"}}, blank_lines)


@settings(max_examples=10, deadline=None)
@given(st.lists(JSON_ROW, max_size=12))
def test_jsonl_rows_are_accounted_for(lines):
    with tempfile.TemporaryDirectory() as folder:
        lake = Lake(Path(folder))
        lake.write("raw/a.jsonl", "".join(line.replace("\n", " ") + "\n" for line in lines))
        check_accounting(lake, {"s": {**SOURCE, "path": "raw/*.jsonl", "format": "jsonl"}})
