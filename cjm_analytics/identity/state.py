"""The identity state in the lake: identifier -> customer map, customers' creation times,
component rounds and the fingerprint of the rules; loaded before and saved after a stitch."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import duckdb
import pyarrow as pa

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig
from cjm_analytics.identity.identifiers import _kind_ranks, _link_pairs, shared_values
from cjm_analytics.ingest import lake

#: version of the stitching rules in the state fingerprint: bump it when a change to this
#: package would give other customers from the same events and config
RULES_VERSION = 1


def identity_fingerprint(cfg: JourneyConfig) -> str:
    """sha256 of everything in `cfg.identity` (and the salt, through the hashed shared
    values) that decides customers; kept in the state so the incremental stitch can tell
    that the rules of the previous night are still the rules of this one."""
    rules = cfg.identity
    payload = {
        "rules_version": RULES_VERSION,
        "ranks": _kind_ranks(cfg),
        "links": sorted(set(_link_pairs(cfg))),
        "shared": sorted(shared_values(cfg)),
        "max_partners_per_identifier": rules.max_partners_per_identifier,
        "max_cluster_identifiers": rules.max_cluster_identifiers,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


_STATE_TABLES = {
    "identity_state_map": "kind VARCHAR, value VARCHAR, customer_id VARCHAR",
    "identity_customers": "customer_id VARCHAR, created_at TIMESTAMP",
    # per customer whose component needed rounds > 0: the rounds (see `components`)
    "identity_state_rounds": "customer_id VARCHAR, rounds BIGINT",
    "identity_state_settings": "fingerprint VARCHAR, saved_at TIMESTAMP",
}


def _create_state_tables(state: duckdb.DuckDBPyConnection) -> None:
    for name, columns in _STATE_TABLES.items():
        state.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")


def _load_previous_state(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> None:
    """prev_map(kind, value, customer_id) and prev_customers(customer_id, created_at)."""
    empty_map = pa.table({"kind": pa.array([], pa.string()), "value": pa.array([], pa.string()),
                          "customer_id": pa.array([], pa.string())})  # fmt: skip
    empty_customers = pa.table({"customer_id": pa.array([], pa.string()),
                                "created_at": pa.array([], pa.timestamp("us"))})  # fmt: skip
    previous, customers = empty_map, empty_customers
    if lake.state_path(cfg).exists():
        with warehouse.connection(lake.state_path(cfg), read_only=True) as state:
            tables = {
                r[0] for r in state.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            if "identity_state_map" in tables:
                previous = state.sql(
                    "SELECT kind, value, customer_id FROM identity_state_map"
                ).to_arrow_table()
                customers = state.sql(
                    "SELECT customer_id, created_at FROM identity_customers"
                ).to_arrow_table()
    for name, table in (("prev_map", previous), ("prev_customers", customers)):
        con.register("state_input", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM state_input")
        con.unregister("state_input")


def _save_state(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime) -> None:
    """Replace the identifier -> customer map in the lake state, in one transaction."""
    mapping = con.sql(
        "SELECT kind, value, customer_id FROM node_customer WHERE customer_id IS NOT NULL"
    ).to_arrow_table()
    fresh = con.sql("SELECT DISTINCT customer_id FROM component_ids WHERE is_new").to_arrow_table()
    rounds = con.sql(_CUSTOMER_ROUNDS_SQL).to_arrow_table()
    with lake.open_state(cfg) as state:
        _create_state_tables(state)
        state.execute("BEGIN")
        state.register("map_input", mapping)
        state.register("fresh_input", fresh)
        state.register("rounds_input", rounds)
        state.execute("DELETE FROM identity_state_map")
        state.execute("INSERT INTO identity_state_map SELECT * FROM map_input")
        state.execute("DELETE FROM identity_state_rounds")
        state.execute("INSERT INTO identity_state_rounds SELECT * FROM rounds_input")
        _save_settings_and_fresh(state, cfg, now)
        state.execute("COMMIT")


#: per customer, the rounds of its component (components that needed none are left out)
_CUSTOMER_ROUNDS_SQL = (
    "SELECT nc.customer_id, max(r.rounds) AS rounds FROM stitch_node_rounds r "
    "JOIN node_customer nc USING (node_id) WHERE nc.customer_id IS NOT NULL GROUP BY nc.customer_id"
)


def _save_settings_and_fresh(
    state: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime
) -> None:
    """New customers' creation time (from the registered `fresh_input`) and the fingerprint."""
    state.execute(
        "INSERT INTO identity_customers SELECT DISTINCT customer_id, ? FROM fresh_input "
        "WHERE customer_id NOT IN (SELECT customer_id FROM identity_customers)",
        [now],
    )
    state.execute("DELETE FROM identity_state_settings")
    state.execute(
        "INSERT INTO identity_state_settings VALUES (?, ?)", [identity_fingerprint(cfg), now]
    )


