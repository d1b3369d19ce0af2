"""`cjm`: thin typer commands over the package. Each command parses its options and calls
one library function; no logic lives here."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from cjm_analytics.errors import CjmError

app = typer.Typer(
    help="cjm-analytics: customer journey maps from what customers actually did.",
    no_args_is_help=True,
    add_completion=False,
)
#: Piped output (make demo, CI logs) gets 120 columns instead of rich's 80, so tables stay whole.
console = Console(width=None if sys.stdout.isatty() else 120)
DEFAULT_CONFIG = Path("data/demo/journey.yaml")
ConfigOption = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="path to journey.yaml")


def fail(error: CjmError) -> None:
    """Print a CjmError for a person and exit with status 2."""
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(code=2)


# --- commands: each section is owned by one area; add yours below its heading -------------

# [generate]

GenerateOutOption = typer.Option(
    Path("data/demo"), "--out", "-o", help="folder to write raw/ and truth.json into"
)


@app.command()
def generate(
    customers: int = typer.Option(20_000, "--customers", "-n", help="number of customers"),
    seed: int = typer.Option(42, "--seed", "-s", help="random seed: same seed, same bytes"),
    out: Path = GenerateOutOption,
    constraint: str = typer.Option(
        "intent->purchase",
        "--constraint",
        help="planted constraint transition, e.g. consideration->intent",
    ),
    days: int = typer.Option(120, "--days", help="length of the generated period in days"),
    start: str | None = typer.Option(
        None, "--start", help="first day, YYYY-MM-DD (default 2026-02-02)"
    ),
    dirty_rate: float = typer.Option(0.01, "--dirty-rate", help="share of dirty rows per source"),
) -> None:
    """Write a synthetic Voltstore company (web, CRM, calls) with planted stories and truth.json."""
    from datetime import date

    from cjm_analytics.synthetic import generate as generate_company

    try:
        first = date.fromisoformat(start) if start else None
    except ValueError:
        fail(CjmError(f"--start {start!r} is not a date; use YYYY-MM-DD, e.g. 2026-02-02"))
        return
    try:
        summary = generate_company(out, customers, seed, constraint, first, days, dirty_rate)
    except CjmError as error:
        fail(error)
        return
    console.print(
        f"wrote {sum(summary.row_counts.values()):,} rows ({summary.event_count:,} valid events, "
        f"{summary.customers:,} customers) to {summary.out_dir}/raw in {summary.elapsed_seconds:.1f} s; "
        f"as-of {summary.as_of.isoformat()}; truth in {summary.truth_path}"
    )


# [ingest]


@app.command("ingest")
def ingest_command(config: Path = ConfigOption) -> None:
    """Load new source files into the event lake; print rows read/loaded/rejected per file."""
    from rich.table import Table

    from cjm_analytics.config import load_config
    from cjm_analytics.ingest import ingest

    try:
        summary = ingest(load_config(config))
    except CjmError as error:
        fail(error)
        return
    table = Table(title="ingest")
    for column in ("source", "file", "status", "read", "loaded", "rejected", "events"):
        table.add_column(
            column,
            justify="right" if column in ("read", "loaded", "rejected", "events") else "left",
        )
    for f in summary.files:
        table.add_row(f.source, f.source_file, f.status, str(f.rows_read), str(f.rows_loaded),
                      str(f.rows_rejected), str(f.events_loaded))  # fmt: skip
    console.print(table)
    reasons = Table(title="reject reasons")
    for column in ("file", "rows", "reason"):
        reasons.add_column(column)
    for f in summary.files:
        for reason, count in f.reject_reasons.items():
            reasons.add_row(f.source_file, str(count), reason)
        if f.message:
            reasons.add_row(f.source_file, "-", f.message)
    if reasons.row_count:
        console.print(reasons)
    console.print(
        f"{summary.rows_read} rows read, {summary.rows_loaded} loaded, {summary.rows_rejected} rejected; "
        f"{len(summary.failed)} file(s) failed"
    )
    if summary.failed:
        raise typer.Exit(code=1)


# [funnel]

FunnelWarehouseOption = typer.Option(
    None, "--warehouse", help="DuckDB file (default: paths.warehouse of journey.yaml)"
)


@app.command("funnel")
def funnel_command(
    steps: str = typer.Option(..., "--steps", help='event names in order, e.g. "a,b,c"'),
    window: str = typer.Option("14d", "--window", help="conversion window: 30s, 15m, 12h, 7d, 2w"),
    mode: str = typer.Option("ordered", "--mode", help="ordered | strict | unordered"),
    breakdown: str | None = typer.Option(None, "--breakdown", help="property column"),
    attribution: str = typer.Option(
        "first_touch", "--attribution", help="first_touch | last_touch | all_events | step"
    ),
    breakdown_step: int | None = typer.Option(
        None, "--breakdown-step", help="0-based step for --attribution step"
    ),
    date_from: str | None = typer.Option(None, "--from", help="first day/time, inclusive, UTC"),
    date_to: str | None = typer.Option(None, "--to", help="last day/time, inclusive, UTC"),
    unit: str = typer.Option("customer_id", "--unit", help="the column counted"),
    table: str | None = typer.Option(None, "--table", help="default: touchpoints, else events"),
    warehouse_path: Path | None = FunnelWarehouseOption,
    config: Path = ConfigOption,
) -> None:
    """Ad-hoc event funnel over the published warehouse (read-only); see docs/funnels.md."""
    from cjm_analytics.config import load_config
    from cjm_analytics.funnels.on_warehouse import parse_window, warehouse_funnel
    from cjm_analytics.reports.event_funnel import funnel_table

    try:
        path = warehouse_path or load_config(config).warehouse_path
        frame = warehouse_funnel(
            path,
            [s.strip() for s in steps.split(",") if s.strip()],
            table=table,
            mode=mode,
            window_seconds=parse_window(window),
            breakdown=breakdown,
            breakdown_attribution=attribution,
            breakdown_step=breakdown_step,
            unit=unit,
            date_from=date_from,
            date_to=date_to,
        )
    except CjmError as error:
        fail(error)
        return
    console.print(funnel_table(frame, title=f"{mode} funnel, window {window}"))


# [run / serve / report / query / doctor / demo]

AsOfOption = typer.Option(
    None, "--as-of", help="the night's as-of time, ISO (UTC); default: the latest event"
)
ReportOutOption = typer.Option(
    None, "--out", "-o", help="folder to write (default: reports/manual-<time>)"
)
FullRebuildOption = typer.Option(
    False, "--full-rebuild", help="re-ingest every source file into a new lake"
)


@app.command()
def run(
    config: Path = ConfigOption,
    as_of: str | None = AsOfOption,
    full_rebuild: bool = FullRebuildOption,
) -> None:
    """Run one night without any server: ingest, build, mine, report, publish."""
    from cjm_analytics.config import load_config
    from cjm_analytics.demo import parse_as_of
    from cjm_analytics.night_console import print_night, step_progress
    from cjm_analytics.pipeline import run_night

    try:
        cfg = load_config(config)
        with step_progress(console) as on_step:
            result = run_night(cfg, parse_as_of(as_of), full_rebuild, on_step=on_step)
    except CjmError as error:
        fail(error)
        return
    timings = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in result.step_seconds.items())
    console.print(f"run {result.record.run_id} succeeded ({timings})")
    print_night(console, result.warehouse_path, result.report_path)


@app.command()
def demo(
    config: Path = ConfigOption,
    customers: int = typer.Option(
        10_000, "--customers", "-n", help="customers to generate when data/demo/raw is empty"
    ),
    seed: int = typer.Option(7, "--seed", help="seed of the generated demo data"),
) -> None:
    """Generate the demo data when absent, run one night through the Prefect flow, print it."""
    import time

    from cjm_analytics import demo as demo_module
    from cjm_analytics.config import load_config
    from cjm_analytics.night_console import print_night

    try:
        cfg = load_config(config)
        with console.status("generating the demo company ..."):
            generated = demo_module.ensure_demo_data(cfg, customers, seed)
        if generated is not None:
            console.print(f"generated {customers:,} demo customers in {generated:.1f} s")
        began = time.perf_counter()
        with console.status("running the nightly flow (Prefect, no server) ..."):
            result = demo_module.run_flow(config, demo_module.truth_as_of(cfg))
    except CjmError as error:
        fail(error)
        return
    console.print(
        f"nightly flow {result['run_id']} finished in {time.perf_counter() - began:.1f} s"
    )
    print_night(console, Path(result["warehouse_path"]), result.get("report_path"))


@app.command()
def serve(config: Path = ConfigOption) -> None:
    """Serve the nightly flow on the config's cron and time zone (needs `prefect server start`)."""
    from prefect.schedules import Cron
    from prefect.settings import PREFECT_API_URL

    from cjm_analytics.config import load_config
    from pipelines.nightly import nightly

    try:
        cfg = load_config(config)
    except CjmError as error:
        fail(error)
        return
    if not PREFECT_API_URL.value():
        console.print(
            "[yellow]warning:[/] no Prefect server configured: schedules never fire on Prefect's "
            "temporary server. Run `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (see README)."
        )
    console.print(
        f"serving cjm-nightly on '{cfg.schedule.cron}' ({cfg.schedule.timezone}); Ctrl-C stops"
    )
    nightly.serve(
        name="cjm-nightly",
        schedule=Cron(cfg.schedule.cron, timezone=cfg.schedule.timezone),
        parameters={"config_path": str(config.resolve())},
    )


