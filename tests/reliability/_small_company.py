"""A small generated company (raw emails and phones included) and its nights, made once per
test session for the idempotence and PII tests of tests/reliability."""

from __future__ import annotations

import atexit
import functools
import shutil
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


@functools.cache
def two_nights() -> tuple[tuple[RunResult, dict[str, Any]], tuple[RunResult, dict[str, Any]]]:
    """The company's night, run twice with the same as-of: (result, state_facts) of each."""
    from state_facts import state_facts

    cfg = company_config()
    first = run_night(cfg)
    first_facts = state_facts(cfg)
    second = run_night(cfg, as_of=first.facts["as_of"])
    return (first, first_facts), (second, state_facts(cfg))
