"""What the generator knows and the pipeline must find: truth.json and its Parquet twins.

`truth_customers.parquet`: one row per customer with at least one valid event (the true
journey: the generator keeps every customer's inactivity gaps under the journey timeout,
so one customer is one journey). `truth_identifiers.parquet`: one row per raw identifier
value written to any file, with the customer it truly belongs to (the shared switchboard
phone is left out and listed under `identifiers.shared`).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import polars as pl

from cjm_analytics.synthetic import plan
from cjm_analytics.synthetic.population import Population

SEGMENT_DIMENSIONS = ("device", "region", "acquisition_channel", "customer_type")
IDENTIFIER_SOURCES = {
    "web": {"anonymous_id": "cookie", "user_id": "user_id", "email": "email"},
    "crm": {
        "contact_id": "contact_id",
        "email": "email",
        "phone": "phone",
        "web_user_id": "user_id",
    },
    "calls": {"caller_phone": "phone"},
}
DAY_US = 86_400_000_000


def valid(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows a correct pipeline keeps: clean rows and the first copy of duplicated ones."""
    return frame.filter(
        pl.col("_dirty").is_null() | ((pl.col("_dirty") == "duplicate") & ~pl.col("_copy"))
    )


def customer_truth(
    rows: dict[str, pl.DataFrame], pop: Population, as_of_us: int, abandonment_days: float
) -> pl.DataFrame:
    """One row per customer with a valid event: segments, furthest stage, status, counts."""
    events = pl.concat([
        valid(frame).select("_customer", "_at", "_stage", events=pl.lit(2 if source == "calls" else 1))
        for source, frame in rows.items()
    ])  # fmt: skip
    per_customer = events.group_by("_customer").agg(
        first_event_at=pl.col("_at").min(), last_event_at=pl.col("_at").max(),
        event_count=pl.col("events").sum(), furthest_stage_order=pl.col("_stage").max(),
    )  # fmt: skip
    stage_names = pl.lit(pl.Series([None, *plan.STAGES], dtype=pl.String))
    attributes = _attributes(pop)
    status = (
        pl.when(pl.col("furthest_stage_order") >= plan.PURCHASE).then(pl.lit("converted"))
        .when(pl.col("last_event_at") < as_of_us - int(abandonment_days * DAY_US)).then(pl.lit("abandoned"))
        .otherwise(pl.lit("in_progress"))
    )  # fmt: skip
    return (
        per_customer.join(attributes, on="_customer")
        .with_columns(
            furthest_stage=stage_names.gather(pl.col("furthest_stage_order")),
            furthest_stage_order=pl.when(pl.col("furthest_stage_order") > 0).then(
                "furthest_stage_order"
            ),
            status=status,
            first_event_at=pl.from_epoch("first_event_at", time_unit="us"),
            last_event_at=pl.from_epoch("last_event_at", time_unit="us"),
        )
        .sort("_customer")
        .drop("_customer")
    )


def _attributes(pop: Population) -> pl.DataFrame:
    def names(values: tuple[str, ...], codes: np.ndarray) -> pl.Series:
        return pl.Series(values).gather(codes)

    return pl.DataFrame({
        "_customer": np.arange(pop.size), "customer_id": pop.ids["customer_id"],
        "device": names(plan.DEVICES, pop.device), "region": names(plan.REGIONS, pop.region),
        "acquisition_channel": names(tuple(plan.ACQUISITION), pop.acquisition),
        "customer_type": names(plan.CUSTOMER_TYPES, pop.is_returning.astype(np.int64)),
        "is_phone_path": pop.is_phone_path, "is_sales_led": pop.is_sales_led, "is_office": pop.is_office,
    })  # fmt: skip


