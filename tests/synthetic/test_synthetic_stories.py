"""The planted stories are really in the data, and the truth files agree with the stage
rules of data/demo/journey.yaml (applied here in plain Python, independently)."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from cjm_analytics.config import load_config
from cjm_analytics.synthetic import generate, plan

CONFIG = Path(__file__).resolve().parents[2] / "data" / "demo" / "journey.yaml"
BERLIN = ZoneInfo("Europe/Berlin")
TRANSITIONS = [
    "awareness->interest",
    "interest->consideration",
    "consideration->intent",
    "intent->purchase",
]


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 customers, no dirt: enough journeys per segment for stable rates."""
    out = tmp_path_factory.mktemp("voltstore-large")
    generate(out, customers=20_000, seed=21, dirty_rate=0.0)
    return out


def _relative_headroom(customers: pl.DataFrame, min_journeys: int = 200) -> dict[str, float]:
    """Per transition: best segment rate (segments with >= min_journeys) / overall rate.
    DESIGN.md's gain is proportional to this ratio minus 1 (successes x (benchmark/rate - 1))."""
    stage = customers["furthest_stage_order"].fill_null(0)
    result = {}
    for k, name in enumerate(TRANSITIONS, start=1):
        at = customers.filter(stage >= k)
        overall = (at["furthest_stage_order"] >= k + 1).mean()
        best = 0.0
        for dimension in ("device", "region", "acquisition_channel", "customer_type"):
            for _, group in at.group_by(dimension):
                if group.height >= min_journeys:
                    best = max(best, (group["furthest_stage_order"] >= k + 1).mean())
        result[name] = best / overall
    return result


@pytest.mark.parametrize(
    "constraint", ["interest->consideration", "consideration->intent", "intent->purchase"]
)
def test_planted_constraint_has_the_most_headroom(tmp_path: Path, constraint: str) -> None:
    generate(tmp_path, customers=20_000, seed=21, constraint=constraint, dirty_rate=0.0)
    customers = pl.read_parquet(tmp_path / "truth_customers.parquet")
    headroom = _relative_headroom(customers)
    assert max(headroom, key=headroom.get) == constraint
    others = [v for k, v in headroom.items() if k != constraint]
    assert headroom[constraint] > 1.3 > max(others)  # planted: x1.25 on desktop, x0.45 elsewhere
    story = json.loads((tmp_path / "truth.json").read_text())["stories"]["constraint"]
    gains = {h["transition"]: h["gain_purchases"] for h in story["headroom_by_transition"]}
    assert max(gains, key=gains.get) == constraint
    winner = next(h for h in story["headroom_by_transition"] if h["transition"] == constraint)
    assert (winner["benchmark_dimension"], winner["benchmark_value"]) == ("device", "desktop")


def _csv(paths: list[Path], delimiter: str) -> list[dict[str, str]]:
    return [row for p in sorted(paths) for row in csv.DictReader(p.open(), delimiter=delimiter)]


def test_slow_queue_abandons_more_rates_lower_and_loses_its_callers(large: Path) -> None:
    calls = _csv(list(large.glob("raw/calls/*.csv")), ";")
    by_queue: dict[str, list[dict[str, str]]] = {}
    for row in calls:
        by_queue.setdefault(row["queue"], []).append(row)
    abandoned = {
        q: sum(r["outcome"] == "abandoned" for r in rows) / len(rows)
        for q, rows in by_queue.items()
    }
    csat = {q: [int(r["csat"]) for r in rows if r["csat"]] for q, rows in by_queue.items()}
    mean_csat = {q: sum(v) / len(v) for q, v in csat.items()}
    assert max(abandoned, key=abandoned.get) == plan.SLOW_QUEUE
    assert min(mean_csat, key=mean_csat.get) == plan.SLOW_QUEUE
    # callers of the slow queue: those not answered reach intent less often than those answered
    owner = dict(pl.read_parquet(large / "truth_identifiers.parquet")
                 .filter(pl.col("identifier_kind") == "phone").select("identifier_value", "customer_id").iter_rows())  # fmt: skip
    customers = pl.read_parquet(large / "truth_customers.parquet")
    furthest = dict(
        customers.select("customer_id", pl.col("furthest_stage_order").fill_null(0)).iter_rows()
    )
    reached = {True: [], False: []}
    for row in by_queue[plan.SLOW_QUEUE]:
        customer = owner.get(row["caller_phone"])
        if customer is not None:
            reached[row["outcome"] == "answered"].append(furthest[customer] >= 4)
    answered_rate = sum(reached[True]) / len(reached[True])
    failed_rate = sum(reached[False]) / len(reached[False])
    assert failed_rate < 0.8 * answered_rate


