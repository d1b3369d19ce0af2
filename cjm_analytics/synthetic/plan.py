"""The fixed plan of the fictional company Voltstore: stages, rates, segments, queues.

Every number the generator draws from lives here, so a reader can see the whole
"business" in one place and the planted stories next to the base rates they bend.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from cjm_analytics.errors import CjmError

#: The journey stages in order (as in data/demo/journey.yaml); 1-based stage codes.
STAGES: tuple[str, ...] = (
    "awareness",
    "interest",
    "consideration",
    "intent",
    "purchase",
    "retention",
    "advocacy",
)
PURCHASE = STAGES.index("purchase") + 1

#: Base conversion of transition k -> k+1 (index 0 = awareness -> interest).
BASE_CONVERSION: tuple[float, ...] = (0.62, 0.56, 0.52, 0.66, 0.55, 0.40)

#: The planted constraint: the chosen transition's conversion in the headroom segment is
#: multiplied by HEADROOM_LIFT and everywhere else by DEPRESSION.
HEADROOM_DIMENSION = "device"
HEADROOM_VALUE = "desktop"
HEADROOM_LIFT = 1.25
DEPRESSION = 0.45

# Segments: value names and shares (shares sum to 1).
DEVICES = ("desktop", "mobile", "tablet")
DEVICE_SHARES = (0.35, 0.55, 0.10)
REGIONS = (
    "Berlin",
    "Bavaria",
    "North Rhine-Westphalia",
    "Hamburg",
    "Baden-Wuerttemberg",
    "Saxony",
    "Hesse",
)
REGION_SHARES = (0.15, 0.18, 0.22, 0.08, 0.15, 0.12, 0.10)
#: acquisition channel -> (utm_source, utm_medium, utm_campaign); "direct" has no UTM.
ACQUISITION = {
    "paid_search": ("google", "cpc", "brand_search"),
    "organic_search": ("google", "organic", None),
    "paid_social": ("facebook", "paid_social", "spring_deals"),
    "email": ("newsletter", "email", "weekly_digest"),
    "affiliate": ("idealo", "affiliate", "price_comparison"),
    "direct": (None, None, None),
}
ACQUISITION_SHARES = (0.25, 0.20, 0.15, 0.10, 0.10, 0.20)
CUSTOMER_TYPES = ("new", "returning")
RETURNING_SHARE = 0.25

#: Mild, realistic segment effects on the other transitions: (transition index,
#: dimension, value) -> multiplier. Kept within +-15% so the planted constraint stands out.
SEGMENT_EFFECTS: dict[tuple[int, str, str], float] = {
    (0, "acquisition", "email"): 1.12,
    (0, "acquisition", "paid_social"): 0.90,
    (1, "device", "mobile"): 0.95,
    (2, "customer_type", "returning"): 1.10,
    (3, "customer_type", "returning"): 1.08,
    (5, "customer_type", "returning"): 1.10,
}

#: Story 3: customers of this region mostly order by phone (calls reason=order, order_channel=phone).
PHONE_PATH_DIMENSION = "region"
PHONE_PATH_REGION = "Saxony"
PHONE_PATH_SHARE_IN_REGION = 0.75
PHONE_PATH_SHARE_ELSEWHERE = 0.04
SALES_LED_SHARE = 0.08
OFFICE_SHARE = 0.03  # customers whose CRM phone is the shared office switchboard
SWITCHBOARD_PHONE = "+49 30 1234 5000"

# Calls: reason -> queue; the planted slow queue (story 2).
QUEUES = {"product_question": "advice", "order": "orders", "support": "support"}
REASONS = tuple(QUEUES)
SLOW_QUEUE = "advice"
#: median wait in seconds per queue (lognormal, sigma WAIT_SIGMA)
WAIT_MEDIAN_SECONDS = {"advice": 300.0, "orders": 45.0, "support": 75.0}
WAIT_SIGMA = 0.8
PATIENCE_MEAN_SECONDS = 240.0
#: conversion multiplier of the next transition after a call that was not answered
FAILED_CALL_CONVERSION = 0.5
CSAT_RESPONSE_RATE = 0.45

DEFAULT_START_ISO = "2026-02-02"


@dataclass(frozen=True)
class Constraint:
    """The planted constraint transition, as 1-based stage codes (from_stage, from_stage + 1)."""

    from_stage: int

    @property
    def transition(self) -> tuple[str, str]:
        return STAGES[self.from_stage - 1], STAGES[self.from_stage]

    @property
    def label(self) -> str:
        return "->".join(self.transition)


def parse_constraint(text: str) -> Constraint:
    """'intent->purchase' -> Constraint; any consecutive pair of stages up to purchase."""
    allowed = [f"{a}->{b}" for a, b in pairwise(STAGES[:PURCHASE])]
    cleaned = text.replace(" ", "")
    if cleaned not in allowed:
        raise CjmError(
            f"--constraint {text!r} is not a planted-constraint transition; "
            f"use one of: {', '.join(allowed)}"
        )
    return Constraint(from_stage=allowed.index(cleaned) + 1)
