"""Interval error bars shared by the charts that show a rate or a count with its bounds."""

from __future__ import annotations

from typing import Any

import polars as pl


def interval_error_bars(frame: pl.DataFrame, value: str, low: str, high: str) -> dict[str, Any]:
    """plotly `error_y` for asymmetric bounds: bars from `frame[low]` to `frame[high]`."""
    return {
        "type": "data",
        "symmetric": False,
        "array": (frame[high] - frame[value]).to_list(),
        "arrayminus": (frame[value] - frame[low]).to_list(),
    }
