"""The stat cache of input files' content hashes (ADR 0112): a night does not read every old
input file again only to learn it is already loaded, and a changed file is always read."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import Lake
from test_sources import WEB, jsonl

from cjm_analytics.ingest import lake as lake_module

ONE = jsonl({"id": "w1", "event": "e", "ts": "2024-03-01T10:00:00Z", "anon": "c1"})
# the same length as ONE: only the content tells them apart
TWO = jsonl({"id": "w2", "event": "e", "ts": "2024-03-01T10:00:00Z", "anon": "c1"})


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_file_is_read_again_only_when_its_stat_changes(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_module, "RACY_NANOSECONDS", 0)  # files here are seconds old
    path = lake.write("raw/web/a.jsonl", ONE)
    cfg = lake.config({"web": WEB})
    assert [f.status for f in lake.ingest(cfg).files] == ["loaded"]
    con = lake_module.open_state(cfg)
    try:
        ((cached, recorded_path),) = con.execute("SELECT sha256, path FROM file_hashes").fetchall()
        assert (cached, recorded_path) == (_sha(ONE), str(path.absolute()))
        # the answer comes from the cache, not from the file: make the cache say so
        con.execute("UPDATE file_hashes SET sha256 = 'from the cache'")
        assert lake_module.file_sha256(con, path) == "from the cache"

        # rewritten in place, same size, its modification time set back: the change time
        # (which no tool sets back) still differs, so the file is read again
        before = path.stat()
        path.write_text(TWO, encoding="utf-8")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = path.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        assert lake_module.file_sha256(con, path) == _sha(TWO)
        assert con.execute("SELECT sha256 FROM file_hashes").fetchall() == [(_sha(TWO),)]
    finally:
        con.close()
    (result,) = lake.ingest(cfg).files
    assert (result.status, result.sha256, result.rows_loaded) == ("loaded", _sha(TWO), 1)


def test_a_file_changed_just_before_it_is_hashed_is_not_cached(lake: Lake) -> None:
    # written now: within RACY_NANOSECONDS, a later write in the same timestamp tick
    # could leave its stat unchanged, so its hash is used once and not remembered
    lake.write("raw/web/a.jsonl", ONE)
    cfg = lake.config({"web": WEB})
    (first,) = lake.ingest(cfg).files
    assert (first.status, first.sha256) == ("loaded", _sha(ONE))
    con = lake_module.open_state(cfg)
    try:
        assert con.execute("SELECT count(*) FROM file_hashes").fetchall() == [(0,)]
    finally:
        con.close()
    (again,) = lake.ingest(cfg).files
    assert again.status == "skipped"


def test_a_moved_file_is_read_again(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lake_module, "RACY_NANOSECONDS", 0)
    path = lake.write("raw/web/a.jsonl", ONE)
    cfg = lake.config({"web": WEB})
    lake.ingest(cfg)
    path.rename(path.with_name("b.jsonl"))
    (moved,) = lake.ingest(cfg).files
    assert (moved.status, moved.sha256, moved.message) == (
        "skipped",
        _sha(ONE),
        "same content as raw/web/a.jsonl",
    )
    con = lake_module.open_state(cfg)
    try:
        rows = con.execute("SELECT path FROM file_hashes ORDER BY 1").fetchall()
        paths = [Path(p).name for (p,) in rows]
    finally:
        con.close()
    assert paths == ["a.jsonl", "b.jsonl"]
