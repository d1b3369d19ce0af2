"""Running an ad-hoc funnel against the published warehouse (the `cjm funnel` command)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from cjm_analytics import warehouse
from cjm_analytics.errors import FunnelError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
#: Tables tried in order when none is named: touchpoints (known customers, stage-mapped)
#: first, then events (every attribute column).
TABLES = ("touchpoints", "events")


def parse_window(text: str) -> float:
    """'30s', '15m', '12h', '7d', '2w' or plain seconds -> seconds."""
    match = _WINDOW.match(str(text))
    if not match:
        raise FunnelError(
            f"--window: {text!r} is not a duration; use a number with s, m, h, d or w (e.g. 7d)"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def pick_table(columns_by_table: dict[str, list[str]], needed: set[str]) -> str:
    """The first of TABLES that exists and has every needed column."""
    for name in TABLES:
        if name in columns_by_table and needed <= set(columns_by_table[name]):
            return name
    have = {k: sorted(v) for k, v in columns_by_table.items() if k in TABLES}
    raise FunnelError(
        f"warehouse: no table among {list(TABLES)} has the columns {sorted(needed)}; "
        f"found {have or 'none of them'}. Run the pipeline first, or pass --table"
    )


def warehouse_funnel(
    path: str | Path, steps: list[Any], *, table: str | None = None, **kwargs: Any
) -> pl.DataFrame:
    """`event_funnel` over a table of the published warehouse, opened read-only."""
    from cjm_analytics.funnels import event_funnel

    path = Path(path)
    if not path.is_file():
        raise FunnelError(f"warehouse: {path} does not exist; run the pipeline (cjm run) first")
    with warehouse.connection(path, read_only=True) as con:
        if table is None:
            rows = con.execute(
                "SELECT table_name, list(column_name) FROM duckdb_columns() "
                "WHERE NOT internal GROUP BY table_name"
            ).fetchall()
            needed = {"event_at", "event_name", kwargs.get("unit", "customer_id")}
            if kwargs.get("breakdown"):
                needed.add(kwargs["breakdown"])
            table = pick_table({name: cols for name, cols in rows}, needed)
        return event_funnel(table, steps, con=con, **kwargs)
