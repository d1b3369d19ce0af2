"""The event funnel on a real log with a published answer (BPI Challenge 2012 loan
applications, ../shared/data/real/bpi2012_loan_application, figures in its PROVENANCE)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from cjm_analytics.funnels import event_funnel

STAGES = [
    "A_SUBMITTED",
    "A_PREACCEPTED",
    "A_ACCEPTED",
    "O_SENT",
    "O_SENT_BACK",
    "A_APPROVED|A_ACTIVATED",
]


@pytest.mark.real
def test_bpi2012_ordered_funnel_matches_the_published_figures(real_data: Path):
    folder = real_data / "bpi2012_loan_application"
    # the published funnel: COMPLETE events only, ordered, no window; the last stage is
    # "approved or activated", so both names are mapped to that stage's label
    events = (
        pl.read_csv(folder / "events.csv.gz", schema_overrides={"customer_id": pl.String})
        .filter(pl.col("lifecycle") == "COMPLETE")
        .select(
            "customer_id",
            event_at=pl.col("timestamp").str.to_datetime(time_zone="UTC"),
            event_name=pl.when(pl.col("activity").is_in(["A_APPROVED", "A_ACTIVATED"]))
            .then(pl.lit(STAGES[-1]))
            .otherwise(pl.col("activity")),
        )
    )
    frame = event_funnel(events, STAGES, window_seconds=float("inf"))
    figures = json.loads((folder / "reference_figures.json").read_text())["funnel"]["stages"]
    assert frame["unit_count"].to_list() == [s["ordered_cases"] for s in figures]
    # 13,087 -> 7,367 -> 5,113 -> 5,015 -> 3,254 -> 2,246
    rates = [round(r * 100, 2) for r in frame["conversion_rate_from_previous"]]
    assert rates == [s["conv_from_prev_pct"] for s in figures]
