"""Walk every customer through the stages at once (one vectorized step per stage).

Stage k's touchpoints are drawn for all customers at k; then each decides whether to move
on, with a probability from the plan (base rate x segment effects x the planted
constraint x a failed call just before). Times are in operational days (see clock.py);
call times are UTC microseconds because opening hours decide their outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from cjm_analytics.synthetic import plan
from cjm_analytics.synthetic.calls import place_calls
from cjm_analytics.synthetic.clock import Clock
from cjm_analytics.synthetic.events import AWARENESS_PAGES, ORDER_CHANNELS, PAGES, EventLog
from cjm_analytics.synthetic.population import Population

MINUTE = 1 / 1440
#: median operational days between entering stage k and k+1 (lognormal, capped)
STAGE_GAP_MEDIAN_DAYS = (0.3, 1.0, 1.5, 0.1, 8.0, 5.0)
STAGE_GAP_CAP_DAYS = 18.0


@dataclass
class Walk:
    """Mutable per-customer state while the stages are walked."""

    rng: np.random.Generator
    pop: Population
    clock: Clock
    log: EventLog
    start: np.ndarray
    has_contact: np.ndarray
    has_account: np.ndarray
    login_at: np.ndarray
    failed_call: np.ndarray
    furthest: np.ndarray
    last_at: np.ndarray
    #: anonymous_id per global cookie number and its owner (set by browsers.assign_browsers)
    cookies: pl.Series = field(default_factory=lambda: pl.Series("anonymous_id", [], pl.String))
    cookie_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def is_web_path(self, idx: np.ndarray) -> np.ndarray:
        return ~self.pop.is_phone_path[idx] & ~self.pop.is_sales_led[idx]


def spread(
    rng: np.random.Generator, start: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, at, end): `counts[i]` event times from `start[i]`, sessions of minutes and
    breaks of hours; `end[i]` is owner i's last time (its start when it has none)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    gaps = np.where(
        rng.random(len(owner)) < 0.72,
        rng.exponential(2.5 * MINUTE, len(owner)),
        np.minimum(rng.lognormal(np.log(0.25), 1.2, len(owner)), 4.0),
    )
    first = np.cumsum(counts) - counts
    gaps[first[counts > 0]] = 0.0
    running = np.cumsum(gaps)
    at = start[owner] + running - running[first[owner]]
    end = start.copy()
    np.maximum.at(end, owner, at)
    return owner, at, end


def after(rng: np.random.Generator, at: np.ndarray, minutes: float) -> np.ndarray:
    """A moment a few minutes after each time (sync lag of the CRM, a human's reaction)."""
    return at + rng.exponential(minutes * MINUTE, len(at)) + 0.2 * MINUTE


def awareness(w: Walk, idx: np.ndarray, t0: np.ndarray) -> np.ndarray:
    counts = np.where(w.pop.skips_awareness[idx], 0, 1 + w.rng.poisson(2.6, len(idx)))
    owner, at, end = spread(w.rng, t0, counts)
    pages = np.array([PAGES.index(p) for p in AWARENESS_PAGES])[w.rng.integers(0, 4, len(owner))]
    w.log.web(idx[owner], at, "page_view", 1, page=pages)
    return end


def interest(w: Walk, idx: np.ndarray, t0: np.ndarray) -> np.ndarray:
    phone = w.pop.is_phone_path[idx]
    counts = 1 + w.rng.poisson(np.where(phone, 1.0, 2.3))
    owner, at, end = spread(w.rng, t0, counts)
    w.log.web(idx[owner], at, "product_view", 2)
    signs = w.rng.random(len(idx)) < 0.15
    signup_at = after(w.rng, end[signs], 1.0)
    w.log.web(idx[signs], signup_at, "newsletter_signup", 2, has_email=True)
    end[signs] = signup_at
    sales = w.pop.is_sales_led[idx] & ~w.has_contact[idx]
    news = signs & ~w.has_contact[idx] & ~sales
    _contact(w, idx[news], after(w.rng, signup_at[news[signs]], 10.0))
    _contact(w, idx[sales], after(w.rng, t0[sales], 120.0))
    return np.maximum(end, w.last_at[idx])


def consideration(w: Walk, idx: np.ndarray, t0: np.ndarray) -> np.ndarray:
    phone, sales = w.pop.is_phone_path[idx], w.pop.is_sales_led[idx]
    counts = np.where(phone, w.rng.poisson(0.5, len(idx)), 1 + w.rng.poisson(0.8, len(idx)))
    owner, at, end = spread(w.rng, t0, counts)
    carts = w.rng.random(len(owner)) < 0.65
    w.log.web(idx[owner[carts]], at[carts], "add_to_cart", 3)
    w.log.web(idx[owner[~carts]], at[~carts], "compare_products", 3)
    calls = w.rng.random(len(idx)) < np.where(phone, 0.45, 0.18)
    end[calls], w.failed_call[idx[calls]] = place_calls(
        w, idx[calls], after(w.rng, end[calls], 30.0), "product_question"
    )
    lead_at = after(w.rng, t0[sales], 600.0)
    w.log.crm(idx[sales], lead_at, "lead_created", 3)
    qualified_at = after(w.rng, lead_at, 1500.0)
    w.log.crm(idx[sales], qualified_at, "deal_stage_changed", 0, deal_stage="qualified")
    end[sales] = np.maximum(end[sales], qualified_at)
    return end


def intent(w: Walk, idx: np.ndarray, t0: np.ndarray) -> np.ndarray:
    end = t0.copy()
    web = w.is_web_path(idx)
    registers = web & ~w.has_account[idx] & (w.rng.random(len(idx)) < 0.7)
    w.has_account[idx[registers]] = True
    logs_in = web & w.has_account[idx]
    w.log.web(idx[logs_in], t0[logs_in], "login", 0)
    w.login_at[idx[logs_in]] = np.minimum(w.login_at[idx[logs_in]], t0[logs_in])
    new = registers & ~w.has_contact[idx]
    _contact(w, idx[new], after(w.rng, t0[new], 2.0))
    counts = np.where(web, 1 + w.rng.poisson(0.3, len(idx)), 0)
    owner, at, end_web = spread(w.rng, t0 + MINUTE * web, counts)
    guest = ~w.has_account[idx[owner]]
    w.log.web(idx[owner], at, "checkout_started", 4, has_email=guest)
    end = np.maximum(end, end_web)
    phone = w.pop.is_phone_path[idx] & ~w.pop.is_sales_led[idx]
    end[phone], w.failed_call[idx[phone]] = place_calls(w, idx[phone], t0[phone], "order")
    sales = w.pop.is_sales_led[idx]
    w.log.crm(idx[sales], t0[sales], "deal_stage_changed", 4, deal_stage="quote_sent")
    return end


def purchase(w: Walk, idx: np.ndarray, t0: np.ndarray) -> np.ndarray:
    rng = w.rng
    new = ~w.has_contact[idx]
    _contact(w, idx[new], t0[new])
    web_code, phone_code, store_code = (ORDER_CHANNELS.index(c) for c in ("web", "phone", "store"))
    codes = np.where(rng.random(len(idx)) < 0.05, store_code, web_code)
    codes = np.where(w.pop.is_phone_path[idx], phone_code, codes)
    sales = w.pop.is_sales_led[idx]
    codes = np.where(sales, np.where(rng.random(len(idx)) < 0.5, phone_code, web_code), codes)
    order_at = t0 + 0.5 * MINUTE
    w.log.crm(idx, order_at, "order_placed", 5, order_channel=codes, amount=_amounts(rng, len(idx)))
    web = codes == web_code
    w.log.web(
        idx[web], t0[web], "page_view", 0, page=np.full(web.sum(), PAGES.index("confirmation"))
    )
    w.log.crm(
        idx[sales], after(rng, order_at[sales], 5.0), "deal_stage_changed", 0, deal_stage="won"
    )
    return order_at + MINUTE


def retention(w: Walk, idx: np.ndarray, t0: np.ndarray) -> np.ndarray:
    rng = w.rng
    warranty, repeat, support = rng.random((3, len(idx))) < np.array([[0.55], [0.35], [0.3]])
    warranty |= ~(warranty | repeat | support)
    end = t0.copy()
    w.log.crm(idx[warranty], t0[warranty], "warranty_registered", 6)
    repeat_at = t0[repeat] + rng.uniform(0.5, 8.0, repeat.sum())
    channel = np.full(repeat.sum(), ORDER_CHANNELS.index("web"))
    w.log.crm(
        idx[repeat],
        repeat_at,
        "repeat_order",
        6,
        order_channel=channel,
        amount=_amounts(rng, repeat.sum()),
    )
    end[repeat] = repeat_at
    call_at = t0[support] + rng.uniform(0.1, 6.0, support.sum())
    ended, failed = place_calls(w, idx[support], call_at, "support")
    end[support] = np.maximum(end[support], ended)
    w.failed_call[idx[support]] = failed
    return end


def advocacy(w: Walk, idx: np.ndarray, t0: np.ndarray) -> np.ndarray:
    rng = w.rng
    review = rng.random(len(idx)) < 0.5
    survey = (rng.random(len(idx)) < 0.7) | ~review
    w.log.web(idx[review], t0[review], "review_posted", 7)
    at = t0[survey] + rng.uniform(0.0, 3.0, survey.sum())
    nps = rng.choice([9, 10], survey.sum(), p=(0.45, 0.55))
    csat = rng.choice([4, 5], survey.sum())
    w.log.crm(idx[survey], at, "survey_response", 7, nps=nps, csat=csat)
    end = t0.copy()
    end[survey] = at
    return end


STAGE_STEPS = (awareness, interest, consideration, intent, purchase, retention, advocacy)


def _contact(w: Walk, customers: np.ndarray, at: np.ndarray) -> None:
    w.log.crm(customers, at, "contact_created", 2)
    w.has_contact[customers] = True
    w.last_at[customers] = np.maximum(w.last_at[customers], at)


def _amounts(rng: np.random.Generator, size: int) -> np.ndarray:
    return np.round(rng.lognormal(np.log(240.0), 0.9, size), 2)


def conversion_rate(
    w: Walk, idx: np.ndarray, stage: int, constraint: plan.Constraint
) -> np.ndarray:
    """Chance that each customer at `stage` moves on to the next stage."""
    rate = np.full(len(idx), plan.BASE_CONVERSION[stage - 1])
    for (transition, dimension, value), factor in plan.SEGMENT_EFFECTS.items():
        if transition == stage - 1:
            codes, names = w.pop.segment_value(dimension)
            rate = np.where(codes[idx] == names.index(value), rate * factor, rate)
    if stage == constraint.from_stage:
        codes, names = w.pop.segment_value(plan.HEADROOM_DIMENSION)
        lifted = codes[idx] == names.index(plan.HEADROOM_VALUE)
        rate = rate * np.where(lifted, plan.HEADROOM_LIFT, plan.DEPRESSION)
    rate = np.where(w.failed_call[idx], rate * plan.FAILED_CALL_CONVERSION, rate)
    return np.minimum(rate, 0.97)


def walk(w: Walk, constraint: plan.Constraint) -> None:
    """Draw every customer's touchpoints, stage by stage, into `w.log`."""
    at_stage, t = np.arange(w.pop.size), w.start.copy()
    for stage, step in enumerate(STAGE_STEPS, start=1):
        w.failed_call[at_stage] = False
        end = np.maximum(step(w, at_stage, t[at_stage]), w.last_at[at_stage])
        w.last_at[at_stage] = end
        w.furthest[at_stage] = stage
        if stage == len(STAGE_STEPS):
            break
        moves = w.rng.random(len(at_stage)) < conversion_rate(w, at_stage, stage, constraint)
        gap = np.minimum(
            w.rng.lognormal(np.log(STAGE_GAP_MEDIAN_DAYS[stage - 1]), 1.0, moves.sum()),
            STAGE_GAP_CAP_DAYS,
        )
        at_stage = at_stage[moves]
        t[at_stage] = end[moves] + gap
    _epilogue(w)


def _epilogue(w: Walk) -> None:
    """Touchpoints outside the stage rules: extra browsing, lost deals, lukewarm surveys."""
    rng, pop = w.rng, w.pop
    counts = rng.poisson(3.5, pop.size)
    owner = np.repeat(np.arange(pop.size), counts)
    at = w.start[owner] + rng.random(len(owner)) * (w.last_at[owner] - w.start[owner])
    pages = np.array([PAGES.index(p) for p in ("product", "search", "account", "home", "blog")])
    page = pages[rng.choice(5, len(owner), p=(0.45, 0.25, 0.1, 0.12, 0.08))]
    # home and blog pages are awareness pages by the stage rules
    stage = np.where(np.isin(page, [PAGES.index("home"), PAGES.index("blog")]), 1, 0)
    w.log.web(owner, at, "page_view", stage, page=page)
    lost = np.flatnonzero(pop.is_sales_led & (w.furthest == 4) & (rng.random(pop.size) < 0.6))
    w.log.crm(
        lost,
        w.last_at[lost] + rng.uniform(5, 15, len(lost)),
        "deal_stage_changed",
        0,
        deal_stage="lost",
    )
    lukewarm = np.flatnonzero((w.furthest >= 5) & (w.furthest < 7) & (rng.random(pop.size) < 0.3))
    nps = rng.integers(0, 9, len(lukewarm))
    csat = np.clip(nps // 2, 1, 5)
    w.log.crm(
        lukewarm,
        w.last_at[lukewarm] + rng.uniform(1, 10, len(lukewarm)),
        "survey_response",
        0,
        nps=nps,
        csat=csat,
    )
