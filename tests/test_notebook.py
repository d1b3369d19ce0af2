"""The analyst notebook runs top to bottom on a real warehouse (SQL, polars, plotly)."""

from __future__ import annotations

import nbformat
import pytest
from _tiny_night import REPO, tiny_nights
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "explore_warehouse.ipynb"


def test_explore_warehouse_notebook_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    nights = tiny_nights()
    monkeypatch.setenv("CJM_WAREHOUSE", str(nights.cfg.warehouse_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    outputs = [
        o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    ]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 2  # the stage funnel and the segment bars
    text = " ".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "awareness" in text and "succeeded" in text  # the funnel and the run history