def _load_touched_state(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> int:
    """prev_customers for the touched customers' ids, from the lake state; returns the
    largest component rounds of the untouched customers (0 when none needed rounds)."""
    touched = con.sql("SELECT customer_id FROM inc_touched_customers").to_arrow_table()
    with warehouse.connection(lake.state_path(cfg), read_only=True) as state:
        state.register("touched_input", touched)
        customers = state.sql(
            "SELECT customer_id, created_at FROM identity_customers "
            "WHERE customer_id IN (SELECT customer_id FROM touched_input)"
        ).to_arrow_table()
        rounds = state.execute(
            "SELECT coalesce(max(rounds), 0) FROM identity_state_rounds "
            "WHERE customer_id NOT IN (SELECT customer_id FROM touched_input)"
        ).fetchall()[0][0]  # type: ignore[index]
    con.register("customers_input", customers)
    con.execute("CREATE OR REPLACE TEMP TABLE prev_customers AS SELECT * FROM customers_input")
    con.unregister("customers_input")
    return int(rounds)


def _save_state_increment(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, now: datetime
) -> None:
    """Replace the scope's rows of the state map and rounds, in one transaction; new
    customers (and the never-used ids of shared identifiers, as `stitch` does) get `now`."""
    scope = con.sql("SELECT kind, value FROM inc_scope").to_arrow_table()
    mapping = con.sql(
        "SELECT kind, value, customer_id FROM node_customer WHERE customer_id IS NOT NULL"
    ).to_arrow_table()
    fresh = con.sql(  # a shared identifier outside the scope is its own component, no claim
        "SELECT customer_id FROM component_ids WHERE is_new UNION "
        "SELECT 'cus_' || left(sha256(h.kind || ':' || h.value), 16) FROM stitch_shared h "
        "ANTI JOIN inc_scope s ON s.kind = h.kind AND s.value = h.value"
    ).to_arrow_table()
    rounds = con.sql(_CUSTOMER_ROUNDS_SQL).to_arrow_table()
    replaced = con.sql(
        "SELECT customer_id FROM inc_touched_customers UNION "
        "SELECT customer_id FROM node_customer WHERE customer_id IS NOT NULL"
    ).to_arrow_table()
    with lake.open_state(cfg) as state:
        state.execute("BEGIN")
        for name, table in (("scope_input", scope), ("map_input", mapping),
                            ("fresh_input", fresh), ("rounds_input", rounds),
                            ("replaced_input", replaced)):  # fmt: skip
            state.register(name, table)
        state.execute(
            "DELETE FROM identity_state_map USING scope_input s "
            "WHERE identity_state_map.kind = s.kind AND identity_state_map.value = s.value"
        )
        state.execute("INSERT INTO identity_state_map SELECT * FROM map_input")
        state.execute(
            "DELETE FROM identity_state_rounds "
            "WHERE customer_id IN (SELECT customer_id FROM replaced_input)"
        )
        state.execute("INSERT INTO identity_state_rounds SELECT * FROM rounds_input")
        _save_settings_and_fresh(state, cfg, now)
        state.execute("COMMIT")
