"""A small generated company (raw emails and phones included) and its nights, made once per
test session for the idempotence and PII tests of tests/reliability."""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cjm_analytics.config import JourneyConfig, load_config
from cjm_analytics.pipeline import RunResult, run_night
from cjm_analytics.synthetic import generate

REPO = Path(__file__).resolve().parent.parent.parent
CUSTOMERS, SEED, DAYS = 60, 17, 14


def new_company(prefix: str) -> Path:
    """A fresh folder with the demo journey.yaml and a generated company; returns the yaml."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, root, True)
    demo = root / "demo"
    demo.mkdir()
    shutil.copy(REPO / "data" / "demo" / "journey.yaml", demo / "journey.yaml")
    generate(demo, CUSTOMERS, SEED, days=DAYS)
    return demo / "journey.yaml"


@functools.cache
def company_config() -> JourneyConfig:
    return load_config(new_company("cjm-reliability-"))


#: An analyst's session in another process: read-only, open for the whole second night.
ANALYST = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
for _ in sys.stdin:
    sql = "SELECT max(run_id) FILTER (WHERE status = 'succeeded'), count(*) FROM runs"
    print(*con.execute(sql).fetchone(), sep=",", flush=True)
"""


def ask(analyst: subprocess.Popen[str]) -> str:
    assert analyst.stdin is not None and analyst.stdout is not None
    analyst.stdin.write("query\n")
    analyst.stdin.flush()
    return analyst.stdout.readline().strip()


@functools.cache
def two_nights() -> tuple[tuple[RunResult, dict[str, Any]], tuple[RunResult, dict[str, Any]]]:
    """The company's night, run twice with the same as-of: (result, state_facts) of each.
    An analyst's read-only session stays open on the warehouse during the second night;
    its answers before and after are in the second result's facts (`analyst_answers`)."""
    from state_facts import state_facts

    cfg = company_config()
    first = run_night(cfg)
    first_facts = state_facts(cfg)
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(cfg.warehouse_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        before = ask(analyst)
        second = run_night(cfg, as_of=first.facts["as_of"])
        after = ask(analyst)
    finally:
        analyst.kill()
        analyst.wait()
    second_facts = state_facts(cfg) | {"analyst_answers": [before, after]}
    return (first, first_facts), (second, second_facts)
