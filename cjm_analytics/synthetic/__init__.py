"""Seeded generator of Voltstore Electronics' web, CRM and call-center exports.

`generate(out_dir, customers, seed)` writes what data/demo/journey.yaml maps:
`raw/web/events-<ISO week>.jsonl`, `raw/crm/activities-<month>.csv`,
`raw/calls/calls-<month>.csv`, plus `truth.json`, `truth_customers.parquet` and
`truth_identifiers.parquet` with the planted stories (see docs/adr/0010-synthetic-company.md).
The same arguments give byte-identical files.

truth.json keys: `generator` (the arguments), `as_of` (end of the period, UTC, naive ISO),
`period`, `files` (relative path -> rows), `row_counts` and `dirty` (per source; dirty
rows per kind), `valid_event_count`, `events_per_customer` (per true journey), `journeys`
(true journeys: reached / furthest per stage, conversion per transition, status counts),
`stories.constraint` (planted transition, headroom segment, multipliers, and
`headroom_by_transition` computed the DESIGN.md way on the true journeys),
`stories.queue_problem`, `stories.phone_path`, `identifiers` (the Parquet file of
identifier_kind, identifier_value, customer_id; `shared` values left out of it;
`browsers`, the browser model's parameters, ADR 0011; `reach`, the pairwise recall a
perfect stitcher can reach on these rows) and
`customers` (the Parquet file of one row per true journey with its segments and status).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from cjm_analytics.errors import CjmError
from cjm_analytics.synthetic import browsers, dirt, files, plan, render, truth
from cjm_analytics.synthetic.clock import Clock, build_clock
from cjm_analytics.synthetic.events import EventLog
from cjm_analytics.synthetic.journeys import Walk, walk
from cjm_analytics.synthetic.plan import parse_constraint
from cjm_analytics.synthetic.population import Population, draw_population

__all__ = ["GenerateSummary", "generate", "parse_constraint"]

EPOCH = datetime(1970, 1, 1)
LEAD_IN_DAYS = 21  # journeys may have started before the window: their early touches are unseen
ABANDONMENT_DAYS = 14.0  # as data/demo/journey.yaml's timeouts.abandonment_days
BENCHMARK_MIN_JOURNEYS = 200  # as data/demo/journey.yaml's funnel.benchmark_min_journeys
OUTPUT_GLOBS = ("raw/web/events-*.jsonl", "raw/crm/activities-*.csv", "raw/calls/calls-*.csv")


@dataclass(frozen=True)
class GenerateSummary:
    """What one `generate` call wrote."""

    out_dir: Path
    customers: int
    seed: int
    constraint: str
    start: date
    as_of: datetime
    event_count: int
    row_counts: dict[str, int]
    files: dict[str, int] = field(repr=False)
    truth_path: Path
    elapsed_seconds: float


def _us(moment: datetime) -> int:
    return int((moment - EPOCH) / timedelta(microseconds=1))


def generate(
    out_dir: Path,
    customers: int,
    seed: int,
    constraint: str = "intent->purchase",
    start: date | None = None,
    days: int = 120,
    dirty_rate: float = 0.01,
) -> GenerateSummary:
    """Write `days` days of Voltstore's exports for `customers` customers into `out_dir`.

    The data's as-of is the end of the period (`start + days`, midnight UTC), stored in
    truth.json; no clean event is at or after it."""
    began = time.perf_counter()
    if customers < 1 or days < 7 or not 0 <= dirty_rate < 0.5:
        raise CjmError(
            f"generate: customers must be >= 1 (got {customers}), days >= 7 (got {days}), "
            f"dirty_rate in [0, 0.5) (got {dirty_rate})"
        )
    planted = parse_constraint(constraint)
    start = start or date.fromisoformat(plan.DEFAULT_START_ISO)
    first = datetime(start.year, start.month, start.day)
    as_of = first + timedelta(days=days)
    rng = np.random.default_rng(seed)
    clock = build_clock(first - timedelta(days=LEAD_IN_DAYS + 7), as_of + timedelta(days=240))
    pop = draw_population(rng, customers)
    w = _walk(rng, pop, clock, first, as_of)
    walk(w, planted)
    browsers.assign_browsers(w)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    rows, written = _write_sources(w, out_dir, _us(first), _us(as_of), dirty_rate)
    settings = {"customers": customers, "seed": seed, "constraint": planted.label, "start": start.isoformat(),
                "days": days, "dirty_rate": dirty_rate}  # fmt: skip
    event_count = _write_truth(out_dir, rows, w, settings, as_of, written, planted)
    return GenerateSummary(
        out_dir=out_dir, customers=customers, seed=seed, constraint=planted.label, start=start,
        as_of=as_of, event_count=event_count, row_counts={s: f.height for s, f in rows.items()},
        files=written, truth_path=out_dir / "truth.json", elapsed_seconds=time.perf_counter() - began,
    )  # fmt: skip


def _walk(
    rng: np.random.Generator, pop: Population, clock: Clock, first: datetime, as_of: datetime
) -> Walk:
    window = clock.to_operational(np.array([_us(first - timedelta(days=LEAD_IN_DAYS)), _us(as_of)]))
    start = rng.uniform(window[0], window[1], pop.size)
    has_account = pop.is_returning & (rng.random(pop.size) < 0.9)
    login_at = np.where(has_account & (rng.random(pop.size) < 0.6), start, np.inf)
    return Walk(
        rng=rng, pop=pop, clock=clock, log=EventLog(), start=start,
        has_contact=pop.is_returning.copy(), has_account=has_account, login_at=login_at,
        failed_call=np.zeros(pop.size, bool), furthest=np.zeros(pop.size, np.int64), last_at=start.copy(),
    )  # fmt: skip


def _write_sources(
    w: Walk, out_dir: Path, first_us: int, as_of_us: int, dirty_rate: float
) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """Render, spoil and write the three sources; return the rows truth needs and the files.

    The web log, by far the largest, is finished and written one weekly file at a time so
    its JSON text never sits in memory whole."""
    web = render.web_rows(w, w.log, first_us, as_of_us)
    crm = files.finish_crm(
        render.crm_rows(w, w.log, first_us, as_of_us), w.rng, dirty_rate, as_of_us
    )
    calls = files.finish_calls(
        render.call_rows(w, w.log, first_us, as_of_us), w.rng, dirty_rate, as_of_us
    )
    w.log.chunks.clear()
    written: dict[str, int] = {}
    web_parts = []
    for part in web.partition_by("_file", maintain_order=True) or [web]:
        finished = files.finish_web(part, w.rng, dirty_rate, as_of_us)
        written |= files.write_jsonl(finished, out_dir)
        web_parts.append(finished.drop("_line"))
    del web
    written |= files.write_csv(crm, out_dir, render.CRM_COLUMNS, ",")
    written |= files.write_csv(calls, out_dir, render.CALL_COLUMNS, ";")
    return {"web": pl.concat(web_parts), "crm": crm, "calls": calls}, written


def _clear(out_dir: Path) -> None:
    """Remove files an earlier run wrote (only the generator's own file names)."""
    for pattern in (
        *OUTPUT_GLOBS,
        "truth.json",
        "truth_customers.parquet",
        "truth_identifiers.parquet",
    ):
        for path in out_dir.glob(pattern):
            path.unlink()


def _write_truth(
    out_dir: Path,
    rows: dict[str, pl.DataFrame],
    w: Walk,
    settings: dict[str, object],
    as_of: datetime,
    written: dict[str, int],
    planted: plan.Constraint,
) -> int:
    customers = truth.customer_truth(rows, w.pop, _us(as_of), ABANDONMENT_DAYS)
    identifiers = truth.identifier_truth(rows, w.pop, w.cookies, w.cookie_owner)
    customers.write_parquet(out_dir / "truth_customers.parquet", statistics=False)
    identifiers.write_parquet(out_dir / "truth_identifiers.parquet", statistics=False)
    event_count = int(customers["event_count"].sum())
    document = {
        "company": "Voltstore Electronics",
        "generator": settings,
        "as_of": truth.iso(as_of),
        "period": {
            "start": settings["start"],
            "end": truth.iso(as_of),
        },
        "files": written,
        "row_counts": {s: f.height for s, f in rows.items()},
        "valid_event_count": event_count,
        "events_per_customer": event_count / max(customers.height, 1),
        "dirty": {s: _dirty_counts(f, s) for s, f in rows.items()},
        "journeys": truth.funnel(customers),
        "stories": {
            "constraint": _constraint_story(planted, customers),
            "queue_problem": truth.queue_story(rows["calls"], customers),
            "phone_path": truth.phone_story(rows["crm"]),
        },
        "identifiers": {
            "path": "truth_identifiers.parquet",
            "row_count": identifiers.height,
            "kinds": dict(sorted(identifiers.group_by("identifier_kind").len().iter_rows())),
            "shared": {"phone": [plan.SWITCHBOARD_PHONE]},
            "browsers": browsers.summary(w),
            "reach": truth.identifier_reach(rows, identifiers),
        },
        "customers": {"path": "truth_customers.parquet", "row_count": customers.height},
    }
    text = json.dumps(document, indent=2, sort_keys=False, default=_jsonable) + "\n"
    (out_dir / "truth.json").write_text(text, encoding="utf-8")
    return event_count


def _dirty_counts(frame: pl.DataFrame, source: str) -> dict[str, int]:
    """Dirty rows per kind as written (a duplicate counts its extra copy once)."""
    counted = frame.filter(
        pl.col("_dirty").is_not_null() & ((pl.col("_dirty") != "duplicate") | pl.col("_copy"))
    )
    counts = dict(counted.group_by("_dirty").len().iter_rows())
    return {kind: int(counts.get(kind, 0)) for kind in dirt.DIRTY_KINDS[source]}


def _constraint_story(planted: plan.Constraint, customers: pl.DataFrame) -> dict[str, object]:
    return {
        "transition": list(planted.transition),
        "headroom_segment": {"dimension": plan.HEADROOM_DIMENSION, "value": plan.HEADROOM_VALUE},
        "multiplier_in_headroom_segment": plan.HEADROOM_LIFT,
        "multiplier_elsewhere": plan.DEPRESSION,
        "base_conversion_rate": plan.BASE_CONVERSION[planted.from_stage - 1],
        "benchmark_min_journeys": BENCHMARK_MIN_JOURNEYS,
        "headroom_by_transition": truth.headroom(customers, BENCHMARK_MIN_JOURNEYS),
    }


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
