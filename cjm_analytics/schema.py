"""The canonical tables every layer agrees on (names and DuckDB types).

These are contracts between modules: ingest writes `LAKE_EVENT_COLUMNS` to the lake;
identity adds `customer_id` to make the warehouse table `events`; stages map events to
`touchpoints`; journeys group touchpoints. Tests build small tables from these too.
All timestamps are UTC, stored as TIMESTAMP (no zone): see docs/adr/0004-utc.md.
"""

from __future__ import annotations

#: One row per normalized source event, as stored in the lake (Parquet).
LAKE_EVENT_COLUMNS: dict[str, str] = {
    "event_id": "VARCHAR",  # unique per source: the source's own id, or derived (see ingest)
    "source": "VARCHAR",  # source name from journey.yaml
    "event_name": "VARCHAR",
    "event_at": "TIMESTAMP",  # UTC
    "channel": "VARCHAR",  # web, crm, phone, store... (source default or mapped column)
    # identifiers (email and phone only as salted hashes)
    "cookie_id": "VARCHAR",
    "user_id": "VARCHAR",
    "email_hash": "VARCHAR",
    "phone_hash": "VARCHAR",
    "contact_id": "VARCHAR",
    "case_id": "VARCHAR",
    # common attributes
    "page_url": "VARCHAR",
    "device": "VARCHAR",
    "region": "VARCHAR",
    "utm_source": "VARCHAR",
    "utm_medium": "VARCHAR",
    "utm_campaign": "VARCHAR",
    "amount": "DOUBLE",
    "csat_score": "DOUBLE",
    "nps_score": "DOUBLE",
    "outcome": "VARCHAR",
    "properties": "JSON",  # the source's extra columns, {name: value as text}
    # lineage
    "source_file": "VARCHAR",
    "source_row": "BIGINT",  # 1-based data row in the source file
    # the event's place among the events one row gives, in the order the config lists them
    # (1, 2, ... for wide records and list elements; 0 for a row that is one event); breaks
    # ties after source_row (ADR 0063)
    "source_event_seq": "INTEGER",
}

#: identifier kind (journey.yaml) -> event column holding it.
IDENTIFIER_COLUMNS: dict[str, str] = {
    "cookie": "cookie_id",
    "user_id": "user_id",
    "email": "email_hash",
    "phone": "phone_hash",
    "contact_id": "contact_id",
    "case": "case_id",
}

#: Warehouse `events`: the lake events plus the stitched customer.
EVENT_COLUMNS: dict[str, str] = {**LAKE_EVENT_COLUMNS, "customer_id": "VARCHAR"}

#: Warehouse `touchpoints`: one row per event of a known customer, in journey order.
#: `stage`/`stage_order` are NULL for events no stage rule matches (kept for mining).
TOUCHPOINT_COLUMNS: dict[str, str] = {
    "touchpoint_id": "VARCHAR",  # = event_id qualified by source
    "event_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "journey_id": "VARCHAR",
    "touchpoint_seq": "BIGINT",  # 1-based position inside the journey (event_at, source, source_row, source_event_seq)
    "source": "VARCHAR",
    "event_name": "VARCHAR",
    "event_at": "TIMESTAMP",
    "stage": "VARCHAR",
    "stage_order": "INTEGER",  # 1-based position of the stage in journey.yaml
    "channel": "VARCHAR",
}

#: Warehouse `journeys`: one row per journey.
JOURNEY_COLUMNS: dict[str, str] = {
    "journey_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "first_touch_at": "TIMESTAMP",
    "last_touch_at": "TIMESTAMP",
    "touchpoint_count": "BIGINT",
    "furthest_stage": "VARCHAR",
    "furthest_stage_order": "INTEGER",
    "status": "VARCHAR",  # converted | abandoned | in_progress (as of the run's as-of time)
    "is_converted": "BOOLEAN",
}


def create_table_sql(name: str, columns: dict[str, str]) -> str:
    """`CREATE TABLE name (...)` for one of the contracts above (names are constants)."""
    body = ", ".join(f"{column} {type_}" for column, type_ in columns.items())
    return f"CREATE TABLE {name} ({body})"
