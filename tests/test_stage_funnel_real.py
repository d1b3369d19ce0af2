"""Ordered-mode stage counts on real logs equal their published reference figures exactly.

Each log's `reference_figures.json` lists funnel stages (a stage may be a set of
activities, "A_APPROVED|A_ACTIVATED") and `ordered_cases`: cases that reach the stage
after reaching the previous one, positions ordered by (timestamp, source_row). The
`events` table is built straight from events.csv.gz (one case = one customer = one
journey: the inactivity timeout is longer than any case).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from cjm_analytics import warehouse
from cjm_analytics.config import parse_config
from cjm_analytics.journeys import build_journey_models

LOGS = [
    "bpi2012_loan_application",
    "helpdesk_tickets",
    "roadtraffic_100",
    "sepsis_cases",
    "receipt_wabo",
    "olist_marketing_funnel",
    "otto_sessions_sample",
]


def _load_log(con, folder: Path) -> None:
    con.execute(
        """
        CREATE OR REPLACE TABLE events AS
        SELECT
            CAST(source_row AS VARCHAR) AS event_id, 'log' AS source, activity AS event_name,
            CAST(replace(timestamp, 'Z', '') AS TIMESTAMP) AS event_at, 'crm' AS channel,
            NULL::VARCHAR AS cookie_id, NULL::VARCHAR AS user_id, NULL::VARCHAR AS email_hash,
            NULL::VARCHAR AS phone_hash, NULL::VARCHAR AS contact_id,
            CAST(customer_id AS VARCHAR) AS case_id, NULL::VARCHAR AS page_url,
            NULL::VARCHAR AS device, NULL::VARCHAR AS region, NULL::VARCHAR AS utm_source,
            NULL::VARCHAR AS utm_medium, NULL::VARCHAR AS utm_campaign, NULL::DOUBLE AS amount,
            NULL::DOUBLE AS csat_score, NULL::DOUBLE AS nps_score, NULL::VARCHAR AS outcome,
            NULL::JSON AS properties, 'events.csv.gz' AS source_file,
            CAST(source_row AS BIGINT) AS source_row, 0 AS source_event_seq,
            CAST(customer_id AS VARCHAR) AS customer_id
        FROM read_csv(?, all_varchar = true, header = true)
        """,
        [str(folder / "events.csv.gz")],
    )


def _ordered_config(reference_stages: list[dict]) -> object:
    stages = [
        {
            "name": f"s{i}",
            "rules": [{"event": entry["stage"].split("|")}],
            "success": i == len(reference_stages),
        }
        for i, entry in enumerate(reference_stages, start=1)
    ]
    return parse_config(
        {
            "sources": {
                "log": {
                    "path": "x",
                    "format": "csv",
                    "channel": "crm",
                    "identifiers": {"case": "c"},
                    "columns": {"event_name": "a", "event_at": "t"},
                },
            },
            "stages": stages,
            "timeouts": {"journey_inactivity_days": 100_000, "abandonment_days": 14},
            "funnel": {"mode": "ordered"},
        },
        Path("."),
    )


@pytest.mark.parametrize("log", LOGS)
def test_ordered_stage_counts_equal_reference(real_data: Path, log: str) -> None:
    folder = real_data / log
    reference = json.loads((folder / "reference_figures.json").read_text())["funnel"]["stages"]
    cfg = _ordered_config(reference)
    with warehouse.connection() as con:
        _load_log(con, folder)
        build_journey_models(con, cfg, as_of=datetime(2030, 1, 1))
        counts = [
            row[0]
            for row in con.execute(
                "SELECT reached_count FROM stage_funnel ORDER BY stage_order"
            ).fetchall()
        ]
    assert counts == [entry["ordered_cases"] for entry in reference]
