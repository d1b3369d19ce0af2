"""Mining marts on small hand-built journeys: DFG, variants, rework, deviations, fitness."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cjm_analytics import schema, warehouse
from cjm_analytics.config import JourneyConfig, parse_config
from cjm_analytics.errors import MiningError
from cjm_analytics.mining import (
    LOG_MODELS,
    build_mining,
    designed_net,
    dfg_counts,
    discover_heuristics,
    discover_tree,
    heuristics_net_edges,
    load_designed_journey,
    mining_models,
    projected_dfgs,
    replay_variants,
    uvcl_dfg,
    variant_counts,
    weighted_log_fitness,
)
from cjm_analytics.stats import wilson_interval

T0 = dt.datetime(2024, 3, 1, 9, 0)
STAGE_OF = {"view": "a", "cart": "b", "buy": "c"}

# Each step: (event name, minutes since the journey's start, channel).
#   j1: view 0, cart 10, buy 30             stages a b c
#   j2: view 0, buy 20                      stages a c     (skips b)
#   j3: view 0, cart 5 (phone), view 15, cart 45   a b a b (goes back, b by phone)
#   j4: view 0, cart 10, buy 20             stages a b c
LOG: dict[str, list[tuple[str, int, str]]] = {
    "j1": [("view", 0, "web"), ("cart", 10, "web"), ("buy", 30, "web")],
    "j2": [("view", 0, "web"), ("buy", 20, "web")],
    "j3": [("view", 0, "web"), ("cart", 5, "phone"), ("view", 15, "web"), ("cart", 45, "web")],
    "j4": [("view", 0, "web"), ("cart", 10, "web"), ("buy", 20, "web")],
}


def make_config(
    designed: list[tuple[str, str]] | None = None, allow_late_entry: bool = False
) -> JourneyConfig:
    data: dict[str, Any] = {
        "sources": {
            "web": {
                "path": "web/*.csv",
                "format": "csv",
                "channel": "web",
                "columns": {"event_name": "event", "event_at": "at"},
                "identifiers": {"cookie": "cookie"},
            }
        },
        "stages": [
            {"name": "a"},
            {"name": "b", "channels": ["web"]},
            {"name": "c", "success": True},
        ],
    }
    if designed is not None:
        data["designed_journey"] = {"transitions": [list(t) for t in designed]}
    data["mining"] = {"conformance_allow_late_entry": allow_late_entry}
    return parse_config(data, Path("."))


def load_log(con: Any, log: dict[str, list[tuple[str, int, str]]]) -> None:
    """touchpoints + journeys from the compact log; converted = the journey reached `buy`."""
    con.execute(schema.create_table_sql("touchpoints", schema.TOUCHPOINT_COLUMNS))
    con.execute(schema.create_table_sql("journeys", schema.JOURNEY_COLUMNS))
    rows = []
    for journey, steps in log.items():
        for seq, (event, minutes, channel) in enumerate(steps, start=1):
            stage = STAGE_OF.get(event)
            order = "abc".index(stage) + 1 if stage else None
            at = T0 + dt.timedelta(minutes=minutes)
            rows.append(
                (f"{journey}-{seq}", journey, journey, seq, event, at, stage, order, channel)
            )
        con.execute(
            "insert into journeys (journey_id, customer_id, is_converted) values (?, ?, ?)",
            [journey, journey, any(step[0] == "buy" for step in steps)],
        )
    con.executemany(
        "insert into touchpoints (touchpoint_id, journey_id, customer_id, touchpoint_seq, "
        "event_name, event_at, stage, stage_order, channel) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


@pytest.fixture(scope="module")
def mined(tmp_path_factory: pytest.TempPathFactory) -> Any:
    con = warehouse.connect()
    load_log(con, LOG)
    summary = build_mining(con, make_config(), tmp_path_factory.mktemp("mining"))
    yield con, summary
    con.close()


def rows(con: Any, query: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in con.execute(query).fetchall()]


def test_dfg_counts_and_times_by_hand(mined: Any) -> None:
    con, _ = mined
    # view->cart: j1 600 s, j3 300 s and 1800 s, j4 600 s -> mean 825, median 600,
    #   p90 of [300, 600, 600, 1800] at position 2.7 -> 600 + 0.7 * 1200 = 1440
    # cart->buy: j1 1200, j4 600 -> mean = median = 900, p90 = 600 + 0.9 * 600 = 1140
    # view->buy: j2 1200; cart->view: j3 600
    assert rows(con, "from dfg_edges order by from_event_name, to_event_name") == [
        ("cart", "buy", 2, 900.0, 900.0, 1140.0),
        ("cart", "view", 1, 600.0, 600.0, 600.0),
        ("view", "buy", 1, 1200.0, 1200.0, 1200.0),
        ("view", "cart", 4, 825.0, 600.0, pytest.approx(1440.0)),
    ]


def test_edges_add_up_to_events_minus_journeys(mined: Any) -> None:
    con, summary = mined
    # 12 touchpoints in 4 journeys: 8 directly-follows pairs
    assert rows(con, "select sum(transition_count) from dfg_edges") == [(8,)]
    assert (summary.touchpoint_count, summary.journey_count) == (12, 4)


def test_start_and_end_events(mined: Any) -> None:
    con, _ = mined
    assert rows(
        con, "select event_name, journey_count, journey_share from journey_start_events"
    ) == [("view", 4, 1.0)]
    assert rows(con, "select event_name, journey_count from journey_end_events order by 1") == [
        ("buy", 3),
        ("cart", 1),
    ]


def test_variants_with_share_duration_and_conversion(mined: Any) -> None:
    con, summary = mined
    # [view cart buy]: j1 (1800 s) and j4 (1200 s) -> median 1500 s, both converted
    # ties (one journey each) ordered by the sequence itself
    assert rows(
        con,
        "select variant_rank, variant_label, journey_count, journey_share, "
        "median_duration_seconds, conversion_rate from variants order by variant_rank",
    ) == [
        (1, "view > cart > buy", 2, 0.5, 1500.0, 1.0),
        (2, "view > buy", 1, 0.25, 1200.0, 1.0),
        (3, "view > cart > view > cart", 1, 0.25, 2700.0, 0.0),
    ]
    assert summary.variant_count == 3


def test_stage_level_dfg_and_variants(mined: Any) -> None:
    con, _ = mined
    # stage visits: j1 a b c, j2 a c, j3 a b a b, j4 a b c
    assert rows(
        con, "select from_stage, to_stage, transition_count from dfg_stage_edges order by 1, 2"
    ) == [
        ("a", "b", 4),
        ("a", "c", 1),
        ("b", "a", 1),
        ("b", "c", 2),
    ]
    assert rows(
        con, "select stage_path, journey_count from stage_variants order by stage_variant_id"
    ) == [
        (["a", "b", "c"], 2),
        (["a", "b", "a", "b"], 1),
        (["a", "c"], 1),
    ]


def test_rework_per_journey(mined: Any) -> None:
    con, _ = mined
    # j3: 4 touchpoints, 2 distinct events -> 2 repeats; 4 stage visits of 2 stages -> 2
    # revisits; b -> a is one step back
    assert rows(
        con,
        "select journey_id, repeated_event_count, self_loop_count, revisited_stage_count, "
        "step_back_count, has_rework from journey_rework order by journey_id",
    ) == [
        ("j1", 0, 0, 0, 0, False),
        ("j2", 0, 0, 0, 0, False),
        ("j3", 2, 0, 2, 1, True),
        ("j4", 0, 0, 0, 0, False),
    ]


def test_deviations_by_hand(mined: Any) -> None:
    con, _ = mined
    # variant 2 (a b a b): b -> a is a step back and a loop back to a; b by phone where
    # only web is expected. Variant 3 (a c) skips b, leaving the map at a.
    assert rows(
        con,
        "select stage_variant_id, deviation_kind, at_stage, affected_stage, channel, "
        "occurrence_count, journey_count from deviations order by 1, 2",
    ) == [
        (2, "loop", "a", "a", None, 1, 1),
        (2, "step_back", "b", "a", None, 1, 1),
        (2, "unexpected_channel", "b", "b", "phone", 1, 1),
        (3, "skipped_stage", "a", "b", None, 1, 1),
    ]


def test_fitness_per_variant(mined: Any) -> None:
    con, summary = mined
    fitness = rows(
        con,
        "select stage_variant_id, is_fit, trace_fitness = 1, is_conforming_path "
        "from conformance_by_variant order by 1",
    )
    # a b c follows the map; a b a b and a c do not
    assert fitness == [(1, True, True, True), (2, False, False, False), (3, False, False, False)]
    assert summary.replayed_journey_share == 1.0
    assert 0 < summary.log_fitness < 1


def test_conversion_of_conforming_and_deviating_journeys(mined: Any) -> None:
    con, summary = mined
    # overall: j1, j4 conform (2 of 2 convert); j2 skips b, j3 goes back (1 of 2)
    # stage a: deviating there j2 (skip), j3 (loop) -> 1 of 2; conforming j1, j4 -> 2 of 2
    # stage b: deviating j3 -> 0 of 1; conforming j1, j4 -> 2 of 2
    # stage c: j1, j2, j4 reached it, none deviated there -> 3 of 3
    got = rows(
        con,
        "select scope, stage, path_group, journey_count, converted_count, conversion_rate_low, "
        "conversion_rate_high from conformance_conversion",
    )
    expected = [
        ("overall", None, "conforming", 2, 2),
        ("overall", None, "deviating", 2, 1),
        ("stage", "a", "conforming", 2, 2),
        ("stage", "a", "deviating", 2, 1),
        ("stage", "b", "conforming", 2, 2),
        ("stage", "b", "deviating", 1, 0),
        ("stage", "c", "conforming", 3, 3),
    ]
    assert [row[:5] for row in got] == expected
    for row, (*_, n, converted) in zip(got, expected, strict=True):
        assert row[5:] == pytest.approx(wilson_interval(converted, n))
    assert summary.conforming_journey_share == 0.5


def test_model_files_and_edges(mined: Any) -> None:
    con, summary = mined
    names = sorted(path.name for path in summary.files)
    assert "stage_petri_net.pnml" in names and "event_bpmn.bpmn" in names
    assert all(path.stat().st_size > 0 for path in summary.files)
    # the heuristics net keeps view -> cart: 4 times forward, once back (cart -> view)
    heuristic = rows(
        con,
        "select transition_count, round(dependency, 4) from discovered_model_edges "
        "where model = 'heuristics_net' and level = 'event' and from_node = 'view' and to_node = 'cart'",
    )
    # dependency (4 - 1) / (4 + 1 + 1) = 0.5
    assert heuristic == [(4, 0.5)]
    activities = rows(
        con,
        "select distinct from_node from discovered_model_edges "
        "where model = 'inductive_petri_net' and level = 'stage' and from_node_kind = 'activity' order by 1",
    )
    assert activities == [("a",), ("b",), ("c",)]


def test_designed_branch_is_not_a_deviation(tmp_path: Path) -> None:
    # with a -> c designed, skipping b is allowed: only j3's b -> a and phone remain
    with warehouse.connection() as con:
        load_log(con, LOG)
        build_mining(con, make_config([("a", "b"), ("b", "c"), ("a", "c")]), tmp_path)
        assert rows(con, "select distinct stage_variant_id from deviations") == [(2,)]
        assert rows(
            con, "select is_fit from conformance_by_variant where stage_variant_id = 3"
        ) == [(True,)]


def test_late_entry_skips_the_earlier_stages(tmp_path: Path) -> None:
    # a journey first seen at c skipped a and b
    with warehouse.connection() as con:
        load_log(con, {"j1": [("buy", 0, "web")]})
        build_mining(con, make_config(), tmp_path)
        assert rows(
            con, "select deviation_kind, at_stage, affected_stage from deviations order by 3"
        ) == [("skipped_stage", "c", "a"), ("skipped_stage", "c", "b")]


def test_late_entry_allowed_by_setting(tmp_path: Path) -> None:
    # with mining.conformance_allow_late_entry a journey may enter the map at any stage
    with warehouse.connection() as con:
        load_log(con, {"j1": [("cart", 0, "web"), ("buy", 5, "web")]})
        build_mining(con, make_config(allow_late_entry=True), tmp_path)
        assert rows(con, "select count(*) from deviations") == [(0,)]
        assert rows(con, "select is_fit, trace_fitness from conformance_by_variant") == [
            (True, 1.0)
        ]


def test_weighted_replay_equals_whole_log_fitness() -> None:
    import pandas as pd
    import pm4py

    cfg = make_config()
    net, initial, final = designed_net(cfg)
    variants = [
        (("a", "b", "c"), 3),
        (("a", "c"), 2),
        (("a", "b", "a", "b"), 1),
        (("b", "c", "c"), 4),
    ]
    results = replay_variants(variants, net, initial, final)
    ours = weighted_log_fitness(results, [count for _, count in variants])
    events = [
        {
            "case:concept:name": f"{index}-{copy}",
            "concept:name": stage,
            "time:timestamp": T0 + dt.timedelta(minutes=step),
        }
        for index, (path, count) in enumerate(variants)
        for copy in range(count)
        for step, stage in enumerate(path)
    ]
    whole = pm4py.fitness_token_based_replay(pd.DataFrame(events), net, initial, final)
    assert ours == pytest.approx(whole["log_fitness"], abs=1e-12)


def test_tree_from_variant_counts_equals_pm4py_on_the_log(mined: Any) -> None:
    import pandas as pd
    import pm4py

    con, _ = mined
    frame = pd.DataFrame(
        con.execute(
            "select journey_id, event_name, event_at from touchpoints order by journey_id, touchpoint_seq"
        ).fetchall(),
        columns=["case:concept:name", "concept:name", "time:timestamp"],
    )
    for noise in (0.0, 0.2):
        theirs = pm4py.discover_process_tree_inductive(frame, noise_threshold=noise)
        assert str(discover_tree(variant_counts(con), noise)) == str(theirs)


def test_missing_input_tables_are_named(tmp_path: Path) -> None:
    with warehouse.connection() as con, pytest.raises(MiningError, match="touchpoints"):
        build_mining(con, make_config(), tmp_path)


def test_touchpoints_without_event_name_are_refused(tmp_path: Path) -> None:
    with warehouse.connection() as con:
        load_log(con, LOG)
        con.execute("update touchpoints set event_name = null where touchpoint_id = 'j2-2'")
        with pytest.raises(
            MiningError, match=r"1 row\(s\) have no event_name \(e.g. touchpoint_id 'j2-2'\)"
        ):
            build_mining(con, make_config(), tmp_path)


def test_importing_the_package_does_not_import_pm4py() -> None:
    code = "import sys, cjm_analytics.mining, cjm_analytics.cli; print('pm4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert "AGPL" not in out.stdout + out.stderr


journey_logs = st.dictionaries(
    keys=st.text("xyz0123", min_size=1, max_size=4),
    values=st.lists(
        st.tuples(
            st.sampled_from(["view", "cart", "buy", "faq"]), st.integers(0, 500), st.just("web")
        ),
        min_size=1,
        max_size=7,
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None)
@given(log=journey_logs)
def test_property_edges_add_up_and_order_of_rows_does_not_matter(log: dict[str, Any]) -> None:
    # minutes sorted per journey so that touchpoint_seq follows time, as the stages area builds it
    log = {j: sorted(steps, key=lambda s: s[1]) for j, steps in log.items()}
    results = []
    for ordering in (log, dict(reversed(list(log.items())))):
        with warehouse.connection() as con:
            load_log(con, ordering)
            con.execute("create or replace table touchpoints as from touchpoints order by random()")
            load_designed_journey(con, make_config())
            warehouse.run_models(con, mining_models(LOG_MODELS))
            edges = rows(con, "from dfg_edges order by all")
            assert sum(edge[2] for edge in edges) == sum(map(len, log.values())) - len(log)
            variants = rows(con, "select event_names, journey_count from variants order by all")
            assert sum(count for _, count in variants) == len(log)
            results.append((edges, variants))
    assert results[0] == results[1]


stage_paths = st.lists(
    st.lists(st.sampled_from(["view", "cart", "buy"]), min_size=1, max_size=6),
    min_size=1,
    max_size=8,
)
extra_moves = st.lists(
    st.sampled_from([("a", "c"), ("b", "a"), ("c", "b"), ("c", "a")]), unique=True, max_size=2
)


@settings(max_examples=20, deadline=None)
@given(paths=stage_paths, extra=extra_moves, late=st.booleans())
def test_property_sql_deviations_agree_with_token_replay(
    paths: list[list[str]],
    extra: list[tuple[str, str]],
    late: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # the SQL classification (no path deviation) and pm4py's replay (fitness 1) are two
    # independent readings of the same designed map: they must agree on every variant
    log = {
        f"j{i}": [(event, minute, "web") for minute, event in enumerate(path)]
        for i, path in enumerate(paths)
    }
    cfg = make_config([("a", "b"), ("b", "c"), *extra], allow_late_entry=late)
    with warehouse.connection() as con:
        load_log(con, log)
        build_mining(con, cfg, tmp_path_factory.mktemp("prop"))
        disagreements = rows(
            con,
            "select stage_path, is_fit, is_conforming_path from conformance_by_variant "
            "where is_fit <> is_conforming_path",
        )
    assert disagreements == []


def test_heuristics_net_from_aggregates_equals_pm4py_on_the_log(mined: Any) -> None:
    import pandas as pd
    import pm4py

    con, _ = mined
    frame = pd.DataFrame(
        con.execute(
            "select journey_id, event_name, event_at from touchpoints order by journey_id, touchpoint_seq"
        ).fetchall(),
        columns=["case:concept:name", "concept:name", "time:timestamp"],
    )
    theirs = pm4py.discover_heuristics_net(frame, dependency_threshold=0.5)
    ours = discover_heuristics(dfg_counts(con), variant_counts(con), 0.5)
    assert heuristics_net_edges(ours, "event") == heuristics_net_edges(theirs, "event")
    # j3 goes view cart view cart: a length-two loop between view and cart
    loops = {name: dict(node.loop_length_two) for name, node in ours.nodes.items()}
    assert loops == {name: dict(node.loop_length_two) for name, node in theirs.nodes.items()}
    assert "cart" in loops["view"]


variant_logs = st.dictionaries(
    keys=st.lists(st.sampled_from(["view", "cart", "buy", "faq", "call"]), max_size=6).map(tuple),
    values=st.integers(1, 40),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(log=variant_logs)
def test_property_fast_dfg_equals_pm4py_with_key_order(log: dict[tuple[str, ...], int]) -> None:
    # the empty variant is allowed: pm4py's sub-logs hold it once a cut empties a trace
    from collections import Counter

    from pm4py.util.compression import util as compression

    theirs, ours = compression.discover_dfg_uvcl(Counter(log)), uvcl_dfg(Counter(log))
    for part in ("graph", "start_activities", "end_activities"):
        assert list(getattr(ours, part).items()) == list(getattr(theirs, part).items())


# Counts of 1 dominate real logs (journeys seen once) and take a path of their own in the
# fast functions; runs (view view) and traces of one repeated activity are common here.
variant_logs_mostly_once = st.dictionaries(
    keys=st.lists(st.sampled_from(["view", "cart", "buy", "faq"]), max_size=7).map(tuple),
    values=st.sampled_from([1, 1, 1, 2, 9]),
    min_size=1,
    max_size=14,
)


def _dfg_items(dfg: Any) -> list[list[Any]]:
    return [
        list(getattr(dfg, part).items()) for part in ("graph", "start_activities", "end_activities")
    ]


@settings(max_examples=60, deadline=None)
@given(log=variant_logs_mostly_once)
def test_property_projected_dfg_equals_pm4py_dfg_of_the_projected_log(
    log: dict[tuple[str, ...], int],
) -> None:
    from collections import Counter

    from pm4py.util.compression import util as compression

    without = projected_dfgs(Counter(log))
    for removed in sorted({a for path in log for a in path}):
        projected: Counter[tuple[str, ...]] = Counter()
        for path, count in log.items():  # the projection of pm4py's fall-through, summed
            projected[tuple(a for a in path if a != removed)] += count
        assert _dfg_items(without(removed)) == _dfg_items(compression.discover_dfg_uvcl(projected))


@settings(max_examples=60, deadline=None)
@given(log=variant_logs_mostly_once)
def test_property_concurrent_activity_fall_through_equals_pm4py(
    log: dict[tuple[str, ...], int],
) -> None:
    from collections import Counter

    from pm4py.algo.discovery.inductive.dtypes.im_ds import IMDataStructureUVCL
    from pm4py.algo.discovery.inductive.fall_through.activity_concurrent import (
        ActivityConcurrentUVCL,
    )
    from pm4py.algo.discovery.inductive.fall_through.activity_once_per_trace import (
        ActivityOncePerTraceUVCL,
    )

    from cjm_analytics.mining import _fast_inductive_miner

    # the once-per-trace fall-through inherits `apply`: it must keep its own candidate
    for fall_through in (ActivityConcurrentUVCL, ActivityOncePerTraceUVCL):
        theirs = fall_through.apply(IMDataStructureUVCL(Counter(log)))
        with _fast_inductive_miner():
            ours = fall_through.apply(IMDataStructureUVCL(Counter(log)))
            candidate = fall_through._get_candidate(IMDataStructureUVCL(Counter(log)), None, None)
        assert fall_through.apply.__func__.__module__.startswith("pm4py")  # put back
        assert (ours is None) == (theirs is None) == (candidate is None)
        if theirs is not None:
            assert str(ours[0]) == str(theirs[0])
            for mine, pm4pys in zip(ours[1], theirs[1], strict=True):
                assert list(mine.data_structure.items()) == list(pm4pys.data_structure.items())
                assert _dfg_items(mine.dfg) == _dfg_items(pm4pys.dfg)


@settings(max_examples=60, deadline=None)
@given(log=st.one_of(variant_logs, variant_logs_mostly_once), data=st.data())
def test_property_concurrency_projection_equals_pm4py(
    log: dict[tuple[str, ...], int], data: st.DataObject
) -> None:
    from collections import Counter

    from pm4py.algo.discovery.inductive.cuts.concurrency import ConcurrencyCutUVCL
    from pm4py.algo.discovery.inductive.dtypes.im_ds import IMDataStructureUVCL

    from cjm_analytics.mining import _fast_inductive_miner

    # the alphabet split into groups (as a concurrency cut does), in any order
    alphabet = sorted({a for path in log for a in path})
    labels = data.draw(st.lists(st.integers(0, 2), min_size=len(alphabet), max_size=len(alphabet)))
    groups = [{a for a, g in zip(alphabet, labels, strict=True) if g == i} for i in range(3)]
    groups = [group for group in groups if group] or [set()]
    theirs = ConcurrencyCutUVCL.project(IMDataStructureUVCL(Counter(log)), groups)
    with _fast_inductive_miner():
        ours = ConcurrencyCutUVCL.project(IMDataStructureUVCL(Counter(log)), groups)
    assert ConcurrencyCutUVCL.project.__func__.__module__.startswith("pm4py")  # put back
    assert [list(o.data_structure.items()) for o in ours] == [
        list(t.data_structure.items()) for t in theirs
    ]


@settings(max_examples=40, deadline=None)
@given(log=st.one_of(variant_logs, variant_logs_mostly_once), noise=st.sampled_from([0.0, 0.2]))
def test_property_tree_is_the_same_with_pm4py_own_dfg(
    log: dict[tuple[str, ...], int], noise: float
) -> None:
    from collections import Counter

    from pm4py.algo.discovery.inductive.dtypes.im_ds import IMDataStructureUVCL
    from pm4py.algo.discovery.inductive.variants.im import IMUVCL
    from pm4py.algo.discovery.inductive.variants.imf import IMFUVCL
    from pm4py.objects.process_tree.utils import generic as tree_utils

    log = {path: count for path, count in log.items() if path} or {("view",): 1}
    parameters = {"noise_threshold": noise}
    miner = IMFUVCL(parameters) if noise > 0 else IMUVCL(parameters)
    theirs = tree_utils.fold(miner.apply(IMDataStructureUVCL(Counter(log)), parameters))
    tree_utils.tree_sort(theirs)
    assert str(discover_tree(Counter(log), noise)) == str(theirs)


def test_stored_window_counts_equal_those_of_the_variants(mined: Any) -> None:
    from cjm_analytics.mining import stored_window_counts, variant_counts, window_counts

    con, _ = mined
    for level in ("event", "stage"):
        stored = stored_window_counts(con, level)
        assert stored == window_counts(variant_counts(con, level))
        assert stored[1]  # the log has paths of three steps or more


channel_logs = st.lists(
    st.tuples(
        st.lists(
            st.tuples(
                st.sampled_from(["view", "cart", "buy", "faq"]), st.sampled_from(["web", "phone"])
            ),
            min_size=1,
            max_size=6,
        ),
        st.sampled_from([True, False, None]),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=30, deadline=None)
@given(journeys=channel_logs, extra=extra_moves)
def test_property_conformance_conversion_equals_journey_by_journey_counts(
    journeys: list[tuple[list[tuple[str, str]], bool | None]],
    extra: list[tuple[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # the SQL counts by stage variant (ADR 0122); here each journey is classified on its
    # own: its path deviations (its variant's) and its channel deviations (stage b expects
    # web), over the distinct stages it reached
    log = {
        f"j{i}": [(event, minute, channel) for minute, (event, channel) in enumerate(steps)]
        for i, (steps, _) in enumerate(journeys)
    }
    with warehouse.connection() as con:
        load_log(con, log)
        for i, (_, converted) in enumerate(journeys):
            con.execute(
                "update journeys set is_converted = ? where journey_id = ?", [converted, f"j{i}"]
            )
        build_mining(
            con, make_config([("a", "b"), ("b", "c"), *extra]), tmp_path_factory.mktemp("cc")
        )
        paths = dict(
            rows(con, "select journey_id, stage_path from journey_paths where len(stage_path) > 0")
        )
        variant_of = {
            tuple(path): variant
            for path, variant in rows(
                con, "select stage_path, stage_variant_id from stage_variants"
            )
        }
        path_deviations: dict[int, set[str | None]] = {}
        for variant, stage in rows(
            con,
            "select stage_variant_id, at_stage from deviations where deviation_kind <> 'unexpected_channel'",
        ):
            path_deviations.setdefault(variant, set()).add(stage)
        channel_deviations: dict[str, set[str]] = {}
        for journey, stage in rows(con, "select journey_id, stage from journey_channel_deviations"):
            channel_deviations.setdefault(journey, set()).add(stage)
        got = rows(
            con,
            "select scope, stage, path_group, journey_count, known_outcome_count, converted_count "
            "from conformance_conversion",
        )
    counts: dict[tuple[str, str | None, str], list[int]] = {}

    def count(key: tuple[str, str | None, str], converted: bool | None) -> None:
        n = counts.setdefault(key, [0, 0, 0])
        n[0] += 1
        n[1] += converted is not None
        n[2] += converted is True

    for i, (_, converted) in enumerate(journeys):
        journey = f"j{i}"
        if journey not in paths:
            continue
        path = paths[journey]
        variant = variant_of[tuple(path)]
        deviating_at = path_deviations.get(variant, set()) | channel_deviations.get(journey, set())
        deviates = variant in path_deviations or journey in channel_deviations
        count(("overall", None, "deviating" if deviates else "conforming"), converted)
        for stage in set(path):
            count(
                ("stage", stage, "deviating" if stage in deviating_at else "conforming"), converted
            )
    expected = sorted(
        (key + tuple(n) for key, n in counts.items()),
        key=lambda r: (r[0], r[1] is None, r[1] or "", r[2]),
    )
    assert got == expected
