"""Whole nights on the real logs: seconds per step, and the funnel an analyst reads.

Runs `pipeline.run_night` (ingest .. mining with pm4py .. report .. publish) on each
example config in data/examples/ with its output moved into a scratch folder, then prints
the wall and CPU seconds of every step and a markdown summary of the published warehouse
(the ordered funnel, the constraint findings, the top paths): the source of
docs/real-logs.md.

    CJM_PII_SALT=... .venv/bin/python bench/bench_real_logs.py [log ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "real"))

from real_figures import example_config  # noqa: E402

from cjm_analytics import warehouse  # noqa: E402
from cjm_analytics.pipeline import run_night  # noqa: E402

LOGS = sorted(p.parent.name for p in (REPO / "data" / "examples").glob("*/journey.yaml"))


def timed_night(name: str, out: Path) -> tuple[Path, dict[str, float], float, float]:
    """(published warehouse, wall seconds per step, total wall, total CPU) of one night."""
    cfg = example_config(name, out / name)
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_night(cfg)
    return (
        result.warehouse_path,
        result.step_seconds,
        time.perf_counter() - wall,
        time.process_time() - cpu,
    )


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _days(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def summary_markdown(name: str, path: Path) -> str:
    """The funnel table, the findings and the top paths of one published warehouse."""
    lines = [f"### {name}", ""]
    with warehouse.connection(path, read_only=True) as con:
        lines += [
            "| stage | reached | moved on | abandoned | in progress | conversion (95% CI) "
            "| median to next |",
            "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
        ]
        for row in con.execute(
            "SELECT stage, reached_count, converted_count, abandoned_count, in_progress_count, "
            "conversion_rate, conversion_rate_low, conversion_rate_high, "
            "time_to_next_median_seconds FROM stage_funnel ORDER BY stage_order"
        ).fetchall():
            stage, reached, moved, abandoned, open_, rate, low, high, median = row
            ci = f"{_pct(rate)} ({_pct(low)}-{_pct(high)})" if rate is not None else ""
            lines.append(
                f"| {stage} | {reached:,} | {'' if moved is None else f'{moved:,}'} | "
                f"{'' if abandoned is None else f'{abandoned:,}'} | "
                f"{'' if open_ is None else f'{open_:,}'} | {ci} | {_days(median)} |"
            )
        lines += ["", "Findings (constraint_stage):", ""]
        for finding, transition, explanation in con.execute(
            "SELECT finding, transition, explanation FROM constraint_stage ORDER BY finding"
        ).fetchall():
            lines.append(f"- {finding}: {transition or '-'}: {explanation}")
        lines += ["", "Top paths (variants):", ""]
        for rank, count, share, rate, label in con.execute(
            "SELECT variant_rank, journey_count, journey_share, conversion_rate, variant_label "
            "FROM variants ORDER BY variant_rank LIMIT 3"
        ).fetchall():
            shown = label if len(label) <= 160 else label[:157] + "..."
            lines.append(f"{rank}. {count:,} ({_pct(share)}, converted {_pct(rate)}): {shown}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="*", default=LOGS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("CJM_PII_SALT", "bench-salt-not-a-secret-0123456789")
    out = args.out or Path(tempfile.mkdtemp(prefix="cjm-real-"))
    summaries = []
    for name in args.logs:
        path, steps, wall, cpu = timed_night(name, out)
        shown = ", ".join(f"{step} {seconds:.1f}" for step, seconds in steps.items())
        print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU ({shown})", flush=True)
        summaries.append(summary_markdown(name, path))
    print()
    print("\n".join(summaries))


if __name__ == "__main__":
    main()