def identifier_truth(
    rows: dict[str, pl.DataFrame], pop: Population, cookies: pl.Series, cookie_owner: np.ndarray
) -> pl.DataFrame:
    """One row per (identifier_kind, identifier_value) written to any file, with its true
    customer. Worked out on integer customer/cookie numbers, then looked up as text."""
    web, crm, calls = rows["web"], rows["crm"], rows["calls"]

    def used(frame: pl.DataFrame, column: str, *extra: pl.Expr) -> np.ndarray:
        mask = pl.col(column).is_not_null()
        for condition in extra:
            mask = mask & condition
        return frame.filter(mask)["_customer"].unique().sort().to_numpy()

    own_phone = pl.col("phone") != plan.SWITCHBOARD_PHONE
    cookie_numbers = (
        web.filter(pl.col("anonymous_id").is_not_null())["_cookie"].unique().sort().to_numpy()
    )
    parts = [
        ("cookie", cookies.gather(cookie_numbers), cookie_owner[cookie_numbers]),
        ("user_id", None, np.union1d(used(web, "user_id"), used(crm, "web_user_id"))),
        ("email", None, np.union1d(used(web, "email"), used(crm, "email"))),
        ("contact_id", None, used(crm, "contact_id")),
        ("phone", None, np.union1d(used(crm, "phone", own_phone), used(calls, "caller_phone", pl.col("_source") == 0))),
        ("other_phone", None, used(calls, "caller_phone", pl.col("_source") == 1)),
    ]  # fmt: skip
    frames = []
    for kind, values, owners in parts:
        column = pop.ids[kind].gather(owners) if values is None else values
        frames.append(pl.DataFrame({
            "identifier_kind": "phone" if kind == "other_phone" else kind,
            "identifier_value": column, "customer_id": pop.ids["customer_id"].gather(owners),
        }))  # fmt: skip
    return pl.concat(frames).sort("identifier_kind", "identifier_value")


