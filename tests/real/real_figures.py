"""Run a real log's example config through the product and read its figures back.

The figures come out in the shape of the log's `reference_figures.json` (events, cases,
variants, the ordered stage funnel and its bottleneck), so a test compares the two
dictionaries key by key. Nothing here knows any particular log: the stage labels are
built from the config's own rules ("A|B" when a stage matches two events), which also
checks that each example's stages are the reference's stages.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cjm_analytics import warehouse
from cjm_analytics.config import JourneyConfig, load_config
from cjm_analytics.identity import stitch
from cjm_analytics.ingest import ingest, load_lake
from cjm_analytics.journeys import build_journey_models
from cjm_analytics.mining import LOG_MODELS, load_designed_journey, mining_models
from cjm_analytics.pipeline import resolve_as_of

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "data" / "examples"
#: Keys of reference_figures.json a run must reproduce exactly.
COUNT_KEYS = ("events", "cases", "activities", "t_min", "t_max")
CASE_KEYS = ("events_per_case_mean", "events_per_case_median", "events_per_case_max")


def example_config(name: str, out_dir: Path, file: str = "journey.yaml") -> JourneyConfig:
    """data/examples/<name>/<file> as a user loads it, writing into `out_dir`."""
    cfg = load_config(EXAMPLES / name / file)
    paths = cfg.paths.model_copy(
        update={
            "lake": str(out_dir / "lake"),
            "warehouse": str(out_dir / "warehouse" / "cjm.duckdb"),
            "reports": str(out_dir / "reports"),
            "runs": str(out_dir / "runs"),
        }
    )
    return cfg.model_copy(update={"paths": paths})


def reference(real_data: Path, name: str) -> dict[str, Any]:
    return json.loads((real_data / name / "reference_figures.json").read_text(encoding="utf-8"))


def build_example(cfg: JourneyConfig) -> duckdb.DuckDBPyConnection:
    """ingest -> lake -> stitch -> stages and journeys -> mining SQL marts, in one warehouse.

    The same package functions the nightly run calls, minus model discovery, conformance,
    history and the report (see `pipeline.run_night` for the whole night).
    """
    summary = ingest(cfg, as_of=datetime.now(UTC))
    failed = [f"{f.source_file}: {f.message}" for f in summary.failed]
    assert not failed, failed
    cfg.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = warehouse.connect(cfg.warehouse_path)
    load_lake(con, cfg)
    stitch(con, cfg)
    build_journey_models(con, cfg, resolve_as_of(con, None))
    load_designed_journey(con, cfg)
    warehouse.run_models(con, mining_models(LOG_MODELS))
    return con


def stage_labels(cfg: JourneyConfig) -> list[str]:
    """Each stage as the reference names it: its rules' event names joined by '|'."""
    labels = []
    for stage in cfg.stages:
        names: list[str] = []
        for rule in stage.rules:
            names += [rule.event] if isinstance(rule.event, str) else list(rule.event or [])
        labels.append("|".join(names))
    return labels


def _text(moment: datetime) -> str:
    """A timestamp as the reference writes it: milliseconds only when there are some."""
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text + f".{moment.microsecond // 1000:03d}" if moment.microsecond else text


def measured_figures(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> dict[str, Any]:
    """The run's figures in the shape of reference_figures.json (see module doc)."""
    events, cases, activities, t_min, t_max = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), count(DISTINCT event_name), "
        "min(event_at), max(event_at) FROM events"
    ).fetchone()  # type: ignore[misc]
    mean, median, most = con.execute(
        "SELECT round(avg(touchpoint_count), 2), median(touchpoint_count), max(touchpoint_count) "
        "FROM journeys"
    ).fetchone()  # type: ignore[misc]
    figures: dict[str, Any] = {
        "events": events,
        "cases": cases,
        "activities": activities,
        "t_min": _text(t_min),
        "t_max": _text(t_max),
        "events_per_case_mean": float(mean),
        "events_per_case_median": float(median),
        "events_per_case_max": most,
    }
    figures |= variant_figures(con)
    figures["funnel"] = funnel_figures(con, cfg)
    return figures


