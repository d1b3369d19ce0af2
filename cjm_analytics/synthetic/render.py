"""Coded events -> the three sources' rows, exactly as journey.yaml maps them.

Each function returns one row per source record with the source's own column names as
text-ready polars columns, plus hidden columns (prefixed `_`) the truth and the dirt
need: `_customer`, `_at` (UTC microseconds of the record's main time), `_stage`,
`_file` (export file the record belongs to, by its true time).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from cjm_analytics.synthetic import plan
from cjm_analytics.synthetic.events import (
    CATEGORIES,
    CRM_ACTIVITIES,
    DEAL_STAGES,
    ORDER_CHANNELS,
    OUTCOMES,
    PAGES,
    REASONS_ORDER,
    WEB_EVENTS,
    EventLog,
)
from cjm_analytics.synthetic.journeys import Walk

SITE = "https://www.voltstore.example"
DAY_US = 86_400_000_000
UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign")
WEB_COLUMNS = ("event_id", "anonymous_id", "user_id", "event", "timestamp", "url", "device",
               "utm_source", "utm_medium", "utm_campaign", "email", "product_category")  # fmt: skip
CRM_COLUMNS = ("record_id", "activity", "contact_id", "email", "phone", "web_user_id", "occurred_at",
               "order_channel", "region", "order_amount", "nps", "csat", "deal_stage")  # fmt: skip
CALL_COLUMNS = ("call_id", "caller_phone", "queue", "reason", "queued_at", "answered_at",
                "ended_at", "outcome", "csat")  # fmt: skip


def _names(vocabulary: tuple[str, ...], codes: np.ndarray) -> pl.Series:
    return pl.Series([v if v else None for v in vocabulary], dtype=pl.String).gather(codes)


def _window(at_us: np.ndarray, first_us: int, as_of_us: int) -> np.ndarray:
    return (at_us >= first_us) & (at_us < as_of_us)


def _sorted_table(
    table: dict[str, np.ndarray], keep: np.ndarray, at_us: np.ndarray
) -> dict[str, np.ndarray]:
    """Rows inside the window, in export order (time, then customer, then kind)."""
    rows = {name: values[keep] for name, values in table.items()}
    rows["_at"] = at_us[keep]
    kind = next(rows[k] for k in ("event", "activity", "reason") if k in rows)
    order = np.lexsort((kind, rows["customer"], rows["_at"]))
    return {name: values[order] for name, values in rows.items()}


def web_rows(w: Walk, log: EventLog, first_us: int, as_of_us: int) -> pl.DataFrame:
    """One row per web event (JSON lines, one file per ISO week)."""
    rng, pop, table = w.rng, w.pop, log.table("web")
    at_us = w.clock.to_wall(table["at"]) // 1000 * 1000
    rows = _sorted_table(table, _window(at_us, first_us, as_of_us), at_us)
    cust, n = rows["customer"], len(rows["customer"])
    logged_in = rows["signed_in"]  # browsers.assign_browsers: per browser, after its login
    first_event = np.zeros(n, bool)
    first_event[np.unique(cust, return_index=True)[1]] = True
    main_category = rng.integers(0, len(CATEGORIES), pop.size)[cust]
    category = np.where(rng.random(n) < 0.25, rng.integers(0, len(CATEGORIES), n), main_category)
    url_index = (rows["page"] * len(CATEGORIES) + category) * SKUS_PER_CATEGORY + rng.integers(
        0, SKUS_PER_CATEGORY, n
    )
    cookie = rows["cookie"]
    utm = {
        name: pl.Series([v[i] for v in plan.ACQUISITION.values()], dtype=pl.String)
        for i, name in enumerate(UTM_COLUMNS)
    }
    first_acquisition = _where(first_event, pop.acquisition[cust])
    return pl.DataFrame({
        "_customer": cust, "_at": rows["_at"], "_stage": rows["stage"], "_cookie": cookie,
        "event_id": "evt_" + pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(10),
        "anonymous_id": w.cookies.gather(cookie),
        "user_id": pop.ids["user_id"].gather(_where(logged_in, cust)),
        "event": _names(WEB_EVENTS, rows["event"]),
        "url": _url_table().gather(url_index),
        "device": _names(plan.DEVICES, pop.device[cust]).cast(pl.Enum(plan.DEVICES)),
        **{name: values.gather(first_acquisition) for name, values in utm.items()},
        "email": pop.ids["email"].gather(_where(rows["has_email"], cust)),
        "product_category": _names(CATEGORIES, category).cast(pl.Enum(CATEGORIES)).gather(
            _where(np.isin(rows["page"], [PAGES.index(p) for p in CATEGORY_PAGES]), np.arange(n))
        ),
        "_file": pl.Series(_iso_week_names(rows["_at"])),
    })  # fmt: skip


SKUS_PER_CATEGORY = 150
CATEGORY_PAGES = ("product", "compare", "checkout", "review", "deals", "search")


def _where(mask: np.ndarray, values: np.ndarray) -> pl.Series:
    """`values` where `mask`, null elsewhere (a gather index that yields nulls)."""
    return pl.Series(values).scatter(np.flatnonzero(~mask), None)


def _url_table() -> pl.Series:
    """Every URL the shop has: index = (page * categories + category) * skus + sku."""
    paths = {
        "home": "/", "blog": "/blog/{c}-buying-guide", "landing": "/landing/{c}-offers",
        "deals": "/deals/{c}", "product": "/products/{c}/vs-{s}", "search": "/search?q={c}",
        "account": "/account/orders", "newsletter": "/newsletter", "compare": "/compare/{c}",
        "login": "/account/login", "checkout": "/checkout", "confirmation": "/checkout/confirmation",
        "review": "/products/{c}/vs-{s}/reviews",
    }  # fmt: skip
    return pl.Series([
        SITE + paths[page].format(c=category, s=10_000 + 37 * sku + 11 * c)
        for page in PAGES for c, category in enumerate(CATEGORIES) for sku in range(SKUS_PER_CATEGORY)
    ])  # fmt: skip


def _iso_week_names(at_us: np.ndarray) -> pl.Series:
    """File name per row from its ISO week (worked out per distinct day, then gathered)."""
    if len(at_us) == 0:
        return pl.Series([], dtype=pl.String)
    day = at_us // DAY_US
    first = int(day.min())
    days = (date(1970, 1, 1) + timedelta(days=first + k) for k in range(int(day.max()) - first + 1))
    names = [f"raw/web/events-{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}.jsonl" for d in days]
    return pl.Series(names, dtype=pl.String).gather(day - first)


def _month(at: pl.Expr) -> pl.Expr:
    return pl.from_epoch(at, time_unit="us").dt.strftime("%Y-%m")


def crm_rows(w: Walk, log: EventLog, first_us: int, as_of_us: int) -> pl.DataFrame:
    """One row per CRM activity (CSV, one file per month)."""
    rng, pop, table = w.rng, w.pop, log.table("crm")
    at_us = w.clock.to_wall(table["at"]) // 1_000_000 * 1_000_000
    rows = _sorted_table(table, _window(at_us, first_us, as_of_us), at_us)
    cust, n = rows["customer"], len(rows["customer"])
    no_email = pop.is_phone_path & (rng.random(pop.size) < 0.3)
    no_phone = ~pop.is_phone_path & (rng.random(pop.size) < 0.35)
    ids = pop.ids.select("contact_id", "email", "phone", "user_id")[cust]
    frame = ids.with_columns(
        _customer=pl.Series(cust), _at=pl.Series(rows["_at"]), _stage=pl.Series(rows["stage"]),
        _no_email=pl.Series(no_email[cust]), _no_phone=pl.Series(no_phone[cust]),
        _office=pl.Series(pop.is_office[cust]),
        _web_user=pl.Series(w.has_account[cust] & (rows["at"] >= w.login_at[cust])),
        activity=_names(CRM_ACTIVITIES, rows["activity"]),
        order_channel=_names(ORDER_CHANNELS, rows["order_channel"]),
        region=_names(plan.REGIONS, pop.region[cust]),
        order_amount=pl.Series(rows["amount"]).fill_nan(None),
        nps=pl.Series(rows["nps"]), csat=pl.Series(rows["csat"]),
        deal_stage=_names(DEAL_STAGES, rows["deal_stage"]),
    )  # fmt: skip
    return frame.select(
        "_customer", "_at", "_stage",
        record_id=pl.lit("R") + pl.int_range(1, n + 1).cast(pl.String).str.zfill(9),
        activity="activity", contact_id="contact_id",
        email=pl.when(~pl.col("_no_email")).then("email"),
        phone=pl.when("_office").then(pl.lit(plan.SWITCHBOARD_PHONE)).when(~pl.col("_no_phone")).then("phone"),
        web_user_id=pl.when("_web_user").then("user_id"),
        order_channel="order_channel", region="region", order_amount="order_amount",
        nps=pl.when(pl.col("nps") >= 0).then("nps"), csat=pl.when(pl.col("csat") >= 0).then("csat"),
        deal_stage="deal_stage",
        _file=pl.lit("raw/crm/activities-") + _month(pl.col("_at")) + ".csv",
    )  # fmt: skip


def call_rows(w: Walk, log: EventLog, first_us: int, as_of_us: int) -> pl.DataFrame:
    """One row per call (CSV with `;`, one file per month); each call holds 2 events."""
    rng, pop, table = w.rng, w.pop, log.table("calls")
    second = 1_000_000
    for column in ("queued_us", "answered_us", "ended_us"):
        table[column] = np.where(table[column] >= 0, table[column] // second * second, -1)
    keep = _window(table["queued_us"], first_us, as_of_us) & (table["ended_us"] < as_of_us)
    rows = _sorted_table(table, keep, table["queued_us"])
    cust, n = rows["customer"], len(rows["customer"])
    source = np.where(pop.is_office[cust], 2, np.where(rng.random(n) < 0.12, 1, 0))
    phones = pop.ids.select("phone", "other_phone")[cust]
    queues = tuple(plan.QUEUES[r] for r in REASONS_ORDER)
    frame = phones.with_columns(
        _customer=pl.Series(cust), _at=pl.Series(rows["_at"]), _stage=pl.Series(rows["stage"]),
        _source=pl.Series(source), _answered=pl.Series(rows["answered_us"]),
        _ended=pl.Series(rows["ended_us"]), queue=_names(queues, rows["reason"]),
        reason=_names(REASONS_ORDER, rows["reason"]), outcome=_names(OUTCOMES, rows["outcome"]),
        csat=pl.Series(rows["csat"]),
    )  # fmt: skip
    return frame.select(
        "_customer", "_at", "_stage", "_answered", "_ended", "_source",
        call_id=pl.lit("CALL-") + pl.int_range(1, n + 1).cast(pl.String).str.zfill(8),
        caller_phone=pl.when(pl.col("_source") == 2).then(pl.lit(plan.SWITCHBOARD_PHONE))
        .when(pl.col("_source") == 1).then("other_phone").otherwise("phone"),
        queue="queue", reason="reason", outcome="outcome",
        csat=pl.when(pl.col("csat") >= 0).then("csat"),
        _file=pl.lit("raw/calls/calls-") + _month(pl.col("_at")) + ".csv",
    )  # fmt: skip
