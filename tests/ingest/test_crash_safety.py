"""A load that dies between writing Parquet parts and committing the manifest leaves nothing
counted; the rerun loads each event exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from conftest import rows

from cjm_analytics.ingest import lake as lake_module

SOURCE = {
    "path": "raw/*.csv", "format": "csv", "channel": "crm",
    "columns": {"event_id": "id", "event_name": "event", "event_at": "ts"},
    "identifiers": {"contact_id": "contact"},
}  # fmt: skip


def write_files(lake) -> None:
    lake.write(
        "raw/a.csv",
        "id,event,ts,contact\n1,a,2024-01-01T00:00:00Z,k1\n2,b,2024-01-02T00:00:00Z,k2\n",
    )
    lake.write(
        "raw/b.csv",
        "id,event,ts,contact\n3,a,2024-01-03T00:00:00Z,k3\n1,a,2024-01-01T00:00:00Z,k1\n",
    )


def test_crash_before_the_manifest_commit_counts_nothing_and_the_rerun_finishes(lake, monkeypatch):
    write_files(lake)
    cfg = lake.config({"crm": SOURCE})
    real_commit = lake_module.commit_file
    calls = {"n": 0}

    def dying_commit(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # a.csv committed, b.csv's parts written, then the process dies
            raise KeyboardInterrupt("killed")
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(lake_module, "commit_file", dying_commit)
    with pytest.raises(KeyboardInterrupt):
        lake.ingest(cfg)
    monkeypatch.setattr(lake_module, "commit_file", real_commit)
    con = lake.warehouse(cfg)
    assert rows(con, "SELECT source_file FROM ingest_files") == [("raw/a.csv",)]
    assert rows(con, "SELECT count(*) FROM stg_events") == [(2,)]  # b's written part is not read
    statuses = [f.status for f in lake.ingest(cfg).files]
    assert statuses == ["skipped", "loaded"]
    con = lake.warehouse(cfg)
    # 3 distinct events; b.csv's copy of id 1 is a reject, not a second event
    assert rows(con, "SELECT count(*), count(DISTINCT event_id) FROM stg_events") == [(3, 3)]
    assert rows(
        con,
        "SELECT source_file, rows_read, rows_loaded, rows_rejected FROM ingest_files ORDER BY 1",
    ) == [
        ("raw/a.csv", 2, 2, 0),
        ("raw/b.csv", 2, 1, 1),
    ]


def test_sigkill_during_ingest_then_rerun(lake):
    """A real kill -9 of a separate process at the commit, then a normal rerun."""
    write_files(lake)
    cfg = lake.config({"crm": SOURCE})
    script = textwrap.dedent(
        f"""
        import os, signal
        from cjm_analytics.config import parse_config
        from cjm_analytics.ingest import ingest, lake
        real = lake.commit_file
        def commit(*args, **kwargs):
            if args[1]["source_file"] == "raw/b.csv":
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        lake.commit_file = commit
        cfg = parse_config({{"paths": {{"lake": "lake"}}, "sources": {{"crm": {SOURCE!r}}}}}, {str(lake.root)!r})
        ingest(cfg)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=dict(os.environ), capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    summary = lake.ingest(cfg)
    assert [f.status for f in summary.files] == ["skipped", "loaded"]
    con = lake.warehouse(cfg)
    assert rows(con, "SELECT count(*), count(DISTINCT event_id) FROM stg_events") == [(3, 3)]
    assert rows(
        con, "SELECT sum(rows_read), sum(rows_loaded), sum(rows_rejected) FROM ingest_files"
    ) == [(4, 3, 1)]
