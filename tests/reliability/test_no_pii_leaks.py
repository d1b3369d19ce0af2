"""No raw email or phone number anywhere an analyst can reach after a night: every column of
every table of the published warehouse (and the `.previous` file), the lake's Parquet parts
and its state file (rejects included), the report folder and the run folders. The salt is
not in the repository, nor a default for it in the code.

Raw values are the generator's truth (`truth_identifiers.parquet`) in the spellings the raw
files use and as normalized; regexes catch the rest.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from _small_company import REPO, company_config, new_company, two_nights

from cjm_analytics import pii
from cjm_analytics.config import load_config, parse_config
from cjm_analytics.errors import ConfigError
from cjm_analytics.pipeline import run_night

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
PHONE = re.compile(r"\+\d[\d ()/.-]{6,}\d")  # international spelling, as the sources write it


def raw_values() -> list[str]:
    """Every email and phone of the generated company's raw files and truth, as written
    there and as normalized (trimmed lower case; digits with country code)."""
    base = company_config().base_dir
    texts = [p.read_text(encoding="utf-8") for p in sorted((base / "raw").rglob("*.*"))]
    truth = pl.read_parquet(base / "truth_identifiers.parquet")
    values = {m.group(0) for text in texts for m in (*EMAIL.finditer(text), *PHONE.finditer(text))}
    values |= set(
        truth.filter(pl.col("identifier_kind").is_in(["email", "phone"]))["identifier_value"]
    )
    normalized = {pii.normalize_email(v) if "@" in v else pii.normalize_phone(v) for v in values}
    return sorted(values | {v for v in normalized if v})


def duckdb_texts(path: Path) -> Iterator[tuple[str, str]]:
    """(table.column, value as text) of every non-null cell of every table of a DuckDB file."""
    with duckdb.connect(str(path), read_only=True) as con:
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            names = [d[0] for d in con.execute(f'SELECT * FROM "{table}" LIMIT 0').description]
            for name in names:
                for (value,) in con.execute(
                    f'SELECT DISTINCT "{name}"::VARCHAR FROM "{table}" WHERE "{name}" IS NOT NULL'
                ).fetchall():
                    yield f"{path.name}:{table}.{name}", value


def parquet_texts(path: Path) -> Iterator[tuple[str, str]]:
    frame = pl.read_parquet(path)
    for name in frame.columns:
        for value in frame[name].drop_nulls().cast(pl.String).unique():
            yield f"{path.name}:{name}", value


def analyst_reachable_texts() -> Iterator[tuple[str, str]]:
    cfg = company_config()
    for path in (cfg.warehouse_path, cfg.warehouse_path.with_name("cjm.duckdb.previous")):
        yield from duckdb_texts(path)
    yield from duckdb_texts(cfg.lake_dir / "state.duckdb")
    for path in sorted(cfg.lake_dir.rglob("*.parquet")) + sorted(cfg.runs_dir.rglob("*.parquet")):
        yield from parquet_texts(path)
    texts = (".html", ".json", ".csv", ".txt", ".pnml", ".svg")
    for folder in (cfg.reports_dir, cfg.runs_dir):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in texts and path.name != "plotly.min.js":
                yield str(path.relative_to(folder.parent)), path.read_text(errors="replace")


def test_no_raw_email_or_phone_in_anything_analysts_read() -> None:
    two_nights()  # the company's warehouse, lake, report and runs
    raw = raw_values()
    assert len(raw) >= 10  # the company has emails and phones to leak
    assert any("@" in v for v in raw) and any(v.startswith("+") for v in raw)
    places, found = set(), []
    for place, text in analyst_reachable_texts():
        places.add(place.split(":")[0])
        if EMAIL.search(text) or PHONE.search(text) or any(v in text for v in raw):
            found.append((place, text[:120]))
    assert found == []
    assert {"cjm.duckdb", "cjm.duckdb.previous", "state.duckdb"} <= places
    assert any(p.endswith("index.html") for p in places)


def test_hashed_identifiers_are_in_the_warehouse_instead() -> None:
    two_nights()
    with duckdb.connect(str(company_config().warehouse_path), read_only=True) as con:
        hashed = con.execute(
            "SELECT count(email_hash), count(phone_hash), "
            "count(*) FILTER (WHERE NOT regexp_full_match(coalesce(email_hash, phone_hash), '[0-9a-f]{64}')) "
            "FROM events WHERE coalesce(email_hash, phone_hash) IS NOT NULL"
        ).fetchone()
    assert hashed is not None and hashed[0] > 0 and hashed[1] > 0 and hashed[2] == 0


def test_salt_is_not_in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = company_config()
    salt = cfg.pii_salt()
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    holding = []
    for name in filter(None, tracked):
        path = REPO / name.decode()
        if path.is_file() and salt.encode() in path.read_bytes():
            holding.append(name.decode())
    # the suite's throwaway salt is written in tests only; no code, config or doc has it
    assert [name for name in holding if not name.startswith("tests/")] == []
    local = REPO / "data" / ".pii_salt"  # `make demo` writes it; git must ignore it
    ignored = subprocess.run(["git", "check-ignore", "-q", str(local)], cwd=REPO)
    assert ignored.returncode == 0
    if local.is_file():
        value = local.read_bytes().strip()
        assert not any(value in (REPO / n.decode()).read_bytes() for n in filter(None, tracked)
                       if (REPO / n.decode()).is_file())  # fmt: skip
    # no default salt in the code: without the variable there is no salt at all
    monkeypatch.delenv(cfg.pii.salt_env, raising=False)
    with pytest.raises(ConfigError, match="CJM_PII_SALT must hold the PII salt"):
        cfg.pii_salt()
    monkeypatch.setenv("CJM_PII_SALT", "short")
    with pytest.raises(ConfigError, match="too short"):
        cfg.pii_salt()


def test_salt_env_name_is_a_variable_name_not_a_value() -> None:
    source = {"path": "x", "format": "csv", "channel": "web", "identifiers": {"email": "e"},
              "columns": {"event_name": "n", "event_at": "t"}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"pii\.salt_env"):
        parse_config({"sources": {"web": source}, "pii": {"salt_env": "my salt 123"}}, Path("."))


def stored_hashes(warehouse_file: Path, lake_dir: Path) -> set[str]:
    """Every email/phone hash in a warehouse file and in a lake (Parquet parts and state);
    the files' own content hashes (`sha256` columns) are not about people."""
    texts = [*duckdb_texts(warehouse_file), *duckdb_texts(lake_dir / "state.duckdb")]
    for path in lake_dir.rglob("*.parquet"):
        texts += parquet_texts(path)
    return {
        value
        for place, value in texts
        if not place.endswith(".sha256") and re.fullmatch("[0-9a-f]{64}", value)
    }


def test_salt_rotation_as_the_readme_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """README: set the new salt, `cjm run --full-rebuild`, then delete the two `.previous`
    copies. After it no hash made with the old salt is left in the lake or the warehouse."""
    cfg = load_config(new_company("cjm-rotation-"))
    monkeypatch.setenv(cfg.pii.salt_env, "old-salt-" + secrets.token_hex(16))
    run_night(cfg)
    old = stored_hashes(cfg.warehouse_path, cfg.lake_dir)
    assert len(old) > 5
    monkeypatch.setenv(cfg.pii.salt_env, "new-salt-" + secrets.token_hex(16))
    assert run_night(cfg, full_rebuild=True).succeeded
    new = stored_hashes(cfg.warehouse_path, cfg.lake_dir)
    assert len(new) == len(old) and new.isdisjoint(old)
    # the rollback copies still hold the old hashes: that is why the README deletes them
    previous_lake = cfg.lake_dir.with_name(cfg.lake_dir.name + ".previous")
    previous_file = cfg.warehouse_path.with_name(cfg.warehouse_path.name + ".previous")
    assert stored_hashes(previous_file, previous_lake) == old
