"""The benchmark's own plumbing: measured children, the increment's new ids, the floor's rows.

The benchmark itself runs in bench/ (`make bench`); these check that what it reports is
about the right thing: a child's peak RSS is its own, a failing child stops the run, the
1% increment really is new data, and the floor reads exactly the rows ingest reads.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from common import BenchFailure, measure  # noqa: E402

CHILD = """
def allocate(megabytes):
    block = bytearray(megabytes * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    return {"size": len(block)}

def fail():
    raise ValueError("the child says no")
"""


@pytest.fixture
def child_script(tmp_path: Path) -> Path:
    path = tmp_path / "child.py"
    path.write_text(CHILD)
    return path


def test_measure_reports_the_child_result_and_its_own_peak(child_script: Path) -> None:
    measured = measure(str(child_script), "allocate", {"megabytes": 300})
    assert measured.result == {"size": 300 * 2**20}
    # 300 MB touched + the interpreter; well under 300 MB would mean the peak is not the child's
    assert 300 <= measured.peak_rss_mb < 600
    assert measured.wall_seconds > 0 and measured.cpu_seconds > 0


def test_a_failing_child_stops_the_benchmark_with_its_error(child_script: Path) -> None:
    with pytest.raises(BenchFailure, match="the child says no"):
        measure(str(child_script), "fail", {})


def _identifiers(raw: Path) -> set[str]:
    """Every id-like token in the raw files: event/record/call ids, cookies, users, emails, phones."""
    token = re.compile(r"evt_\w+|anon-[\w-]+|\bu\w*\d{8}\b|\bR\w*\d{9}\b|CRM-[\w-]+|CALL-[\w-]+|"
                       r"[\w.]+@[\w.]+|\+49 \d+ \d+")  # fmt: skip
    found: set[str] = set()
    for path in raw.rglob("*.*"):
        data = path.read_bytes()
        data = gzip.decompress(data) if path.suffix == ".gz" else data
        found |= set(token.findall(data.decode("utf-8")))
    return found


def test_the_increment_shares_no_identifier_with_the_base_but_the_switchboard(
    tmp_path: Path,
) -> None:
    from bench_ingest import generate_base, generate_increment

    base = generate_base(str(tmp_path / "base"), customers=60, seed=3, days=7)
    inc = generate_increment(
        str(tmp_path / "inc"), base["valid_event_count"], 3, base["as_of"][:10]
    )
    shared = _identifiers(tmp_path / "base" / "raw") & _identifiers(tmp_path / "inc" / "raw")
    assert shared <= {"+49 30 1234"}  # the office switchboard is shared on purpose
    assert inc["as_of"] > base["as_of"]
    names = {p.name for p in (tmp_path / "inc" / "raw").rglob("*.*")}
    assert names and all("-increment." in n for n in names)


def test_the_floor_reads_exactly_the_rows_ingest_reads(tmp_path: Path) -> None:
    from bench_ingest import floor, generate_base, ingest_once
    from bench_nightly import write_config

    generate_base(str(tmp_path / "data"), customers=40, seed=5, days=7)
    raw = tmp_path / "data" / "raw"
    read = floor(str(raw), str(tmp_path / "floor"))
    ingested = ingest_once(str(write_config(tmp_path / "work", [raw])))
    assert sum(read["rows"].values()) == ingested["rows_read"]
    assert read["sorted_rows"] == ingested["rows_read"]
    assert json.dumps(read)  # JSON-able for the results file


def test_the_100m_copies_share_no_identifier_and_are_read_whole(tmp_path: Path) -> None:
    from bench_ingest import floor, generate_base, ingest_once
    from bench_nightly import write_config
    from replicate import replicate

    src, dst = tmp_path / "src", tmp_path / "dst"
    generate_base(str(src / "base"), customers=40, seed=5, days=7)
    (src / "increment" / "raw").mkdir(parents=True)
    replicate(src, dst, copies=3, workers=1)
    copies = [tmp_path / f"copy{k}" for k in range(3)]
    for k, folder in enumerate(copies):
        for path in (dst / "base" / "raw").rglob(f"*-r{k}.*.gz"):
            target = folder / path.relative_to(dst / "base" / "raw")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    ids = [_identifiers(folder) for folder in copies]
    assert ids[0] == _identifiers(src / "base" / "raw")  # copy 0 keeps the original ids
    for a in range(3):
        for b in range(a + 1, 3):
            assert ids[a] & ids[b] <= {"+49 30 1234"}, (a, b)
    # the gzip copies are read whole by the floor and by the night's ingest
    one = floor(str(src / "base" / "raw"), str(tmp_path / "floor1"))
    three = floor(str(dst / "base" / "raw"), str(tmp_path / "floor3"))
    assert {k: 3 * v for k, v in one["rows"].items()} == three["rows"]
    ingested = ingest_once(str(write_config(tmp_path / "work", [dst / "base" / "raw"])))
    assert ingested["rows_read"] == sum(three["rows"].values())


def test_a_large_parent_does_not_inflate_the_childs_peak(child_script: Path) -> None:
    # Linux's ru_maxrss of an exec'd child starts at its parent's high-water mark; the
    # measured peak must be the child's own even when this process holds 700 MB.
    ballast = bytearray(700 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])
    measured = measure(str(child_script), "allocate", {"megabytes": 100})
    assert 100 <= measured.peak_rss_mb < 400
    del ballast
