"""Our SQL DFG, start/end events and variants against pm4py's own on real event logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cjm_analytics import schema, warehouse
from cjm_analytics.mining import load_designed_journey, mining_models

pytestmark = pytest.mark.real

LOGS = ["helpdesk_tickets", "receipt_wabo", "sepsis_cases", "bpi2012_loan_application"]
MODELS = [
    "mining_event_codes",
    "journey_steps",
    "dfg_edges",
    "journey_start_events",
    "journey_end_events",
    "variants",
]
KEYS = {"case_id_key": "case", "activity_key": "activity", "timestamp_key": "ts"}


def load_real_log(con: Any, events_csv: Path) -> None:
    """events.csv.gz -> touchpoints (case = journey) and journeys (outcome unknown)."""
    con.execute(schema.create_table_sql("touchpoints", schema.TOUCHPOINT_COLUMNS))
    con.execute(schema.create_table_sql("journeys", schema.JOURNEY_COLUMNS))
    con.execute(
        """
        insert into touchpoints (touchpoint_id, journey_id, customer_id, touchpoint_seq, event_name, event_at)
        with raw as (
            select customer_id, activity, source_row,
                   cast(cast("timestamp" as timestamptz) as timestamp) as event_at
            from read_csv(?, all_varchar = true, header = true, auto_detect = true)
        )
        select source_row, customer_id, customer_id,
               row_number() over (partition by customer_id order by event_at, source_row::bigint),
               activity, event_at
        from raw
        """,
        [str(events_csv)],
    )
    con.execute("insert into journeys (journey_id) select distinct journey_id from touchpoints")


REAL_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real"


@pytest.fixture(scope="module", params=LOGS)
def real_log(request: pytest.FixtureRequest) -> Any:
    """One real log loaded once per module (conftest's `real_data` is function-scoped)."""
    folder = REAL_DATA / request.param
    if not folder.is_dir():
        pytest.skip(f"real event log not found at {folder} (it lives in ../shared/data/real)")
    con = warehouse.connect()
    load_real_log(con, folder / "events.csv.gz")
    load_designed_journey(con, None)  # a bare event log: no stages
    warehouse.run_models(con, mining_models(MODELS))
    frame = con.execute(
        "select journey_id as case, event_name as activity, event_at as ts "
        "from touchpoints order by journey_id, touchpoint_seq"
    ).df()
    reference = json.loads((folder / "reference_figures.json").read_text())
    yield con, frame, reference
    con.close()


def test_dfg_and_endpoints_equal_pm4py(real_log: Any) -> None:
    import pm4py

    con, frame, reference = real_log
    dfg, starts, ends = pm4py.discover_dfg(frame, **KEYS)
    ours = {
        (a, b): n
        for a, b, n in con.execute(
            "select from_event_name, to_event_name, transition_count from dfg_edges"
        ).fetchall()
    }
    assert ours == dict(dfg)
    assert sum(ours.values()) == reference["events"] - reference["cases"]
    assert dict(
        con.execute("select event_name, journey_count from journey_start_events").fetchall()
    ) == dict(starts)
    assert dict(
        con.execute("select event_name, journey_count from journey_end_events").fetchall()
    ) == dict(ends)


def test_edge_times_equal_pm4py_performance_dfg(real_log: Any) -> None:
    import pm4py

    con, frame, _ = real_log
    performance = pm4py.discover_performance_dfg(frame, **KEYS)[0]
    ours = {
        (a, b): (mean, median)
        for a, b, mean, median in con.execute(
            "select from_event_name, to_event_name, mean_duration_seconds, median_duration_seconds from dfg_edges"
        ).fetchall()
    }
    assert ours.keys() == performance.keys()
    for edge, (mean, median) in ours.items():
        assert mean == pytest.approx(performance[edge]["mean"], rel=1e-9, abs=1e-6)
        assert median == pytest.approx(performance[edge]["median"], rel=1e-9, abs=1e-6)


def test_variants_equal_pm4py_and_reference(real_log: Any) -> None:
    import pm4py

    con, frame, reference = real_log
    theirs = pm4py.get_variants(frame, **KEYS)
    ours = {
        tuple(path): n
        for path, n in con.execute("select event_names, journey_count from variants").fetchall()
    }
    assert ours == {variant: int(count) for variant, count in theirs.items()}
    assert len(ours) == reference["n_variants"]
    top = con.execute("select journey_count from variants order by variant_rank limit 5").fetchall()
    assert [n for (n,) in top] == reference["pm4py_top5_counts"]


def test_heuristics_net_equals_pm4py(real_log: Any) -> None:
    import pm4py

    from cjm_analytics.mining import (
        dfg_counts,
        discover_heuristics,
        heuristics_net_edges,
        stored_window_counts,
        variant_counts,
        window_counts,
    )

    con, frame, _ = real_log
    theirs = pm4py.discover_heuristics_net(frame, dependency_threshold=0.5, **KEYS)
    # the window counts from the variants in Python, and from the stored variants in SQL
    # (as the night reads them)
    for windows in (None, stored_window_counts(con, "event")):
        ours = discover_heuristics(dfg_counts(con), variant_counts(con), 0.5, windows)
        assert heuristics_net_edges(ours, "event") == heuristics_net_edges(theirs, "event")
        assert {n: dict(node.loop_length_two) for n, node in ours.nodes.items()} == {
            n: dict(node.loop_length_two) for n, node in theirs.nodes.items()
        }
    assert stored_window_counts(con) == window_counts(variant_counts(con))
