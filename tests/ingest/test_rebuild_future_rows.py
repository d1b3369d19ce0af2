"""A full rebuild rejects exactly the "future" rows the first ingest rejected.

Ingest rejects events after its as-of (now, on a real night). A rebuild runs later, when
such an event may be in the past; checking it against the rebuild's own now would load rows
the nights before never had, and the rebuilt warehouse would differ from the nights'. The
manifest records each file's as-of (`future_after`); a rebuild checks a known file
against it (`lake.first_ingested`), and a new file against now.
"""

from __future__ import annotations

from datetime import timedelta

from conftest import AS_OF, Lake

from cjm_analytics.ingest import ingest
from cjm_analytics.ingest import lake as lake_state

SOURCE = {
    "channel": "web", "timezone": "UTC", "path": "raw/*.csv", "format": "csv",
    "columns": {"event_id": "id", "event_name": "event", "event_at": "ts"},
    "identifiers": {"contact_id": "contact"},
}  # fmt: skip
# one event an hour before the first as-of, one an hour after it
ROWS = "id,event,ts,contact\ne1,visit,2024-05-31T23:00:00Z,c1\ne2,visit,2024-06-01T01:00:00Z,c1\n"


def test_rebuild_checks_a_known_file_against_its_first_as_of(lake: Lake) -> None:
    lake.write("raw/a.csv", ROWS)
    first = lake.config({"s": SOURCE})
    summary = lake.ingest(first)  # as of 2024-06-01 00:00
    assert (summary.rows_loaded, summary.rows_rejected) == (1, 1)

    later = AS_OF + timedelta(days=1)  # e2 is in the past now
    rebuilt = lake.config({"s": SOURCE}, paths={"lake": "lake-rebuilt"})
    checked_as = lake_state.first_ingested(first.lake_dir / lake_state.STATE_FILE)
    assert list(checked_as.values()) == [AS_OF.replace(tzinfo=None)]
    again = ingest(rebuilt, as_of=later, first_ingested=checked_as)
    assert (again.rows_loaded, again.rows_rejected) == (1, 1)
    # without the manifest, the same file checked against the later as-of loads both rows
    fresh = lake.config({"s": SOURCE}, paths={"lake": "lake-fresh"})
    assert ingest(fresh, as_of=later).rows_loaded == 2