@app.command()
def report(
    config: Path = ConfigOption,
    out: Path | None = ReportOutOption,
) -> None:
    """Write a report folder from the published warehouse (read-only)."""
    from cjm_analytics import warehouse
    from cjm_analytics.config import load_config
    from cjm_analytics.history import utc_now
    from cjm_analytics.reports import build_report

    try:
        cfg = load_config(config)
        folder = out or cfg.reports_dir / f"manual-{utc_now():%Y%m%dT%H%M%S}"
        with warehouse.connection(cfg.warehouse_path, read_only=True) as con:
            index = build_report(con, folder, company=cfg.company)
    except CjmError as error:
        fail(error)
        return
    console.print(f"report: {index}")


@app.command()
def query(
    sql: str = typer.Argument(..., help="SQL to run on the published warehouse (read-only)"),
    config: Path = ConfigOption,
    max_rows: int = typer.Option(100, "--max-rows", help="rows to print at most"),
) -> None:
    """Run read-only SQL on the published warehouse and print the rows as a table."""
    import duckdb

    from cjm_analytics import warehouse
    from cjm_analytics.config import load_config
    from cjm_analytics.night_console import frame_table

    try:
        cfg = load_config(config)
        if not cfg.warehouse_path.is_file():
            raise CjmError(
                f"no published warehouse at {cfg.warehouse_path}; run `cjm run` or `make demo` first"
            )
        with warehouse.connection(cfg.warehouse_path, read_only=True) as con:
            frame = con.sql(sql).pl()
    except duckdb.Error as error:
        fail(CjmError(f"query failed: {error}"))
        return
    except CjmError as error:
        fail(error)
        return
    console.print(frame_table(frame, max_rows=max_rows))
    if frame.height > max_rows:
        console.print(f"({frame.height - max_rows:,} more rows not shown; --max-rows to see more)")


@app.command()
def doctor(config: Path = ConfigOption) -> None:
    """Check the config, the salt, paths, Chromium, DuckDB and the Prefect pins; say what to fix."""
    from cjm_analytics.doctor import run_checks

    checks = run_checks(config)
    for check in checks:
        mark = "[green]ok[/]  " if check.ok else "[red]FIX[/] "
        console.print(f"{mark} {check.name}: {check.detail}")
    if not all(check.ok for check in checks):
        raise typer.Exit(code=1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
