"""The incremental stitch equals the full one: two nights, the second stitched both ways from
one copy of the first night's warehouse file and lake state (ADR 0091)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_identity import make_config as identity_config

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig
from cjm_analytics.identity import StitchSummary, stitch, stitch_incremental
from cjm_analytics.identity.incremental import EVENT_MOVES
from cjm_analytics.ingest import lake
from cjm_analytics.ingest.lake import INGEST_FILE_COLUMNS
from cjm_analytics.pii import pseudonymize
from cjm_analytics.schema import EVENT_COLUMNS, LAKE_EVENT_COLUMNS, create_table_sql

NIGHT_1, NIGHT_2 = datetime(2024, 5, 1), datetime(2024, 5, 2)
OUTPUTS = ("events", "identity_map", "identity_merges", "identity_quality")
STATE = ("identity_state_map", "identity_customers", "identity_state_rounds")
Event = dict[str, str]


def make_config(root: Path, **identity: Any) -> JourneyConfig:
    """test_identity's config, on one thread (tiny data: one thread is quicker)."""
    return identity_config(root, threads=1, **identity)


def warehouse_with(events: list[Event]) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse whose stg_events table holds `events` as e1, e2..."""
    con = warehouse.connect(threads=1)
    con.execute(create_table_sql("stg_events", LAKE_EVENT_COLUMNS))
    add_events(con, events, 1)
    return con


def copy_tables(source: duckdb.DuckDBPyConnection, target: duckdb.DuckDBPyConnection) -> None:
    """The night's outputs of `source`, as tables of `target` (events with its exact types)."""
    target.execute(create_table_sql("events", EVENT_COLUMNS))
    for name in OUTPUTS:
        target.register("copied", source.sql(f"SELECT * FROM {name}").to_arrow_table())
        if name == "events":
            target.execute("INSERT INTO events SELECT * FROM copied")
        else:
            target.execute(f"CREATE TABLE {name} AS SELECT * FROM copied")
        target.unregister("copied")


def add_events(
    con: duckdb.DuckDBPyConnection, events: list[Event], first: int, file: str = "night1.csv"
) -> None:
    """Append rows to the stg_events table: event ids e<first>, e<first + 1>..."""
    for i, event in enumerate(events, start=first):
        row = {"event_id": f"e{i}", "source": "web", "event_name": "x",
               "event_at": datetime(2024, 4, 1), "source_file": file, **event}  # fmt: skip
        con.execute(
            f"INSERT INTO stg_events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )


@dataclass
class Night2:
    full: StitchSummary
    incremental: StitchSummary
    tables: dict[str, dict[str, list[tuple[Any, ...]]]]  # way -> table -> sorted rows
    state: dict[str, dict[str, list[tuple[Any, ...]]]]
    scope: set[str]  # stitch_scope of the incremental way
    changed: set[str]  # customers whose events or identifiers differ, night 1 -> full night 2
    # the incremental way's record of moved events (None: not written), and the customer
    # pairs (night 1's, night 2's) of the events whose customer differs between its events
    # and night 1's, compared by key
    moves: set[tuple[str | None, str | None]] | None
    event_moves: set[tuple[str | None, str | None]]


def add_manifest(con: duckdb.DuckDBPyConnection) -> None:
    """`ingest_files` as load_lake copies it from the lake: events per source file."""
    con.execute(create_table_sql("ingest_files", INGEST_FILE_COLUMNS))
    con.execute(
        "INSERT INTO ingest_files (source, source_file, events_loaded) "
        "SELECT source, source_file, count(*) FROM stg_events GROUP BY ALL"
    )


def two_nights(
    root: Path, first: list[Event], second: list[Event], manifest: bool = True, **identity: Any
) -> Night2:
    """Night 1 with `stitch`; night 2 (first + second) with `stitch` and `stitch_incremental`,
    each from a copy of night 1's tables and lake state. With `manifest`, the new events
    are found by source file (night2.csv), else by key."""
    night1 = warehouse_with(first)
    stitch(night1, make_config(root / "night1", **identity), now=NIGHT_1)
    before = owners(night1)
    summaries, tables, state = {}, {}, {}
    for way in ("full", "incremental"):
        shutil.copytree(root / "night1" / "lake", root / way / "lake")
        cfg = make_config(root / way, **identity)
        con = warehouse_with(first)
        add_events(con, second, len(first) + 1, "night2.csv")
        if manifest:
            add_manifest(con)
        copy_tables(night1, con)
        run = stitch if way == "full" else stitch_incremental
        summaries[way] = run(con, cfg, now=NIGHT_2)
        tables[way] = {name: rows(con, name) for name in OUTPUTS}
        if way == "full":
            after = owners(con)
        else:
            scope = {r[0] for r in con.execute("SELECT customer_id FROM stitch_scope").fetchall()}
            moves, event_moves = moved_events(night1, con)
        con.close()
        with warehouse.connection(lake.state_path(cfg), read_only=True) as con:
            state[way] = {name: rows(con, name) for name in STATE}
    night1.close()
    changed = {c for c in before.keys() | after.keys() if before.get(c) != after.get(c)}
    return Night2(
        summaries["full"], summaries["incremental"], tables, state, scope, changed, moves,
        event_moves,
    )  # fmt: skip


def moved_events(
    night1: duckdb.DuckDBPyConnection, con: duckdb.DuckDBPyConnection
) -> tuple[set[tuple[str | None, str | None]] | None, set[tuple[str | None, str | None]]]:
    """`con`'s TEMP stitch_event_moves as a set (None when absent), and what comparing its
    events with night 1's by key finds: (night 1's customer, tonight's) where they differ."""
    recorded = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
        [EVENT_MOVES],
    ).fetchall()[0][0]
    moves = (
        {
            tuple(r)
            for r in con.execute(f"SELECT last_night_id, tonight_id FROM {EVENT_MOVES}").fetchall()
        }
        if recorded
        else None
    )
    con.register(
        "night1_events",
        night1.sql("SELECT source, event_id, customer_id FROM events").to_arrow_table(),
    )
    found = con.execute(
        "SELECT DISTINCT n.customer_id, e.customer_id FROM events AS e "
        "FULL JOIN night1_events AS n ON n.source = e.source AND n.event_id = e.event_id "
        "WHERE n.customer_id IS DISTINCT FROM e.customer_id"
    ).fetchall()
    con.unregister("night1_events")
    return moves, {tuple(r) for r in found}  # type: ignore[misc]


def rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def owners(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """customer_id -> (its event ids, its identifiers)."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for customer, event in con.execute("SELECT customer_id, event_id FROM events").fetchall():
        if customer is not None:
            found.setdefault(customer, (set(), set()))[0].add(event)
    for customer, kind, value in con.execute(
        "SELECT customer_id, identifier_kind, identifier_value FROM identity_map"
    ).fetchall():
        if customer is not None:
            found.setdefault(customer, (set(), set()))[1].add(f"{kind}:{value}")
    return {c: (frozenset(e), frozenset(i)) for c, (e, i) in found.items()}


def assert_same(result: Night2) -> None:
    assert result.tables["incremental"] == result.tables["full"]
    assert result.state["incremental"] == result.state["full"]
    assert result.incremental.iterations == result.full.iterations
    assert result.changed <= result.scope  # complete: every changed customer is listed
    if result.incremental.mode == "incremental":
        assert result.scope == result.changed  # and exact
        # its record of moved events is what comparing the events with night 1's finds
        assert result.moves == result.event_moves
    else:
        assert result.moves is None  # a fallback leaves no record to be trusted


@pytest.mark.parametrize("manifest", [True, False], ids=["by-file", "by-key"])
def test_a_new_event_merges_two_old_customers(tmp_path, manifest):
    # night 1: {c1, u1} and {m2, k2} are two customers; night 2: u1 and m2 on one event.
    # The older id (first created; both made on night 1, so the smaller id) is kept, the other
    # is merged, and all three events now belong to the kept customer.
    result = two_nights(
        tmp_path,
        [{"cookie_id": "c1", "user_id": "u1"}, {"email_hash": "m2", "contact_id": "k2"}],
        [{"user_id": "u1", "email_hash": "m2"}],
        manifest=manifest,
    )
    assert_same(result)
    assert result.incremental.mode == "incremental"
    assert result.incremental.merge_count == 1
    assert result.incremental.customer_count == 1
    assert len(result.scope) == 2  # the kept id got events, the merged id lost its own
    merges = [r for r in result.tables["incremental"]["identity_merges"] if not r[4]]
    assert [r[3] for r in merges] in (["email:m2 -- user_id:u1"], ["user_id:u1 -- email:m2"])


def test_a_new_event_makes_an_identifier_shared_and_splits_its_customer(tmp_path):
    # limit 2 partners: phone p1 is seen with k1 and k2 on night 1 (one customer {p1, k1, k2});
    # night 2 adds k3 -> p1 has 3 partners, is shared, and k1, k2, k3 are three customers.
    result = two_nights(
        tmp_path,
        [{"contact_id": "k1", "phone_hash": "p1"}, {"contact_id": "k2", "phone_hash": "p1"}],
        [{"contact_id": "k3", "phone_hash": "p1"}],
        max_partners_per_identifier=2,
    )
    assert_same(result)
    assert result.incremental.mode == "incremental"
    assert (result.incremental.customer_count, result.incremental.shared_identifier_count) == (3, 1)
    # the old customer keeps its id on one part, the others are new, all three listed
    assert len(result.scope) == 3


def test_a_newly_shared_identifier_that_held_the_old_id(tmp_path):
    # limit 2: cookie c1 linked u1 and u2 (customer C). Night 2 adds u3: c1 is shared. Each
    # of c1, u1, u2 claims C once; the smallest identifier, cookie:c1, wins it, but a shared
    # identifier has no customer: C is gone, u1, u2, u3 get new ids (created tonight), and
    # the state must not list C's never-used id twice (C = the hash of cookie:c1)
    result = two_nights(
        tmp_path,
        [{"cookie_id": "c1", "user_id": "u1"}, {"cookie_id": "c1", "user_id": "u2"}],
        [{"cookie_id": "c1", "user_id": "u3"}],
        max_partners_per_identifier=2,
    )
    assert_same(result)
    assert result.incremental.mode == "incremental"
    assert (result.incremental.customer_count, result.incremental.merge_count) == (3, 0)
    assert len(result.scope) == 4  # C and the three new customers


def test_a_brand_new_customer_touches_nobody_else(tmp_path):
    result = two_nights(
        tmp_path,
        [{"cookie_id": "c1", "user_id": "u1"}, {"cookie_id": "c2"}],
        [{"cookie_id": "c9", "email_hash": "m9"}],
    )
    assert_same(result)
    assert result.incremental.mode == "incremental"
    assert len(result.scope) == 1  # only the new customer
    assert result.incremental.customer_count == 3


def test_new_events_of_an_existing_customer_keep_its_id(tmp_path):
    result = two_nights(
        tmp_path,
        [{"cookie_id": "c1", "user_id": "u1"}, {"cookie_id": "c2"}],
        [{"user_id": "u1"}, {"cookie_id": "c1", "email_hash": "m1"}],
    )
    assert_same(result)
    assert result.incremental.mode == "incremental"
    (customer,) = result.scope
    assert customer in {r[2] for r in result.tables["full"]["identity_map"] if r[1] == "u1"}


def test_changed_identity_rules_fall_back_to_the_full_stitch(tmp_path, caplog):
    # night 1 saved the fingerprint of max_partners 25; tonight's config says 2: the state's
    # customers were made under other rules, so only the full stitch is certain
    with warehouse.connection(tmp_path / "wh.duckdb") as con:
        con.execute(create_table_sql("stg_events", LAKE_EVENT_COLUMNS))
        add_events(con, [{"cookie_id": "c1", "user_id": "u1"}], 1)
        stitch(con, make_config(tmp_path), now=NIGHT_1)
        add_events(con, [{"cookie_id": "c2"}], 2)
        with caplog.at_level(logging.INFO, logger="cjm_analytics.identity"):
            summary = stitch_incremental(
                con, make_config(tmp_path, max_partners_per_identifier=2), now=NIGHT_2
            )
        scope = con.execute("SELECT count(*) FROM stitch_scope").fetchall()[0][0]
    assert summary.mode == "full"
    assert "cfg.identity" in summary.fallback_reason
    assert "cfg.identity" in caplog.text
    assert scope == summary.scope_customer_count == 2  # every customer: {c1, u1} and {c2}


def test_a_warehouse_without_previous_tables_falls_back(tmp_path):
    with warehouse.connection(tmp_path / "wh.duckdb") as con:
        con.execute(create_table_sql("stg_events", LAKE_EVENT_COLUMNS))
        add_events(con, [{"cookie_id": "c1"}], 1)
        summary = stitch_incremental(con, make_config(tmp_path), now=NIGHT_1)
    assert summary.mode == "full"
    assert "no previous events" in summary.fallback_reason
    assert summary.scope_customer_count == summary.customer_count == 1


def test_a_touched_customer_that_was_resplit_falls_back(tmp_path):
    # limit 3: k1-u1-m1-c1 is re-split into {k1, u1, m1} and {c1}, still linked by m1-c1.
    # A new event of c1 touches only the cookie's customer: the full stitch must redo it.
    result = two_nights(
        tmp_path,
        [{"contact_id": "k1", "user_id": "u1"}, {"user_id": "u1", "email_hash": "m1"},
         {"email_hash": "m1", "cookie_id": "c1"}],
        [{"cookie_id": "c1"}],
        max_cluster_identifiers=3,
    )  # fmt: skip
    assert_same(result)
    assert result.incremental.mode == "full"
    assert "re-split" in result.incremental.fallback_reason


def test_a_resplit_cluster_touched_as_a_whole_falls_back(tmp_path):
    # limit 3: k1-u1-m1-c1 (4 identifiers) was re-split last night and logged. Tonight m1 is
    # seen with k5 and u6 as well: 3 partners > 2, m1 is shared and no part is over the
    # limit any more. Both parts are touched (c1 has a new event too), so no link leaves the
    # scope, but last night's re-split row must not be carried: the full stitch decides.
    result = two_nights(
        tmp_path,
        [{"contact_id": "k1", "user_id": "u1"}, {"user_id": "u1", "email_hash": "m1"},
         {"email_hash": "m1", "cookie_id": "c1"}],
        [{"email_hash": "m1", "contact_id": "k5"}, {"email_hash": "m1", "user_id": "u6"},
         {"cookie_id": "c1"}],
        max_cluster_identifiers=3, max_partners_per_identifier=2,
    )  # fmt: skip
    assert_same(result)
    assert result.incremental.mode == "full"
    assert "re-split last night" in result.incremental.fallback_reason
    assert result.full.clusters_over_limit == 0


POOL = {
    "cookie_id": ["c1", "c2", "c3", "c4", "c5"],
    "user_id": ["u1", "u2", "u3"],
    "email_hash": ["m1", "m2", "m3"],
    "phone_hash": ["p1", "p2", "SWITCHBOARD"],
    "contact_id": ["k1", "k2", "k3"],
    "case_id": ["A", "B"],
}
events_strategy = st.lists(
    st.dictionaries(
        st.sampled_from(list(POOL)), st.sampled_from(range(5)), min_size=0, max_size=3
    ).map(lambda e: {c: POOL[c][i % len(POOL[c])] for c, i in e.items()}),
    max_size=10,
)
rules_strategy = st.fixed_dictionaries(
    {
        "max_partners_per_identifier": st.sampled_from([1, 2, 3, 25]),
        "max_cluster_identifiers": st.sampled_from([3, 5, 200]),
        "links": st.sampled_from([None, [["cookie", "user_id"], ["user_id", "email"],
                                        ["email", "contact_id"], ["contact_id", "phone"]]]),
        "precedence": st.sampled_from([None, ["cookie", "phone", "email", "user_id"]]),
        "has_switchboard": st.booleans(),
    }
)  # fmt: skip


# 15 examples keep this test near 15 CPU s (three stitches each); 600 examples of the same
# strategies passed in a stress run while writing ADR 0091 (532 incremental, 68 fallbacks)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=events_strategy, second=events_strategy, rules=rules_strategy)
def test_incremental_equals_full_on_random_graphs(tmp_path_factory, first, second, rules):
    # random identifiers from small pools, so events share them often: merges, splits,
    # shared identifiers (by count and listed), re-splits and unlinked kinds all happen
    root = tmp_path_factory.mktemp("night")
    salt = make_config(root).pii_salt()
    switchboard = pseudonymize("phone", "+49 30 1234 5000", salt)
    for event in first + second:
        if event.get("phone_hash") == "SWITCHBOARD":
            event["phone_hash"] = switchboard
    identity = {k: v for k, v in rules.items() if v is not None and k != "has_switchboard"}
    if rules["has_switchboard"]:
        identity["shared_identifiers"] = {"phone": ["+49 (30) 1234-5000"]}
    assert_same(two_nights(root, first, second, **identity))
