"""`cjm doctor`: check the config and the machine, and say what to fix."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from cjm_analytics.config import JourneyConfig, load_config
from cjm_analytics.errors import CjmError

CHROMIUM_NAMES: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome")
#: package -> (check, what the pin is for); the pins of pyproject.toml that this machine needs.
PINS: dict[str, tuple[str, str]] = {
    "prefect": ("3.8.", "prefect>=3.8.8,<3.9 (3.9 does not install here)"),
    "fastapi": ("<0.151", "fastapi<0.151 (0.151+ breaks every Prefect 3.8 flow call)"),
    "sqlalchemy": ("<2.1", "sqlalchemy<2.1 (2.1 makes served schedules never fire)"),
}


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, and what was found or what to do."""

    name: str
    ok: bool
    detail: str


def find_chromium() -> str | None:
    """The path of a Chromium the browser test and report checks can use."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_pin(package: str) -> Check:
    rule, why = PINS[package]
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        return Check(
            f"{package} installed", False, f"not installed; pip install '{why.split(' ')[0]}'"
        )
    if rule.startswith("<"):
        ok = _version_tuple(version) < _version_tuple(rule[1:])
    else:
        ok = version.startswith(rule)
    detail = f"{version}" if ok else f"{version} found; need {why}"
    return Check(f"{package} pin", ok, detail)


def check_duckdb() -> Check:
    import duckdb

    version = duckdb.__version__
    ok = _version_tuple(version) >= (1, 4)
    return Check("duckdb version", ok, version if ok else f"{version}; need duckdb>=1.4")


def check_paths(cfg: JourneyConfig) -> list[Check]:
    checks = []
    for label, path in (
        ("lake", cfg.lake_dir),
        ("warehouse folder", cfg.warehouse_path.parent),
        ("reports", cfg.reports_dir),
        ("runs", cfg.runs_dir),
    ):
        parent = next((p for p in (path, *path.parents) if p.exists()), None)
        ok = parent is not None and os.access(parent, os.W_OK)
        checks.append(
            Check(f"{label} writable", ok, str(path) if ok else f"{path}: cannot create or write")
        )
    for name, source in cfg.sources.items():
        matches = list(cfg.base_dir.glob(source.path))
        detail = f"{len(matches)} file(s) match {source.path}"
        if not matches:
            detail += " (run `cjm generate` for the demo, or fix sources." + name + ".path)"
        checks.append(Check(f"source {name}", bool(matches), detail))
    return checks


def run_checks(config_path: Path) -> list[Check]:
    """Every check, in the order a person would fix them."""
    checks: list[Check] = []
    try:
        cfg = load_config(config_path)
        checks.append(Check("config", True, f"{config_path}: valid ({len(cfg.stages)} stages)"))
    except CjmError as error:
        checks.append(Check("config", False, str(error)))
        cfg = None
    if cfg is not None:
        try:
            cfg.pii_salt()
            checks.append(Check("PII salt", True, f"${cfg.pii.salt_env} is set"))
        except CjmError as error:
            checks.append(Check("PII salt", False, str(error)))
        checks.extend(check_paths(cfg))
    checks.append(check_duckdb())
    checks.extend(check_pin(package) for package in PINS)
    chromium = find_chromium()
    checks.append(
        Check(
            "chromium",
            chromium is not None,
            chromium or "not found: `apt-get install chromium` (only the browser test needs it)",
        )
    )
    return checks
