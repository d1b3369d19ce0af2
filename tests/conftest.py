"""Shared test settings: a PII salt for tests, Prefect without analytics, paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = (REPO.parent / "shared" / "data" / "real").resolve()

os.environ.setdefault("CJM_PII_SALT", "test-salt-not-a-secret-0123456789")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_HOME", str(REPO / ".prefect"))
os.environ.setdefault("RETENTIONEERING_NO_TRACK", "1")


@pytest.fixture
def real_data() -> Path:
    """../shared/data/real, or a clear skip when this checkout has no shared data beside it."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real event logs not found at {REAL_DATA} (they live in ../shared/data/real)")
    return REAL_DATA