def wilson_lower(successes: float, trials: float, z: float = 1.96) -> float:
    """Lower bound of the Wilson 95% interval of successes / trials."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (centre - margin) / (1 + z * z / trials)


def funnel(customers: pl.DataFrame) -> dict[str, object]:
    """Reached per stage (furthest mode), conversion per transition, status counts."""
    furthest = customers["furthest_stage_order"].fill_null(0).to_numpy()
    reached = {stage: int((furthest >= k).sum()) for k, stage in enumerate(plan.STAGES, start=1)}
    counts = list(reached.values())
    conversion = {
        f"{a}->{b}": (counts[k + 1] / counts[k] if counts[k] else None)
        for k, (a, b) in enumerate(zip(plan.STAGES, plan.STAGES[1:], strict=False))
    }
    return {
        "journey_count": customers.height,
        "journeys_without_stage": int((furthest == 0).sum()),
        "reached": reached,
        "furthest": {
            stage: int((furthest == k).sum()) for k, stage in enumerate(plan.STAGES, start=1)
        },
        "conversion_rate": conversion,
        "status": {
            s: int((customers["status"] == s).sum())
            for s in ("converted", "abandoned", "in_progress")
        },
    }


def headroom(customers: pl.DataFrame, min_journeys: int) -> list[dict[str, object]]:
    """Per transition up to purchase: current rate, best segment's Wilson lower bound among
    segments with >= min_journeys at the stage, and the extra purchases that lift would carry
    through the later stages at their current rates (DESIGN.md's constraint gain)."""
    stage = pl.col("furthest_stage_order").fill_null(0)
    totals = customers.select(
        [(stage >= k).sum().alias(str(k)) for k in range(1, plan.PURCHASE + 1)]
    ).row(0)
    rates = [totals[k] / max(totals[k - 1], 1) for k in range(1, plan.PURCHASE)]
    result = []
    for k in range(1, plan.PURCHASE):
        best: tuple[str | None, str | None, float] = (None, None, 0.0)
        for dimension in SEGMENT_DIMENSIONS:
            segments = (
                customers.filter(stage >= k)
                .group_by(dimension)
                .agg(trials=pl.len(), successes=(stage >= k + 1).sum())
                .filter(pl.col("trials") >= min_journeys)
                .sort(dimension)
            )
            for value, trials, successes in segments.iter_rows():
                lower = wilson_lower(float(successes), float(trials))
                if lower > best[2]:
                    best = (dimension, str(value), lower)
        later = float(np.prod(rates[k:]))
        gain = totals[k - 1] * max(0.0, best[2] - rates[k - 1]) * later
        result.append({
            "transition": f"{plan.STAGES[k - 1]}->{plan.STAGES[k]}", "conversion_rate": rates[k - 1],
            "benchmark_dimension": best[0], "benchmark_value": best[1], "benchmark_lower_bound": best[2],
            "gain_purchases": gain,
        })  # fmt: skip
    return result


def queue_story(calls: pl.DataFrame, customers: pl.DataFrame) -> dict[str, object]:
    """Per queue: calls, abandonment, median wait, CSAT; and what became of advice callers."""
    answered = pl.col("outcome") == "answered"
    per_queue = (
        valid(calls).group_by("queue").agg(
            call_count=pl.len(),
            abandoned_rate=(pl.col("outcome") == "abandoned").mean(),
            voicemail_rate=(pl.col("outcome") == "voicemail").mean(),
            median_wait_seconds=((pl.col("_answered") - pl.col("_at")) / 1e6).filter(answered).median(),
            mean_csat=pl.col("csat").cast(pl.Float64).mean(),
        ).sort("queue")
    )  # fmt: skip
    first_slow_call = (
        valid(calls).filter(pl.col("queue") == plan.SLOW_QUEUE)
        .sort("_at", maintain_order=True).group_by("_customer", maintain_order=True).first()
        .select("_customer", is_answered=pl.col("outcome") == "answered")
    )  # fmt: skip
    numbered = customers.with_columns(
        _customer=pl.col("customer_id").str.slice(2).cast(pl.Int64) - 1,
        reached_intent=pl.col("furthest_stage_order").fill_null(0)
        >= plan.STAGES.index("intent") + 1,
    )
    callers = (
        first_slow_call.join(numbered, on="_customer")
        .group_by("is_answered")
        .agg(customer_count=pl.len(), reached_intent_rate=pl.col("reached_intent").mean())
        .sort("is_answered")
    )
    return {
        "slow_queue": plan.SLOW_QUEUE,
        "queues": per_queue.to_dicts(),
        "slow_queue_callers_by_first_call_answered": callers.to_dicts(),
        "failed_call_conversion_multiplier": plan.FAILED_CALL_CONVERSION,
    }


def phone_story(crm: pl.DataFrame) -> dict[str, object]:
    """Share of orders placed by phone, per region (the phone-path region stands out)."""
    orders = valid(crm).filter(pl.col("activity") == "order_placed")
    per_region = (
        orders.group_by("region")
        .agg(order_count=pl.len(), phone_order_rate=(pl.col("order_channel") == "phone").mean())
        .sort("region")
    )
    return {
        "dimension": plan.PHONE_PATH_DIMENSION,
        "value": plan.PHONE_PATH_REGION,
        "phone_path_share_in_segment": plan.PHONE_PATH_SHARE_IN_REGION,
        "phone_path_share_elsewhere": plan.PHONE_PATH_SHARE_ELSEWHERE,
        "orders_by_region": per_region.to_dicts(),
    }


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def identifier_reach(rows: dict[str, pl.DataFrame], identifiers: pl.DataFrame) -> dict[str, object]:
    """The recall a perfect stitcher can reach on this data (docs/adr/0011).

    Over the identifiers on valid rows (the switchboard left out): `true_pair_count` pairs
    share a true customer; `reachable_pair_count` of them are joined by co-occurrence on
    valid rows, transitively, through that customer's own identifiers. `recall_ceiling` is
    their ratio: a pair never joined by any event (a cookie that never logged in) is out of
    reach of any stitcher."""
    nodes = identifiers.select(
        pl.col("identifier_kind", "identifier_value", "customer_id").cast(pl.String)
    ).with_row_index("node")
    found, offset = [], 0
    for source, columns in IDENTIFIER_SOURCES.items():
        frame = valid(rows[source]).with_row_index("row", offset)
        offset += frame.height
        for column, kind in columns.items():
            found.append(frame.select(
                "row", identifier_kind=pl.lit(kind), identifier_value=pl.col(column).cast(pl.String)
            ).drop_nulls("identifier_value"))  # fmt: skip
    hits = pl.concat(found).join(nodes, on=["identifier_kind", "identifier_value"])
    roots = hits.group_by("row", "customer_id").agg(root=pl.col("node").min())
    edges = hits.join(roots, on=["row", "customer_id"]).filter(pl.col("node") != pl.col("root"))
    edges = edges.select("node", "root").unique()
    label = _components(nodes.height, edges["node"].to_numpy(), edges["root"].to_numpy())
    used = hits["node"].unique().to_numpy()

    scored = nodes[used].with_columns(component=pl.Series(label[used]))

    def pairs(key: str) -> int:
        sizes = scored.group_by(key).len()["len"].cast(pl.Int64)
        return int((sizes * (sizes - 1) // 2).sum())

    true_pairs, reachable = pairs("customer_id"), pairs("component")
    return {
        "scored_identifier_count": len(used),
        "true_pair_count": true_pairs,
        "reachable_pair_count": reachable,
        "recall_ceiling": reachable / true_pairs if true_pairs else 1.0,
    }


def _components(size: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest node number of each node's connected component (min-label propagation with
    pointer jumping, one vectorized step per round)."""
    label = np.arange(size)
    while True:
        stepped = label.copy()
        np.minimum.at(stepped, a, label[b])
        np.minimum.at(stepped, b, label[a])
        stepped = stepped[stepped]
        if np.array_equal(stepped, label):
            return label
        label = stepped
