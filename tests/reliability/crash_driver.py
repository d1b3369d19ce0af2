"""Kill nightly runs with SIGKILL at chosen points, and record what each kill left behind.

Run by tests/reliability/test_crash.py as `python crash_driver.py PLAN.json OUT.json`. The
driver imports the pipeline once, then for each step of the plan forks a child that runs
`pipeline.run_night`; a kill point wraps one function (`module:attr`, the nth call, before
or after it) so that the child does `os.kill(os.getpid(), SIGKILL)` there: a real kill -9,
deterministic and cheap (no pipeline hook, no import per run). After each child, a second
forked child opens the files read-only and writes the facts the test asserts on. The parent
never opens DuckDB, so every fork starts from a clean process.

Plan steps: {"kind": "kill", "name", "target", "when", "nth", "match", "full_rebuild"},
{"kind": "run", "name", "full_rebuild"} (must succeed), {"kind": "add_files", "from", "to"};
any step may name its own "config" (journey.yaml) instead of the plan's.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import plotly.offline  # noqa: F401
import pm4py
import pm4py.algo.conformance.tokenreplay.variants.token_replay
import pm4py.algo.discovery.heuristics.variants.classic
import pm4py.algo.discovery.inductive.variants.imf  # noqa: F401
import pyarrow.parquet  # noqa: F401

import cjm_analytics.changes
import cjm_analytics.identity
import cjm_analytics.ingest
import cjm_analytics.ingest.lake
import cjm_analytics.journeys
import cjm_analytics.mining
import cjm_analytics.reports.build
import cjm_analytics.warehouse  # noqa: F401  (imported before any fork)
from cjm_analytics import pipeline
from cjm_analytics.config import load_config

NOT_REACHED = 3  # exit code of a child whose kill point never came
CPU_SECONDS: list[float] = []  # of each child, for the report


def _owner(target: str) -> tuple[Any, str]:
    module_name, attr = target.split(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def arm(point: dict[str, Any]) -> None:
    """Wrap `point['target']` so that its nth matching call kills this process."""
    owner, name = _owner(point["target"])
    real = getattr(owner, name)
    seen = [0]

    def matches(args: tuple[Any, ...]) -> bool:
        return point.get("match") is None or point["match"] in " ".join(map(str, args))

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        hit = matches(args)
        if hit:
            seen[0] += 1
        if hit and seen[0] == point["nth"] and point["when"] == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if hit and seen[0] == point["nth"] and point["when"] == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


def in_child(work: Any) -> int:
    """Run `work()` in a forked child; returns the wait status decoded (-signal or code)."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            code = work() or 0
        except BaseException as error:
            print(f"child failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    CPU_SECONDS.append(usage.ru_utime + usage.ru_stime)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def killed_run(config_path: Path, point: dict[str, Any]) -> int:
    def work() -> int:
        arm(point)
        pipeline.run_night(load_config(config_path), full_rebuild=point.get("full_rebuild", False))
        return NOT_REACHED

    return in_child(work)


def clean_run(config_path: Path, full_rebuild: bool) -> int:
    def work() -> int:
        result = pipeline.run_night(load_config(config_path), full_rebuild=full_rebuild)
        return 0 if result.succeeded else 1

    return in_child(work)


def observe(config_path: Path, out: Path) -> int:
    def work() -> int:
        from state_facts import state_facts

        out.write_text(json.dumps(state_facts(load_config(config_path)), default=str))
        return 0

    return in_child(work)


def main(plan_path: str, out_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    results = []
    for step in plan["steps"]:
        config_path = Path(step.get("config", plan["config"]))
        if step["kind"] == "add_files":
            shutil.copytree(step["from"], step["to"], dirs_exist_ok=True)
            continue
        if step["kind"] == "kill":
            status = killed_run(config_path, step)
        else:
            status = clean_run(config_path, step.get("full_rebuild", False))
        facts_file = Path(out_path).with_suffix(f".{len(results)}.json")
        observed = observe(config_path, facts_file)
        facts = json.loads(facts_file.read_text()) if observed == 0 else {"error": observed}
        results.append({"name": step["name"], "kind": step["kind"], "status": status,
                        "cpu_seconds": CPU_SECONDS[-2], **facts})  # fmt: skip
    Path(out_path).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