def variant_figures(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """n_variants and the top five (journeys, share in % of all journeys, 2 decimals)."""
    (count,) = con.execute("SELECT count(*) FROM variants").fetchone()  # type: ignore[misc]
    (journeys,) = con.execute("SELECT sum(journey_count) FROM variants").fetchone()  # type: ignore[misc]
    top = con.execute(
        "SELECT variant_label, journey_count FROM variants ORDER BY variant_rank LIMIT 5"
    ).fetchall()
    # the share rounded like the reference: 100 * 7158 / 8000 = 89.475 -> 89.47 (binary float)
    return {
        "n_variants": count,
        "top5_variants": [{"variant": v, "cases": c, "pct": _pct(c, journeys)} for v, c in top],
    }


def funnel_figures(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig) -> dict[str, Any]:
    """The ordered funnel per stage, its lowest step conversion and largest absolute drop-off.

    ordered_cases = stage_funnel.reached_count; conv_from_prev_pct = reached(k) /
    reached(k-1) (for the first stage: / all journeys); dropoff_from_prev = reached(k-1) -
    reached(k). The bottleneck is the product's `lowest_rate` finding (constraint_stage);
    the largest drop-off is the stage whose arrivals fell most, reached(k-1) - reached(k)
    (abandoned + in progress: the product's own `largest_loss` counts abandoned only).
    """
    rows = con.execute(
        "SELECT stage, reached_count FROM stage_funnel ORDER BY stage_order"
    ).fetchall()
    (journeys,) = con.execute("SELECT count(*) FROM journeys").fetchone()  # type: ignore[misc]
    labels = dict(zip(cfg.stage_names, stage_labels(cfg), strict=True))
    first = rows[0][1]
    stages, previous = [], journeys
    for index, (stage, reached) in enumerate(rows):
        stages.append(
            {
                "stage": labels[stage],
                "ordered_cases": reached,
                "conv_from_prev_pct": _pct(reached, previous),
                "conv_from_first_pct": _pct(reached, first),
                "dropoff_from_prev": None if index == 0 else previous - reached,
            }
        )
        previous = reached
    lowest = con.execute(
        "SELECT to_stage FROM constraint_stage WHERE finding = 'lowest_rate'"
    ).fetchone()
    drops = [(s["dropoff_from_prev"], s["stage"]) for s in stages[1:]]
    return {
        "stages": stages,
        "bottleneck_lowest_step_conversion": labels[lowest[0]] if lowest else None,
        "largest_absolute_dropoff": max(drops, key=lambda d: d[0])[1] if drops else None,
    }


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def expected_figures(ref: dict[str, Any]) -> dict[str, Any]:
    """The reference's figures this product computes, in the shape of `measured_figures`."""
    keep_stage = ("stage", "ordered_cases", "conv_from_prev_pct", "conv_from_first_pct")
    funnel = ref["funnel"]
    return {
        **{key: ref[key] for key in COUNT_KEYS + CASE_KEYS},
        "n_variants": ref["n_variants"],
        "top5_variants": ref["top5_variants"],
        "funnel": {
            "stages": [
                {**{k: s[k] for k in keep_stage}, "dropoff_from_prev": s["dropoff_from_prev"]}
                for s in funnel["stages"]
            ],
            "bottleneck_lowest_step_conversion": funnel["bottleneck_lowest_step_conversion"],
            "largest_absolute_dropoff": funnel["largest_absolute_dropoff"],
        },
    }


def differences(measured: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """One line per figure that differs (empty when everything matches)."""
    found = []
    for key, want in expected.items():
        got = measured.get(key)
        if key == "funnel":
            found += [f"funnel.{d}" for d in differences(got or {}, want)]
        elif key == "stages":
            for i, (g, w) in enumerate(zip(got or [], want, strict=False)):
                found += [f"stages[{i}].{d}" for d in differences(g, w)]
            if len(got or []) != len(want):
                found.append(f"stages: {len(got or [])} stages, reference {len(want)}")
        elif got != want:
            found.append(f"{key}: got {got!r}, reference {want!r}")
    return found
