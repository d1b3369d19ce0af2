"""Identity stitching on hand-built stg_events: chains, guards, stable ids across nights."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig, parse_config
from cjm_analytics.identity import components, score_stitching, stitch
from cjm_analytics.pii import pseudonymize
from cjm_analytics.schema import EVENT_COLUMNS, LAKE_EVENT_COLUMNS, create_table_sql

NIGHT_1, NIGHT_2, NIGHT_3 = datetime(2024, 5, 1), datetime(2024, 5, 2), datetime(2024, 5, 3)


def make_config(root: Path, threads: int | None = None, **identity: Any) -> JourneyConfig:
    source = {
        "path": "raw/*.csv", "format": "csv", "channel": "web",
        "columns": {"event_name": "e", "event_at": "t"}, "identifiers": {"cookie": "c"},
    }  # fmt: skip
    return parse_config(
        {"paths": {"lake": "lake"}, "sources": {"web": source}, "identity": identity,
         "warehouse": {"threads": threads}},
        root,
    )  # fmt: skip


def night(events: list[dict[str, str]]) -> duckdb.DuckDBPyConnection:
    """A fresh warehouse whose stg_events holds `events` (identifier columns by name)."""
    con = warehouse.connect()
    con.execute(create_table_sql("stg_events", LAKE_EVENT_COLUMNS))
    for i, event in enumerate(events, start=1):
        row = {
            "event_id": f"e{i}",
            "source": "web",
            "event_name": "x",
            "event_at": datetime(2024, 4, 1),
            **event,
        }
        columns = list(row)
        con.execute(
            f"INSERT INTO stg_events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            list(row.values()),
        )
    return con


def customers(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    """event_id -> customer_id."""
    return dict(con.execute("SELECT event_id, customer_id FROM events").fetchall())


def test_chain_across_three_sources_is_one_customer(tmp_path):
    # cookie c1 -> user u1 -> email m1 -> contact k1 -> phone p1: five identifiers, one person;
    # a second cookie c2 never co-occurs with anything: its own customer.
    con = night([
        {"cookie_id": "c1", "user_id": "u1"},
        {"user_id": "u1", "email_hash": "m1"},
        {"source": "crm", "email_hash": "m1", "contact_id": "k1"},
        {"source": "crm", "contact_id": "k1", "phone_hash": "p1"},
        {"source": "calls", "phone_hash": "p1"},
        {"cookie_id": "c2"},
    ])  # fmt: skip
    summary = stitch(con, make_config(tmp_path), now=NIGHT_1)
    ids = customers(con)
    assert len({ids[f"e{i}"] for i in range(1, 6)}) == 1
    assert ids["e6"] not in (None, ids["e1"])
    assert (
        summary.customer_count,
        summary.identifier_count,
        summary.largest_cluster_identifiers,
    ) == (2, 6, 5)
    assert list(con.execute("SELECT * FROM events LIMIT 0").fetchdf().columns) == list(
        EVENT_COLUMNS
    )


def test_shared_switchboard_phone_never_links(tmp_path):
    salt_cfg = make_config(tmp_path)
    board = pseudonymize("phone", "+49 30 1234 5000", salt_cfg.pii_salt())
    con = night([
        {"contact_id": "k1", "phone_hash": board},
        {"contact_id": "k2", "phone_hash": board},
        {"phone_hash": board},  # a call from the switchboard: nobody in particular
        # p9 is seen with 3 contacts > max_partners_per_identifier=2: shared by count
        {"contact_id": "k3", "phone_hash": "p9"},
        {"contact_id": "k4", "phone_hash": "p9"},
        {"contact_id": "k5", "phone_hash": "p9"},
    ])  # fmt: skip
    cfg = make_config(
        tmp_path,
        shared_identifiers={"phone": ["+49 (30) 1234-5000"]},
        max_partners_per_identifier=2,
    )
    summary = stitch(con, cfg, now=NIGHT_1)
    ids = customers(con)
    assert ids["e3"] is None
    assert len({ids["e1"], ids["e2"], ids["e4"], ids["e5"], ids["e6"]}) == 5
    assert summary.shared_identifier_count == 2
    shared = con.execute(
        "SELECT identifier_value, partner_count FROM identity_map WHERE is_shared ORDER BY 2"
    ).fetchall()
    assert shared == [(board, 2), ("p9", 3)]
    assert con.execute("SELECT count(*) FROM identity_merges WHERE is_blocked").fetchall() == [(2,)]


def test_a_new_night_extends_a_known_customer_without_changing_its_id(tmp_path):
    cfg = make_config(tmp_path)
    first = night([{"cookie_id": "c1", "user_id": "u1"}])
    stitch(first, cfg, now=NIGHT_1)
    known = customers(first)["e1"]
    second = night([
        {"cookie_id": "c1", "user_id": "u1"},
        {"user_id": "u1", "email_hash": "m1"},  # the same person leaves an email
        {"cookie_id": "c9"},  # somebody new
    ])  # fmt: skip
    summary = stitch(second, cfg, now=NIGHT_2)
    ids = customers(second)
    assert ids["e1"] == ids["e2"] == known
    assert ids["e3"] != known
    assert summary.merge_count == 0


def test_two_known_customers_merging_keep_the_older_id_and_log_it(tmp_path):
    cfg = make_config(tmp_path)
    stitch(night([{"cookie_id": "c1", "user_id": "u1"}]), cfg, now=NIGHT_1)
    con = night([{"cookie_id": "c1", "user_id": "u1"}, {"email_hash": "m2", "contact_id": "k2"}])
    stitch(con, cfg, now=NIGHT_2)
    older, newer = customers(con)["e1"], customers(con)["e2"]
    assert older != newer
    merged = night([
        {"cookie_id": "c1", "user_id": "u1"},
        {"email_hash": "m2", "contact_id": "k2"},
        {"user_id": "u1", "email_hash": "m2"},  # the bridge
    ])  # fmt: skip
    summary = stitch(merged, cfg, now=NIGHT_3)
    assert set(customers(merged).values()) == {older}
    assert summary.merge_count == 1
    log = merged.execute(
        "SELECT kept_customer_id, merged_customer_id, edge FROM identity_merges WHERE NOT is_blocked"
    ).fetchall()
    assert log == [(older, newer, "email:m2 -- user_id:u1")]


def test_rerunning_a_night_gives_identical_ids_and_new_ids_are_deterministic(tmp_path):
    events = [
        {"cookie_id": "c1", "user_id": "u1"},
        {"cookie_id": "c2"},
        {"contact_id": "k1", "email_hash": "m1"},
    ]
    cfg_a, cfg_b = make_config(tmp_path / "a"), make_config(tmp_path / "b")
    first, again, elsewhere = night(events), night(events), night(events)
    stitch(first, cfg_a, now=NIGHT_1)
    stitch(again, cfg_a, now=NIGHT_1)
    stitch(elsewhere, cfg_b, now=NIGHT_2)  # a separate lake state, another time
    assert customers(first) == customers(again) == customers(elsewhere)


def test_case_identifiers_are_each_their_own_customer(tmp_path):
    con = night([
        {"case_id": "A"}, {"case_id": "A"}, {"case_id": "B"},
        {"case_id": "C", "cookie_id": "c1"}, {"case_id": "D", "cookie_id": "c1"},  # cases never link
    ])  # fmt: skip
    stitch(con, make_config(tmp_path, precedence=["case", "cookie"]), now=NIGHT_1)
    ids = customers(con)
    assert ids["e1"] == ids["e2"]
    assert len({ids["e1"], ids["e3"], ids["e4"], ids["e5"]}) == 4


def test_cluster_over_the_limit_is_resplit_along_the_precedence(tmp_path):
    # contact k1 - user u1 - email m1 - cookie c1: 4 identifiers > limit 3. Dropping the links
    # of the last kind in the precedence (cookie) leaves {k1, u1, m1} and {c1}.
    con = night([
        {"contact_id": "k1", "user_id": "u1"},
        {"user_id": "u1", "email_hash": "m1"},
        {"email_hash": "m1", "cookie_id": "c1"},
    ])  # fmt: skip
    summary = stitch(con, make_config(tmp_path, max_cluster_identifiers=3), now=NIGHT_1)
    owner = dict(con.execute("SELECT identifier_value, customer_id FROM identity_map").fetchall())
    assert owner["k1"] == owner["u1"] == owner["m1"] != owner["c1"]
    assert summary.clusters_over_limit == 1
    # the event holding m1 and c1 goes to the more personal identifier (email before cookie)
    assert customers(con)["e3"] == owner["m1"]


def test_score_stitching_counts_pairs(tmp_path):
    # truth: {c1, u1, c2} is one person, {k1} another. Stitched: {c1, u1}, {c2}, {k1}.
    # true pairs: 3 (c1-u1, c1-c2, u1-c2); predicted: 1 (c1-u1), correct 1.
    # c2 never co-occurs with c1/u1, so the evidence allows only 1 of the 3 true pairs.
    con = night([{"cookie_id": "c1", "user_id": "u1"}, {"cookie_id": "c2"}, {"contact_id": "k1"}])
    cfg = make_config(tmp_path)
    stitch(con, cfg, now=NIGHT_1)
    truth = pa.table({
        "identifier_kind": ["cookie", "user_id", "cookie", "contact_id"],
        "identifier_value": ["c1", "u1", "c2", "k1"],
        "customer_id": ["T1", "T1", "T1", "T2"],
    })  # fmt: skip
    pq.write_table(truth, tmp_path / "truth.parquet")
    score = score_stitching(con, tmp_path / "truth.parquet", cfg)
    assert (score.true_pairs, score.predicted_pairs, score.correct_pairs) == (3, 1, 1)
    assert score.precision == 1.0
    assert score.recall == pytest.approx(1 / 3)
    assert score.recall_ceiling == pytest.approx(1 / 3)


def test_only_configured_kind_pairs_link(tmp_path):
    # links: cookie-user_id only; the email-contact co-occurrence does not join customers
    con = night([{"cookie_id": "c1", "user_id": "u1"}, {"email_hash": "m1", "contact_id": "k1"}])
    stitch(con, make_config(tmp_path, links=[["cookie", "user_id"]]), now=NIGHT_1)
    owner = dict(con.execute("SELECT identifier_value, customer_id FROM identity_map").fetchall())
    assert owner["c1"] == owner["u1"]
    assert owner["m1"] != owner["k1"]


def _union_find_minimum(size: int, edges: list[tuple[int, int]]) -> dict[int, int]:
    """node -> smallest node of its component, by a plain union-find (the reference)."""
    parent = list(range(size))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in range(size)}


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, 60),
    pairs=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 59)), max_size=80),
    chain_order=st.permutations(list(range(60))),
    with_chain=st.booleans(),
)
def test_components_equal_a_union_find(size, pairs, chain_order, with_chain):
    # random edges, or a chain through the nodes in shuffled order (the longest path a
    # graph of this size can have): labels must be each component's smallest node
    order = [n for n in chain_order if n < size]
    edges = list(pairwise(order)) if with_chain else pairs
    edges = [(a, b) for a, b in edges if a < size and b < size and a != b]
    con = warehouse.connect()
    con.register("nodes_input", pa.table({"node_id": pa.array(range(size), pa.int64())}))
    con.execute("CREATE TEMP TABLE t_nodes AS SELECT * FROM nodes_input")
    con.register("edges_input", pa.table({"a": pa.array([a for a, _ in edges], pa.int64()),
                                          "b": pa.array([b for _, b in edges], pa.int64())}))  # fmt: skip
    con.execute("CREATE TEMP TABLE t_edges AS SELECT * FROM edges_input")
    components(con, "t_nodes", "t_edges", "t_labels")
    assert dict(con.execute("SELECT node_id, label FROM t_labels").fetchall()) == (
        _union_find_minimum(size, edges)
    )
