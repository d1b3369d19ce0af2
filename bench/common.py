"""Shared benchmark plumbing: sizes, measured subprocesses, timing and the machine.

Every heavy measurement runs in its own Python process so its peak RSS is its own:

    measured = measure("bench_ingest.py", "ingest_once", {"config": "..."})
    measured.result, measured.wall_seconds, measured.peak_rss_mb

The child imports the named script from `bench/`, calls the function with the keyword
arguments (JSON) and writes its JSON result to a file (stdout stays free for the noise
some libraries print). Peak RSS is the larger of the child's own `ru_maxrss` (from
`os.wait4`, exact for that one process) and a psutil poll of the child and its
descendants every 50 ms (for anything the child starts).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
SEED = 7
#: size name -> nominal events; customers = events / EVENTS_PER_CUSTOMER.
SIZES: dict[str, int] = {"1m": 1_000_000, "10m": 10_000_000, "100m": 100_000_000}
#: valid events per customer the generator writes over its default 120 days (measured at
#: 100k customers, seed 7: 840,477 events), so a size is about its nominal event count.
EVENTS_PER_CUSTOMER = 8.4


def customers_for(size: str) -> int:
    return round(SIZES[size] / EVENTS_PER_CUSTOMER)


#: a fixed, public salt: benchmark data is synthetic, nothing to protect.
BENCH_PII_SALT = "bench-salt-not-secret-0123456789abcdef"
VERSIONED = ("duckdb", "polars", "pyarrow", "pandas", "pm4py", "prefect", "retentioneering")


class BenchFailure(RuntimeError):
    """A measurement failed or two sides disagree: the benchmark stops loudly."""


@dataclass
class Measured:
    """One child process: its JSON result, wall time and peak RSS."""

    result: Any
    wall_seconds: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # user + system of the child (and children it waited for)


@dataclass
class Repeated:
    """Several runs of one measurement: the median wall time and the largest peak RSS."""

    runs: list[Measured] = field(default_factory=list)

    @property
    def wall_seconds(self) -> float:
        return statistics.median(r.wall_seconds for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.peak_rss_mb for r in self.runs)

    @property
    def cpu_seconds(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)

    @property
    def all_seconds(self) -> list[float]:
        return [round(r.wall_seconds, 2) for r in self.runs]


def child_env() -> dict[str, str]:
    """The environment of a measured child: repo on the path, bench salt, quiet libraries."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("CJM_PII_SALT", BENCH_PII_SALT)
    env.setdefault("RETENTIONEERING_NO_TRACK", "1")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def _poll_tree(pid: int, peak: list[float], done: threading.Event) -> None:
    """Keep the largest summed RSS (MB) of `pid` and its descendants until `done`."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not done.is_set():
        total = 0
        try:
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            return
        peak[0] = max(peak[0], total / 2**20)
        done.wait(0.05)


def measure(script: str, function: str, kwargs: dict[str, Any]) -> Measured:
    """Run `bench/<script>:<function>(**kwargs)` in a fresh process; fail loudly if it fails.

    The files the measurement before it wrote are flushed to disk first (`os.sync`, not
    timed), so no measurement pays for the write-back of another's output."""
    os.sync()
    with tempfile.TemporaryDirectory(prefix="cjm-bench-") as tmp:
        out = Path(tmp) / "result.json"
        log = Path(tmp) / "stderr.txt"
        argv = [sys.executable, __file__, script, function, json.dumps(kwargs), str(out)]
        with log.open("wb") as err:
            began = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=err, stderr=err, env=child_env(), cwd=REPO)
            peak, done = [0.0], threading.Event()
            poller = threading.Thread(target=_poll_tree, args=(proc.pid, peak, done), daemon=True)
            poller.start()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - began
            done.set()
            poller.join()
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not out.exists():
            tail = log.read_text(errors="replace")[-4000:]
            raise BenchFailure(f"{script}:{function}({kwargs}) exited {proc.returncode}:\n{tail}")
        payload = json.loads(out.read_text())
    cpu = usage.ru_utime + usage.ru_stime
    # the child's own high-water mark, or its process tree's polled peak, whichever is larger
    return Measured(payload["result"], wall, max(payload["own_peak_rss_mb"], peak[0]), cpu)


def repeat(script: str, function: str, kwargs: dict[str, Any], times: int) -> Repeated:
    """`measure` `times` times (each in a new process)."""
    return Repeated([measure(script, function, kwargs) for _ in range(times)])


def _child_main(script: str, function: str, kwargs_json: str, out: str) -> None:
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(Path(script).stem, BENCH_DIR / script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = getattr(module, function)(**json.loads(kwargs_json))
    payload = {"result": result, "own_peak_rss_mb": _own_peak_rss_mb()}
    Path(out).write_text(json.dumps(payload, default=str))


def _own_peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM of its address space since exec), in MB.

    `ru_maxrss` from wait4 is not usable for that on Linux: exec carries the parent's
    high-water mark over into the child's, so a child of a 1 GB process reports >= 1 GB.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Clock:
    """Wall and CPU seconds (all threads of this process) since the last `lap`."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        laps = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return laps


def versions() -> dict[str, str]:
    """Installed versions of the libraries the benchmark compares or runs on."""
    found: dict[str, str] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model and OS of this machine."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores_logical": psutil.cpu_count(logical=True),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": cpu,
        "os": platform.platform(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def git_commit() -> str:
    """The repo's HEAD commit (short), with `+dirty` when tracked files changed
    (`CJM_BENCH_COMMIT` when set: a run from an exported snapshot has no .git)."""
    if os.environ.get("CJM_BENCH_COMMIT"):
        return os.environ["CJM_BENCH_COMMIT"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


if __name__ == "__main__":
    _child_main(*sys.argv[1:5])
