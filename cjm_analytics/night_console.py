"""Rich output for the CLI: step progress during a run, and the night's closing summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from cjm_analytics import warehouse
from cjm_analytics.reports.constraint import constraint_name
from cjm_analytics.reports.summary import funnel_table


def frame_table(frame: pl.DataFrame, title: str | None = None, max_rows: int = 200) -> Table:
    """A polars frame as a rich table (rates as percentages)."""
    table = Table(title=title, show_lines=False)
    for column in frame.columns:
        table.add_column(column, justify="left" if frame[column].dtype == pl.String else "right")
    for row in frame.head(max_rows).iter_rows():
        table.add_row(*(_text(c, v) for c, v in zip(frame.columns, row, strict=True)))
    return table


def _text(column: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        is_share = column.endswith(("_rate", "_share", " rate", " share"))
        return f"{value:.1%}" if is_share else f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@contextmanager
def step_progress(console: Console) -> Iterator[Callable[[str], None]]:
    """A callback for `run_night(on_step=...)` that shows the running step with a spinner."""
    with console.status("starting") as status:

        def on_step(step: str) -> None:
            status.update(f"[bold]{step}[/] ...")
            console.log(f"step: {step}")

        yield on_step


def print_night(console: Console, warehouse_path: Path, report_path: Path | str | None) -> None:
    """The funnel table, the constraint and the report path of the published night."""
    with warehouse.connection(warehouse_path, read_only=True) as con:
        funnel = funnel_table(con)
        name = constraint_name(con)
    if funnel.height:
        short = {c: c.removesuffix("_count").replace("_", " ") for c in funnel.columns}
        console.print(frame_table(funnel.rename(short), title="Stage funnel"))
    console.print(f"[bold]Constraint:[/] {name or 'none computed'}")
    console.print(f"[bold]Warehouse:[/] {warehouse_path}", soft_wrap=True)
    if report_path:
        console.print(f"[bold]Report:[/] {report_path}", soft_wrap=True)
