"""`make bench SIZE=1m|10m|100m`: one table of this product against the DuckDB floor, pm4py
and retentioneering at one size, printed and written to bench/results/.

    .venv/bin/python bench/run.py --size 1m [--repeat 3] [--include-100m] [--skip funnel]

Measured, each heavy thing in its own process (peak RSS per measurement):
- data: the synthetic company at the size (cached under bench/data/, keyed by size+seed);
- floor: DuckDB reading the same raw files once (all sources, all columns), and sorting
  the events by customer key and time;
- generate + ingest against the floor's read;
- the whole nightly run (ingest to publish, report included): median wall time of
  `--repeat` runs, largest peak RSS, ratio to the floor (read + sort);
- incremental night (+1% new events) against a full rebuild of the same files;
- mining bundle against pm4py (bench_mining.py, results checked identical there);
- 5-step ordered funnel against the sort floor and retentioneering (bench_funnel.py;
  this runner also fails when retentioneering's counts differ from ours).
Any failure or disagreement stops the run with a non-zero exit: no fast wrong answers.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_ingest import data_dir, ensure_data
from bench_nightly import fresh_work, incremental, incremental_files, nightly, require_same_night
from common import (
    DATA_DIR,
    RESULTS_DIR,
    SIZES,
    BenchFailure,
    Measured,
    Repeated,
    git_commit,
    machine,
    measure,
    versions,
)

PARTS = ("floor", "nightly", "incremental", "mining", "funnel")
DEFAULT_REPEAT = {"1m": 3, "10m": 1, "100m": 1}
NIGHT_STEPS = ("ingest", "build", "stages", "mining", "changes", "report", "publish")
GB = 1024.0


@dataclass
class Row:
    """One line of the table."""

    what: str
    seconds: float | None = None
    peak_rss_mb: float | None = None
    ratio: str = ""
    target: str = ""
    verdict: str = ""
    note: str = ""
    cpu_seconds: float | None = None

    def cells(self) -> list[str]:
        seconds = "" if self.seconds is None else f"{self.seconds:,.2f}"
        cpu = "" if self.cpu_seconds is None else f"{self.cpu_seconds:,.1f}"
        rss = "" if self.peak_rss_mb is None else f"{self.peak_rss_mb:,.0f}"
        return [self.what, seconds, cpu, rss, self.ratio, self.target, self.verdict, self.note]


HEADER = ["measurement", "wall s", "CPU s", "peak RSS MB", "ratio (wall)", "target", "met", "note"]


def verdict(ok: bool, applies: bool) -> str:
    if not applies:
        return "(10M)"
    return "yes" if ok else "NO"


class Bench:
    """Collects rows and raw results while the parts run."""

    def __init__(self, size: str, repeat: int, memory_limit: str | None) -> None:
        self.size, self.repeat, self.memory_limit = size, repeat, memory_limit
        self.at_target_size = size != "1m"
        self.rows: list[Row] = []
        self.raw: dict[str, Any] = {"size": size, "repeat": repeat, "memory_limit": memory_limit}
        self.floor_seconds: float | None = None
        self.floor_cpu: float | None = None

    def warehouse(self) -> dict[str, Any]:
        return (
            {"memory_limit": self.memory_limit, "temp_directory": "tmp"}
            if self.memory_limit
            else {}
        )

    def data(self) -> dict[str, Any]:
        meta = ensure_data(self.size)
        self.raw["data"] = meta
        base = meta["base"]
        rows = sum(base["row_counts"].values())
        note = (
            f"{base['customers']:,} customers, {base['valid_event_count']:,} valid events, "
            f"{rows:,} raw rows, {meta['raw_bytes'] / 2**20:,.0f} MB raw"
            + (" (cached; generated " + meta["generated_at"] + ")" if meta.get("cached") else "")
        )
        self.rows.append(Row("data: generate synthetic company", meta["generate_wall_seconds"],
                             meta["generate_peak_rss_mb"], note=note))  # fmt: skip
        return meta

    def floor(self, meta: dict[str, Any]) -> None:
        work = fresh_work(self.size, "floor")
        m = measure("bench_ingest.py", "floor", {"raw": str(data_dir(self.size) / "base" / "raw"),
                    "scratch": str(work), "memory_limit": self.memory_limit})  # fmt: skip
        r = m.result
        self.raw["floor"] = {"wall_seconds": m.wall_seconds, "peak_rss_mb": m.peak_rss_mb, **r}
        self.floor_seconds = r["read_seconds"] + r["sort_seconds"]
        self.floor_cpu = r["read_cpu_seconds"] + r["sort_cpu_seconds"]
        rows = ", ".join(f"{k} {v:,}" for k, v in r["rows"].items())
        self.rows += [
            Row("floor: DuckDB reads the raw files once", r["read_seconds"], m.peak_rss_mb,
                note=rows, cpu_seconds=r["read_cpu_seconds"]),
            Row("floor: DuckDB sorts events by customer, time", r["sort_seconds"],
                note=f"{r['sorted_rows']:,} events", cpu_seconds=r["sort_cpu_seconds"]),
            Row("floor: read + sort", self.floor_seconds, m.peak_rss_mb, "1.0x",
                cpu_seconds=self.floor_cpu),
        ]  # fmt: skip

    def ingest_rows(self, meta: dict[str, Any], runs: Repeated) -> None:
        """Generate + ingest against the floor's read, from the nights' ingest step."""
        import statistics

        seconds = statistics.median(r.result["step_seconds"]["ingest"] for r in runs.runs)
        facts = runs.runs[0].result
        read = self.raw["floor"]["read_seconds"]
        floor_rows = sum(self.raw["floor"]["rows"].values())
        if facts["rows_read_count"] != floor_rows:
            raise BenchFailure(
                f"the night's ingest read {facts['rows_read_count']:,} rows, the floor {floor_rows:,}"
            )
        note = (
            f"{facts['rows_loaded_count']:,} rows loaded, {facts['rows_rejected_count']:,} "
            f"rejected; read {facts['rows_read_count']:,} rows = the floor's"
        )
        both = meta["generate_wall_seconds"] + seconds
        self.rows += [
            Row("ingest (the night's step: raw files -> lake)", seconds, None,
                f"{seconds / read:.1f}x read", note=note),
            Row("generate + ingest", both, None, f"{both / read:.1f}x read"),
        ]  # fmt: skip

    def nightly(self, meta: dict[str, Any]) -> Path:
        runs, work = nightly(self.size, data_dir(self.size), meta["base"]["as_of"], self.repeat,
                             self.warehouse())  # fmt: skip
        self.raw["nightly"] = _repeated(runs)
        assert self.floor_seconds is not None
        ratio = runs.wall_seconds / self.floor_seconds
        # 100M: the target is completing inside the machine's 24 GB (DuckDB spills)
        target = "completes, RSS < 24 GB" if self.size == "100m" else "<= 5x, RSS < 4 GB"
        limit = 24 if self.size == "100m" else 4
        ok = runs.peak_rss_mb < limit * GB and (self.size == "100m" or ratio <= 5)
        facts = runs.runs[0].result
        note = (f"{len(runs.runs)} run(s): {runs.all_seconds}; {facts['customer_count']:,} customers, "
                f"{facts['journey_count']:,} journeys, constraint {facts['constraint_transition']}")  # fmt: skip
        cpu_ratio = runs.cpu_seconds / (self.floor_cpu or 1)
        self.rows.append(Row(f"nightly run, full (median of {len(runs.runs)})", runs.wall_seconds,
                             runs.peak_rss_mb, f"{ratio:.1f}x floor (CPU {cpu_ratio:.1f}x)",
                             target, verdict(ok, self.at_target_size), note,
                             runs.cpu_seconds))  # fmt: skip
        self.rows += _step_rows(runs)
        self.ingest_rows(meta, runs)
        return work

    def incremental(self, meta: dict[str, Any], work: Path) -> None:
        pair = incremental(work, data_dir(self.size), meta["increment"]["as_of"])
        self.raw["incremental"] = {k: _repeated(v) for k, v in pair.items()}
        inc, full = pair["incremental"], pair["full_rebuild"]
        share = meta["increment"]["valid_event_count"] / meta["base"]["valid_event_count"]
        ratio = inc.wall_seconds / full.wall_seconds
        cpu_ratio = inc.cpu_seconds / full.cpu_seconds
        self.rows.append(Row(f"incremental night (+{share:.1%} events)", inc.wall_seconds,
                             inc.peak_rss_mb, f"{ratio:.0%} of full (CPU {cpu_ratio:.0%})",
                             "< 15%", verdict(ratio < 0.15, self.at_target_size),
                             "model tables compared with the full rebuild's: the run fails if any differs",
                             cpu_seconds=inc.cpu_seconds))  # fmt: skip
        self.rows += _step_rows(inc)
        self.rows.append(Row("full rebuild night (same files)", full.wall_seconds,
                             full.peak_rss_mb, cpu_seconds=full.cpu_seconds))  # fmt: skip
        self.rows += _step_rows(full)
        require_same_night(*incremental_files(work))  # after the rows: a failure keeps them

    def mining(self) -> None:
        events = SIZES[self.size]
        m = measure("bench_mining.py", "bench_rows", {"events": events, "workdir": str(DATA_DIR)})
        ours, theirs = m.result
        self.raw["mining"] = m.result
        speedup = theirs["bundle_seconds"] / ours["bundle_seconds"]
        ok = speedup >= 10 and ours["peak_rss_mb"] < theirs["peak_rss_mb"]
        note = f"{ours['variants']:,} variants, {ours['edges']} edges; results identical"
        self.rows += [
            Row(
                "mining bundle: cjm (DFG, perf DFG, variants, IM)",
                ours["bundle_seconds"],
                ours["peak_rss_mb"],
                f"{speedup:.1f}x faster",
                ">= 10x, less memory",
                verdict(ok, self.at_target_size),
                note,
            ),
            Row(
                "mining bundle: pm4py",
                theirs["bundle_seconds"],
                theirs["peak_rss_mb"],
                note=f"load {theirs['load_seconds']:.1f} s not counted (ours {ours['load_seconds']:.1f} s)",
            ),
        ]

    def funnel(self) -> None:
        events = SIZES[self.size]
        with_peer = events <= 10_000_000
        m = measure("bench_funnel.py", "run", {"events": events, "with_retentioneering": with_peer})
        by_what = {r["what"]: r for r in m.result}
        self.raw["funnel"] = {"rows": m.result, "process_peak_rss_mb": m.peak_rss_mb}
        floor, ours = by_what["duckdb sort floor"], by_what["cjm ordered, 7d window"]
        ratio = ours["seconds"] / floor["seconds"]
        rss_note = "one process for all sides: RSS is the process's peak"
        self.rows += [
            Row(
                "funnel: sort floor (DuckDB ORDER BY customer, time)",
                floor["seconds"],
                m.peak_rss_mb,
                note=rss_note,
            ),
            Row(
                "funnel: cjm 5-step ordered, 7-day window",
                ours["seconds"],
                None,
                f"{ratio:.1f}x sort floor",
                "<= 2x",
                verdict(ratio <= 2, self.at_target_size),
                note=f"units per step {ours['unit_counts']}",
            ),
        ]
        if not with_peer:
            return
        nowin = by_what["cjm ordered, no window"]
        load, peer = by_what["retentioneering load"], by_what["retentioneering funnel"]
        if peer["unit_counts"] != nowin["unit_counts"]:
            raise BenchFailure(
                f"funnel counts differ: retentioneering {peer['unit_counts']} vs cjm {nowin['unit_counts']}"
            )
        theirs = load["seconds"] + peer["seconds"]
        speedup = theirs / nowin["seconds"]
        self.rows += [
            Row(
                "funnel: cjm ordered, no window (peer semantics)",
                nowin["seconds"],
                None,
                f"{speedup:.1f}x faster",
                ">= 10x",
                verdict(speedup >= 10, self.at_target_size),
                note=f"counts identical to retentioneering {nowin['unit_counts']}",
            ),
            Row(
                "funnel: retentioneering (eventstream + funnel)",
                theirs,
                None,
                note=f"eventstream {load['seconds']:.1f} s + funnel {peer['seconds']:.1f} s",
            ),
        ]


def _repeated(rep: Repeated) -> dict[str, Any]:
    return {
        "median_wall_seconds": rep.wall_seconds,
        "peak_rss_mb": rep.peak_rss_mb,
        "runs": [_measured(r) for r in rep.runs],
    }


def _measured(m: Measured) -> dict[str, Any]:
    return {
        "wall_seconds": m.wall_seconds,
        "cpu_seconds": m.cpu_seconds,
        "peak_rss_mb": m.peak_rss_mb,
        "result": m.result,
    }


def _step_rows(rep: Repeated) -> list[Row]:
    """One indented row per pipeline step: median seconds over the runs."""
    import statistics

    rows = []
    for step in NIGHT_STEPS:
        seconds = [r.result["step_seconds"].get(step) for r in rep.runs]
        cpu = [r.result.get("step_cpu_seconds", {}).get(step) for r in rep.runs]
        if all(s is not None for s in seconds):
            known = [c for c in cpu if c is not None]
            median_cpu = statistics.median(known) if known else None
            rows.append(Row(f"  step {step}", statistics.median(seconds), cpu_seconds=median_cpu))
    return rows


def markdown(bench: Bench, header: dict[str, Any]) -> str:
    lines = [f"# cjm-analytics benchmark, size {bench.size}", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += [
        "| " + " | ".join(c.replace("|", "/") for c in row.cells()) + " |" for row in bench.rows
    ]
    lines += ["", "Ratios are side by side in one run (the machine is shared and noisy). Targets "
              "apply at 10M events; at 1M the column shows `(10M)`."]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_results(bench: Bench, header: dict[str, Any], failure: str | None, stamp: str) -> Path:
    """bench/results/<stamp>-<size>.md and .json (rewritten after each part, so a long run
    that is stopped keeps what it measured)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    base = RESULTS_DIR / f"{stamp}-{bench.size}"
    text = markdown(bench, header)
    if failure:
        text += f"\n**FAILED**: {failure}\n"
    base.with_suffix(".md").write_text(text)
    payload = {
        **header,
        "failure": failure,
        "rows": [r.__dict__ for r in bench.rows],
        "raw": bench.raw,
    }
    base.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
    return base.with_suffix(".md")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="1m")
    parser.add_argument(
        "--include-100m", action="store_true", help="allow --size 100m (hours, disk)"
    )
    parser.add_argument(
        "--repeat", type=int, help="nightly runs for the median (default 3 at 1m, else 1)"
    )
    parser.add_argument("--skip", nargs="*", choices=PARTS, default=[], help="parts to leave out")
    parser.add_argument("--memory-limit", default="3GB",
                        help="DuckDB memory_limit for the floor and the nights ('' = DuckDB's default)")  # fmt: skip
    args = parser.parse_args(argv)
    if "floor" in args.skip and "nightly" not in args.skip:
        parser.error(
            "the nightly rows are ratios to the floor: skip nightly too, or keep the floor"
        )
    if args.size == "100m" and not args.include_100m:
        parser.error(
            "--size 100m needs --include-100m (about 3 GB of gzip raw files, "
            "40 GB of work space and hours)"
        )
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    bench = Bench(args.size, args.repeat or DEFAULT_REPEAT[args.size], args.memory_limit or None)
    header = {"commit": git_commit(), "machine": machine(), "versions": versions(),
              "nightly repeat": bench.repeat, "DuckDB memory_limit": bench.memory_limit,
              "skipped": args.skip}  # fmt: skip
    failure = None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        meta = bench.data()
        if "floor" not in args.skip:
            bench.floor(meta)
            write_results(bench, header, None, stamp)
        work = None
        if "nightly" not in args.skip:
            work = bench.nightly(meta)
            write_results(bench, header, None, stamp)
        for part in ("mining", "funnel"):
            if part not in args.skip:
                getattr(bench, part)()
                write_results(bench, header, None, stamp)
        if work is not None and "incremental" not in args.skip:
            bench.incremental(meta, work)
    except BenchFailure as error:
        failure = str(error)
    path = write_results(bench, header, failure, stamp)
    print(markdown(bench, header))
    print(f"written: {path} (+ .json)")
    if failure:
        print(f"BENCHMARK FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
