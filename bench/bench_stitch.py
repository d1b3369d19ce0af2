"""Identity stitching at size: N customers built directly as stg_events, then `stitch`.

    .venv/bin/python bench/bench_stitch.py --customers 1000000

Each customer gets 1-4 cookies (one logs in with the user id), a user id, an email on a login
event, and every third one a CRM contact with email and phone; 1% of CRM rows use one
switchboard phone. No files, no ingest: this measures the graph work and the `events` write.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CJM_PII_SALT", "bench-salt-not-a-secret-0123456789")

from cjm_analytics import warehouse
from cjm_analytics.config import parse_config
from cjm_analytics.identity import stitch
from cjm_analytics.schema import LAKE_EVENT_COLUMNS, create_table_sql

EVENTS_SQL = """
INSERT INTO stg_events (event_id, source, event_name, event_at, channel, cookie_id, user_id,
    email_hash, phone_hash, contact_id)
WITH people AS (SELECT range AS p FROM range(?)),
cookies AS (SELECT p, unnest(range(1 + p % 4)) AS k FROM people),
web AS (  -- a few page views per cookie, the first cookie logs in with the user id
    SELECT 'w' || p || '-' || k || '-' || v AS event_id, 'web' AS source, 'page_view' AS event_name,
        TIMESTAMP '2024-01-01' + to_seconds(p % 86400 + v) AS event_at, 'web' AS channel,
        'c' || p || '-' || k AS cookie_id,
        CASE WHEN k = 0 AND v = 0 THEN 'u' || p END AS user_id,
        CASE WHEN k = 0 AND v = 1 THEN 'm' || p END AS email_hash,
        NULL AS phone_hash, NULL AS contact_id
    FROM cookies, range(3) AS t(v)
),
crm AS (
    SELECT 'r' || p, 'crm', 'contact_created', TIMESTAMP '2024-01-02', 'crm', NULL, NULL,
        'm' || p, CASE WHEN p % 100 = 0 THEN 'switchboard' ELSE 'ph' || p END, 'k' || p
    FROM people WHERE p % 3 = 0
)
SELECT * FROM web UNION ALL SELECT * FROM crm
"""


def main(customers: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cfg = parse_config({"paths": {"lake": "lake"}, "sources": {"web": {
            "path": "x/*.csv", "format": "csv", "channel": "web",
            "columns": {"event_name": "e", "event_at": "t"}, "identifiers": {"cookie": "c"},
        }}}, Path(folder))  # fmt: skip
        with warehouse.connection(Path(folder) / "wh.duckdb") as con:
            con.execute(create_table_sql("stg_events", LAKE_EVENT_COLUMNS))
            began = time.perf_counter()
            con.execute(EVENTS_SQL, [customers])
            built = time.perf_counter() - began
            began = time.perf_counter()
            summary = stitch(con, cfg)
            first = time.perf_counter() - began
            began = time.perf_counter()
            again = stitch(con, cfg)
            second = time.perf_counter() - began
    print(
        f"{customers} customers, {summary.event_count} events, {summary.identifier_count} identifiers"
    )
    print(f"built stg_events in {built:.1f} s")
    print(f"stitch, first night (no state): {first:.1f} s -> {summary.customer_count} customers, "
          f"{summary.shared_identifier_count} shared, {summary.iterations} iterations")  # fmt: skip
    print(f"stitch, same night again (with state): {second:.1f} s -> {again.customer_count} customers, "
          f"{again.merge_count} merges")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    main(parser.parse_args().customers)
