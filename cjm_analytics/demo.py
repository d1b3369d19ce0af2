"""`cjm demo`: the demo company's data (generated once) and one night through the Prefect
flow in ephemeral mode (no server to start)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cjm_analytics.config import JourneyConfig
from cjm_analytics.errors import CjmError

DEMO_CUSTOMERS = 10_000
DEMO_SEED = 7
#: Prefect settings for a run without a server (see ../shared/notes and the Makefile).
PREFECT_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def raw_files(cfg: JourneyConfig) -> list[Path]:
    """The source files the config's globs match now."""
    return [path for source in cfg.sources.values() for path in cfg.base_dir.glob(source.path)]


def ensure_demo_data(
    cfg: JourneyConfig, customers: int = DEMO_CUSTOMERS, seed: int = DEMO_SEED
) -> float | None:
    """Generate the demo company into the config's folder when no source file exists yet.

    Returns the seconds generating took, or None when the data was already there.
    """
    if raw_files(cfg):
        return None
    from cjm_analytics.synthetic import generate

    began = time.perf_counter()
    generate(cfg.base_dir, customers, seed)
    return time.perf_counter() - began


def truth_as_of(cfg: JourneyConfig) -> datetime | None:
    """The generated data's as-of time from `truth.json` beside the config, if there is one."""
    path = cfg.base_dir / "truth.json"
    if not path.is_file():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get("as_of")
    return datetime.fromisoformat(value).replace(tzinfo=None) if value else None


def run_flow(
    config_path: Path, as_of: datetime | None, full_rebuild: bool = False
) -> dict[str, Any]:
    """One night through the Prefect flow, Prefect in ephemeral mode."""
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from pipelines.nightly import nightly

    return nightly(config_path=str(config_path), as_of=as_of, full_rebuild=full_rebuild)


def parse_as_of(text: str | None) -> datetime | None:
    """`--as-of` text as a naive UTC time (an offset is converted to UTC), or None."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CjmError(
            f"--as-of {text!r} is not an ISO time; use e.g. 2026-06-02 or 2026-06-02T02:00+01:00"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
