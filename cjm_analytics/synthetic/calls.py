"""The call center: queues, waits, patience, outcomes and CSAT for a batch of calls.

Story 2 lives here: the `plan.SLOW_QUEUE` queue has a much longer median wait, so more
callers hang up (abandoned) and those who get through rate the call lower. Callers whose
call was not answered are less likely to move on (see journeys.conversion_rate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cjm_analytics.synthetic import plan
from cjm_analytics.synthetic.events import REASONS_ORDER

if TYPE_CHECKING:
    from cjm_analytics.synthetic.journeys import Walk

US = 1_000_000


def place_calls(
    w: Walk, customers: np.ndarray, at: np.ndarray, reason: str
) -> tuple[np.ndarray, np.ndarray]:
    """Log one call per customer at operational time `at`; return (ended, is_failed) with
    `ended` in operational days."""
    rng, size = w.rng, len(customers)
    queue = plan.QUEUES[reason]
    queued = w.clock.to_wall(at)
    closed = ~w.clock.call_open(queued)
    calls_back = closed & (rng.random(size) < 0.8)
    queued = np.where(
        calls_back, w.clock.next_opening(queued) + rng.integers(0, 90 * 60 * US, size), queued
    )
    voicemail = (closed & ~calls_back) | (rng.random(size) < 0.03)
    wait_us = (
        rng.lognormal(np.log(plan.WAIT_MEDIAN_SECONDS[queue]), plan.WAIT_SIGMA, size) * US
    ).astype(np.int64)
    patience_us = ((20 + rng.exponential(plan.PATIENCE_MEAN_SECONDS, size)) * US).astype(np.int64)
    answered = ~voicemail & (wait_us <= patience_us)
    talk_us = (rng.lognormal(np.log(300.0), 0.6, size) * US).astype(np.int64)
    outcome = np.where(answered, 0, np.where(voicemail, 2, 1))
    answered_at = np.where(answered, queued + wait_us, -1)
    ended = np.where(answered, queued + wait_us + talk_us,
                     np.where(voicemail, queued + rng.integers(30, 120, size) * US, queued + patience_us))  # fmt: skip
    wait_minutes = wait_us / (60 * US)
    score = np.clip(np.rint(rng.normal(4.5 - 0.3 * wait_minutes, 0.7)), 1, 5).astype(np.int64)
    responds = answered & (rng.random(size) < plan.CSAT_RESPONSE_RATE)
    w.log.calls({
        "customer": customers, "queued_us": queued, "answered_us": answered_at, "ended_us": ended,
        "reason": np.full(size, REASONS_ORDER.index(reason)), "outcome": outcome,
        "csat": np.where(responds, score, -1), "stage": np.full(size, _stage_of(reason)),
    })  # fmt: skip
    return w.clock.to_operational(ended), ~answered


def _stage_of(reason: str) -> int:
    return {"product_question": 3, "order": 4, "support": 6}[reason]
