"""A small generated Voltstore shared by the synthetic tests (generated once per module)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cjm_analytics.synthetic import generate


@pytest.fixture(scope="package")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 customers, seed 11, 2% dirty rows (enough of every kind to count)."""
    out = tmp_path_factory.mktemp("voltstore")
    generate(out, customers=2000, seed=11, dirty_rate=0.02)
    return out


@pytest.fixture(scope="package")
def truth(company: Path) -> dict:
    return json.loads((company / "truth.json").read_text(encoding="utf-8"))