def test_phone_path_region_orders_by_phone(large: Path) -> None:
    orders = [
        r for r in _csv(list(large.glob("raw/crm/*.csv")), ",") if r["activity"] == "order_placed"
    ]
    share: dict[str, list[bool]] = {}
    for row in orders:
        share.setdefault(row["region"], []).append(row["order_channel"] == "phone")
    rates = {region: sum(v) / len(v) for region, v in share.items()}
    assert rates[plan.PHONE_PATH_REGION] > 0.5
    assert max(r for k, r in rates.items() if k != plan.PHONE_PATH_REGION) < 0.2


def _valid_naive(text: str, zone: tzinfo, as_of: datetime) -> bool:
    """A parseable naive time in `zone` before as-of."""
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone) < as_of
    except ValueError:
        return False


def _rule_matches(rule, source: str, event: str, fields: dict[str, str | None]) -> bool:
    sources = [rule.source] if isinstance(rule.source, str) else rule.source
    events = [rule.event] if isinstance(rule.event, str) else rule.event
    if (sources and source not in sources) or (events and event not in events):
        return False
    if rule.url_pattern and not re.search(rule.url_pattern, fields.get("page_url") or ""):
        return False
    for key, wanted in rule.where.items():
        allowed = [wanted] if isinstance(wanted, str) else wanted
        if fields.get(key) not in allowed:
            return False
    return True


def _stage_order(config, source: str, event: str, fields: dict[str, str | None]) -> int:
    for order, stage in enumerate(config.stages, start=1):
        if any(_rule_matches(rule, source, event, fields) for rule in stage.rules):
            return order
    return 0


def test_truth_furthest_stages_follow_the_configs_stage_rules(company: Path, truth: dict) -> None:
    """Apply journey.yaml's rules to the valid rows, attribute rows through the identifier
    truth, and compare each customer's furthest stage with truth_customers."""
    config = load_config(CONFIG)
    as_of = datetime.fromisoformat(truth["as_of"]).replace(tzinfo=UTC)
    owner = {
        (k, v): c for k, v, c in pl.read_parquet(company / "truth_identifiers.parquet").iter_rows()
    }
    furthest: dict[str, int] = {}

    def touch(kind: str, value: str | None, order: int) -> None:
        customer = owner.get((kind, value or ""))
        if customer is not None:
            furthest[customer] = max(furthest.get(customer, 0), order)

    seen: set[str] = set()
    for path in sorted(company.glob("raw/web/*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                moment = datetime.fromisoformat(row["timestamp"])
            except ValueError:
                continue
            if row["event_id"] in seen or moment >= as_of:
                continue
            seen.add(row["event_id"])
            touch(
                "cookie",
                row["anonymous_id"],
                _stage_order(config, "web", row["event"], {"page_url": row["url"]}),
            )
    for row in _csv(list(company.glob("raw/crm/*.csv")), ","):
        if row["record_id"] in seen or not _valid_naive(row["occurred_at"], BERLIN, as_of):
            continue
        seen.add(row["record_id"])
        fields = {"deal_stage": row["deal_stage"], "nps_score": row["nps"]}
        touch("contact_id", row["contact_id"], _stage_order(config, "crm", row["activity"], fields))
    for row in _csv(list(company.glob("raw/calls/*.csv")), ";"):
        if row["call_id"] in seen or not _valid_naive(row["queued_at"], UTC, as_of):
            continue
        seen.add(row["call_id"])
        touch(
            "phone",
            row["caller_phone"],
            _stage_order(config, "calls", "call_queued", {"reason": row["reason"]}),
        )
    customers = pl.read_parquet(company / "truth_customers.parquet").filter(~pl.col("is_office"))
    expected = dict(
        customers.select("customer_id", pl.col("furthest_stage_order").fill_null(0)).iter_rows()
    )
    mismatched = {
        c: (e, furthest.get(c, 0)) for c, e in expected.items() if furthest.get(c, 0) != e
    }
    assert not mismatched, (
        f"{len(mismatched)} customers differ, e.g. {list(mismatched.items())[:5]}"
    )
