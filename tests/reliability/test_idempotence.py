"""The same night twice: identical marts (content, not the run's ids and clock times), no
event counted twice, and the second ingest loads nothing. An analyst's read-only session
held open in another process during the second (real) night keeps working."""

from __future__ import annotations

from _small_company import two_nights


def test_same_night_twice_gives_identical_marts() -> None:
    (first, before), (second, after) = two_nights()
    assert first.succeeded and second.succeeded
    assert first.record.run_id != second.record.run_id
    assert after["warehouse"]["run_id"] == second.record.run_id
    digests = before["warehouse"]["digest"], after["warehouse"]["digest"]
    assert digests[0].keys() == digests[1].keys()
    assert {t for t in digests[0] if digests[0][t] != digests[1][t]} == set()
    # the digest covers the marts analysts read, with rows in them
    assert digests[1]["journeys"][0] > 0 and digests[1]["stage_funnel"][0] > 0


def test_no_event_counted_twice() -> None:
    (first, before), (second, after) = two_nights()
    assert second.facts["rows_read_count"] == 0 and second.facts["files_loaded_count"] == 0
    assert second.facts["files_skipped_count"] == first.facts["files_loaded_count"] > 0
    lake = after["lake"]
    assert lake == before["lake"]
    assert lake["loaded_ids"] == lake["distinct_loaded_ids"] == lake["parquet_rows"]
    assert after["warehouse"]["events_duplicated"] == 0
    assert after["warehouse"]["count"]["stg_events"] == lake["parquet_rows"]
    assert lake["rows_read"] == lake["rows_loaded"] + lake["rows_rejected"]
    assert lake["reject_rows"] == lake["rows_rejected"]


def test_analyst_session_open_during_the_night_keeps_working() -> None:
    (first, _), (second, after) = two_nights()
    # the open session answers from the night it opened, before and after the replace
    assert after["analyst_answers"] == [f"{first.record.run_id},1"] * 2
    assert second.succeeded and after["warehouse"]["run_id"] == second.record.run_id
