"""Coded events -> the three sources' rows, exactly as journey.yaml maps them.

Each function returns one row per source record with the source's own column names as
text-ready polars columns, plus hidden columns (prefixed `_`) the truth and the dirt
need: `_customer`, `_at` (UTC microseconds of the record's main time), `_stage`,
`_file` (export file the record belongs to, by its true time).
"""

from __future__ import annotations

from typing import Any

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
    code,
)
from cjm_analytics.synthetic.journeys import Walk

SITE = "https://www.voltstore.example"
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
    pick = np.where(rng.random(n) < 0.6, 0, rng.integers(0, 1 << 30, n) % pop.cookie_count[cust])
    cookies = w.cookies
    is_login = rows["event"] == code(WEB_EVENTS, "login")
    logged_in = (
        w.has_account[cust] & (rows["at"] >= w.login_at[cust]) & ((rng.random(n) < 0.85) | is_login)
    )
    first_event = np.zeros(n, bool)
    first_event[np.unique(cust, return_index=True)[1]] = True
    main_category = rng.integers(0, len(CATEGORIES), pop.size)[cust]
    category = np.where(rng.random(n) < 0.25, rng.integers(0, len(CATEGORIES), n), main_category)
    utm = [
        pl.Series([values[i] for values in plan.ACQUISITION.values()], dtype=pl.String)
        for i in range(3)
    ]
    frame = pl.DataFrame({
        "_customer": cust, "_at": rows["_at"], "_stage": rows["stage"],
        "_cookie": pop.cookie_offset[cust] + pick,
        "user_id": pop.ids["user_id"].gather(cust), "_logged_in": logged_in,
        "event": _names(WEB_EVENTS, rows["event"]), "_page": _names(PAGES, rows["page"]),
        "device": _names(plan.DEVICES, pop.device[cust]), "_first": first_event,
        **{f"_{name}": utm[i].gather(pop.acquisition[cust]) for i, name in enumerate(UTM_COLUMNS)},
        "_has_email": rows["has_email"],
        "email": pop.ids["email"].gather(cust), "_category": _names(CATEGORIES, category),
        "_sku": rng.integers(10000, 99999, n),
    })  # fmt: skip
    return frame.select(
        "_customer", "_at", "_stage", "_cookie",
        event_id=pl.lit("evt_") + pl.int_range(1, n + 1).cast(pl.String).str.zfill(10),
        anonymous_id=pl.lit(cookies).gather(pl.col("_cookie")),
        user_id=pl.when("_logged_in").then("user_id"),
        event="event",
        url=_url(),
        device="device",
        **{name: pl.when("_first").then(f"_{name}") for name in UTM_COLUMNS},
        email=pl.when("_has_email").then("email"),
        product_category=pl.when(pl.col("_page").is_in(["product", "compare", "checkout", "review", "deals", "search"]))
        .then("_category"),
        _file=pl.lit("raw/web/events-") + _iso_week(pl.col("_at")) + ".jsonl",
    )  # fmt: skip


def _url() -> pl.Expr:
    page, category = pl.col("_page"), pl.col("_category")
    product = pl.lit(SITE + "/products/") + category + "/vs-" + pl.col("_sku").cast(pl.String)
    paths = {
        "home": pl.lit(SITE + "/"),
        "blog": pl.lit(SITE + "/blog/") + category + "-buying-guide",
        "landing": pl.lit(SITE + "/landing/") + category + "-offers",
        "deals": pl.lit(SITE + "/deals/") + category,
        "product": product,
        "search": pl.lit(SITE + "/search?q=") + category,
        "account": pl.lit(SITE + "/account/orders"),
        "newsletter": pl.lit(SITE + "/newsletter"),
        "compare": pl.lit(SITE + "/compare/") + category,
        "login": pl.lit(SITE + "/account/login"),
        "checkout": pl.lit(SITE + "/checkout"),
        "confirmation": pl.lit(SITE + "/checkout/confirmation"),
        "review": product + "/reviews",
    }
    (first, first_value), *rest = paths.items()
    expr: Any = pl.when(page == first).then(first_value)
    for name, value in rest:
        expr = expr.when(page == name).then(value)
    return expr.otherwise(None)


def _iso_week(at: pl.Expr) -> pl.Expr:
    moment = pl.from_epoch(at, time_unit="us")
    return (
        moment.dt.iso_year().cast(pl.String) + "-W" + moment.dt.week().cast(pl.String).str.zfill(2)
    )


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


def utc_text(at: pl.Expr, with_offset: bool) -> pl.Expr:
    """Text of UTC microseconds: ISO with the Berlin offset (web), or naive (calls)."""
    moment = pl.from_epoch(at, time_unit="us")
    if with_offset:
        local = moment.dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Berlin")
        return local.dt.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
    return moment.dt.strftime("%Y-%m-%d %H:%M:%S")


def berlin_naive_text(at: pl.Expr) -> pl.Expr:
    """Text of UTC microseconds as naive Berlin wall time (the CRM's export)."""
    local = (
        pl.from_epoch(at, time_unit="us")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone("Europe/Berlin")
    )
    return local.dt.strftime("%Y-%m-%d %H:%M:%S")
