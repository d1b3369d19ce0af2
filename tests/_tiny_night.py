"""Two tiny nights of the demo company, run end to end once per test session and shared by
the integration tests (pipeline, docs, notebook, browser, CLI).

Night 1 is a normal run as of a week before the data's end; night 2 is a full rebuild as of
the end, so the history, the what-changed tables and the lake swap all have something to do.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cjm_analytics.config import JourneyConfig, load_config
from cjm_analytics.demo import truth_as_of
from cjm_analytics.pipeline import RunResult, run_night

REPO = Path(__file__).resolve().parent.parent
CUSTOMERS = 300
SEED = 11
DAYS = 28


@dataclass(frozen=True)
class TinyNights:
    root: Path
    config_path: Path
    cfg: JourneyConfig
    first: RunResult
    second: RunResult


def new_demo_folder(prefix: str) -> Path:
    """A temporary `<root>/demo/journey.yaml` (the demo config; its paths land in <root>)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, root, True)
    demo = root / "demo"
    demo.mkdir()
    shutil.copy(REPO / "data" / "demo" / "journey.yaml", demo / "journey.yaml")
    return demo


@functools.cache
def generated_demo() -> Path:
    """The tiny demo company's raw files, generated once per session (copied by callers)."""
    from cjm_analytics.synthetic import generate

    demo = new_demo_folder("cjm-tiny-raw-")
    generate(demo, CUSTOMERS, SEED, days=DAYS)
    return demo


def demo_copy(prefix: str) -> Path:
    """A fresh folder with the tiny demo's config, raw files and truth; returns journey.yaml."""
    demo = new_demo_folder(prefix)
    source = generated_demo()
    for item in source.iterdir():
        if item.name != "journey.yaml":
            (shutil.copytree if item.is_dir() else shutil.copy)(item, demo / item.name)
    return demo / "journey.yaml"


@functools.cache
def tiny_nights() -> TinyNights:
    config_path = demo_copy("cjm-tiny-")
    cfg = load_config(config_path)
    as_of = truth_as_of(cfg)
    assert as_of is not None
    first = run_night(cfg, as_of - timedelta(days=7))
    second = run_night(cfg, as_of, full_rebuild=True)
    return TinyNights(config_path.parent.parent, config_path, cfg, first, second)
