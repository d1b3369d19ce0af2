"""Every real log in ../shared/data/real, run through its example config, reproduces its
reference figures exactly: event and case counts, the variants and the top five, the
ordered stage funnel per stage, its lowest step conversion and its largest drop-off.

The example configs are the ones a user runs (`cjm run --config data/examples/<log>/
journey.yaml`), with only the output folders moved into tmp. Each log is built once per
session (ingest -> lake -> stitch -> stages -> mining marts) and shared by its tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from real_figures import (
    CASE_KEYS,
    COUNT_KEYS,
    EXAMPLES,
    REPO,
    build_example,
    differences,
    example_config,
    expected_figures,
    measured_figures,
    reference,
    stage_labels,
)

from cjm_analytics import warehouse
from cjm_analytics.config import load_config
from cjm_analytics.pipeline import run_night

pytestmark = pytest.mark.real

LOGS = [
    "bpi2012_loan_application",
    "helpdesk_tickets",
    "olist_marketing_funnel",
    "otto_sessions_sample",
    "receipt_wabo",
    "roadtraffic_100",
    "sepsis_cases",
    "technion_callcenter_aug1999",
]
_BUILT: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}


def figures(name: str, real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(measured, expected) for one log, built on first use in this session."""
    if name not in _BUILT:
        cfg = example_config(name, tmp_path_factory.mktemp(name))
        con = build_example(cfg)
        try:
            measured = measured_figures(con, cfg)
        finally:
            con.close()
        _BUILT[name] = (measured, expected_figures(reference(real_data, name)))
    return _BUILT[name]


def _check(measured: dict[str, Any], expected: dict[str, Any], keys: tuple[str, ...]) -> None:
    found = differences({k: measured[k] for k in keys}, {k: expected[k] for k in keys})
    assert not found, "\n".join(found)


def test_every_real_log_has_an_example(real_data):
    logs = sorted(p.name for p in real_data.iterdir() if (p / "reference_figures.json").is_file())
    assert logs == LOGS


@pytest.mark.parametrize("name", LOGS)
def test_example_stages_are_the_reference_stages(name, real_data):
    cfg = load_config(EXAMPLES / name / "journey.yaml")
    ref = reference(real_data, name)
    assert stage_labels(cfg) == [s["stage"] for s in ref["funnel"]["stages"]]
    assert cfg.funnel.mode == "ordered"
    assert cfg.success_stage == cfg.stage_names[-1]


@pytest.mark.parametrize("name", LOGS)
def test_example_writes_only_into_the_ignored_runs_folder(name):
    cfg = load_config(EXAMPLES / name / "journey.yaml")
    runtime = REPO / "data" / "runs"  # git-ignored (.gitignore: data/runs/)
    for path in (cfg.lake_dir, cfg.warehouse_path, cfg.reports_dir, cfg.runs_dir):
        assert path.is_relative_to(runtime / "examples" / name), path
    for source in cfg.sources.values():
        assert cfg.resolve(source.path).is_relative_to(REPO.parent / "shared" / "data" / "real")


@pytest.mark.parametrize("name", LOGS)
def test_counts_match_the_reference(name, real_data, tmp_path_factory):
    measured, expected = figures(name, real_data, tmp_path_factory)
    _check(measured, expected, COUNT_KEYS + CASE_KEYS)


@pytest.mark.parametrize("name", LOGS)
def test_variants_match_the_reference(name, real_data, tmp_path_factory):
    measured, expected = figures(name, real_data, tmp_path_factory)
    _check(measured, expected, ("n_variants", "top5_variants"))


@pytest.mark.parametrize("name", LOGS)
def test_ordered_funnel_and_bottleneck_match_the_reference(name, real_data, tmp_path_factory):
    measured, expected = figures(name, real_data, tmp_path_factory)
    _check(measured, expected, ("funnel",))


def test_a_whole_night_on_a_real_log_publishes_the_reference_funnel(real_data, tmp_path):
    # the path `cjm run --config ...` takes: ingest .. mining (pm4py) .. report .. publish
    cfg = example_config("roadtraffic_100", tmp_path)
    result = run_night(cfg)
    assert result.succeeded and result.report_path is not None and result.report_path.is_file()
    ref = reference(real_data, "roadtraffic_100")
    assert result.facts["variant_count"] == ref["n_variants"]
    assert result.facts["journey_count"] == ref["cases"]
    with warehouse.connection(result.warehouse_path, read_only=True) as con:
        reached = con.execute("SELECT reached_count FROM stage_funnel ORDER BY stage_order")
        reached = [row[0] for row in reached.fetchall()]
    assert reached == [s["ordered_cases"] for s in ref["funnel"]["stages"]]


def test_activity_and_lifecycle_names_give_the_reference_alt_variants(real_data, tmp_path):
    # BPI 2012 named by two XES keys, `activity+lifecycle` (columns.event_name as a list
    # joined by event_name_separator): the reference's n_variants_alt and top5_variants_alt
    name = "bpi2012_loan_application"
    cfg = example_config(name, tmp_path, "journey_lifecycle.yaml")
    con = build_example(cfg)
    try:
        measured = measured_figures(con, cfg)
    finally:
        con.close()
    ref = reference(real_data, name)
    assert measured["n_variants"] == ref["n_variants_alt"]
    assert measured["top5_variants"] == ref["top5_variants_alt"]
    ordered = [s["ordered_cases"] for s in measured["funnel"]["stages"]]
    assert ordered == [s["ordered_cases"] for s in ref["funnel"]["stages"]]
