"""Streaming XES import: columns, trace attributes, gzip, errors, and the real logs' counts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cjm_analytics.errors import IngestError
from cjm_analytics.ingest.xes import read_xes

# Two traces; the second lists its own concept:name after its events (allowed by lxml
# reading, seen in hand-edited logs), has a nested list attribute and no lifecycle.
SMALL_XES = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xmlns="http://www.xes-standard.org/">
  <global scope="event"><string key="concept:name" value="DEFAULT"/></global>
  <trace>
    <string key="concept:name" value="c1"/>
    <string key="segment" value="gold"/>
    <event>
      <string key="concept:name" value="visit"/>
      <date key="time:timestamp" value="2024-03-01T10:00:00.000+01:00"/>
      <string key="lifecycle:transition" value="complete"/>
      <string key="org:resource" value="web"/>
      <int key="page_count" value="3"/>
    </event>
    <event>
      <string key="concept:name" value="buy"/>
      <date key="time:timestamp" value="2024-03-01T10:05:00.000+01:00"/>
      <float key="amount" value="19.5"/>
    </event>
  </trace>
  <trace>
    <event>
      <string key="concept:name" value="visit"/>
      <date key="time:timestamp" value="2024-03-02T08:00:00Z"/>
      <list key="tags"><values><string key="t" value="x"/></values></list>
    </event>
    <string key="concept:name" value="c2"/>
  </trace>
</log>
"""


@pytest.mark.parametrize("compressed", [False, True])
def test_small_log_rows_and_columns(tmp_path: Path, compressed: bool) -> None:
    path = tmp_path / ("log.xes.gz" if compressed else "log.xes")
    data = SMALL_XES.encode()
    path.write_bytes(gzip.compress(data) if compressed else data)
    table = read_xes(path)
    assert table.column_names == [
        "case_id",
        "activity",
        "timestamp",
        "lifecycle",
        "resource",
        "case:segment",
        "page_count",
        "amount",
    ]
    assert table.to_pylist() == [
        {
            "case_id": "c1",
            "activity": "visit",
            "timestamp": "2024-03-01T10:00:00.000+01:00",
            "lifecycle": "complete",
            "resource": "web",
            "case:segment": "gold",
            "page_count": "3",
            "amount": None,
        },
        {
            "case_id": "c1",
            "activity": "buy",
            "timestamp": "2024-03-01T10:05:00.000+01:00",
            "lifecycle": None,
            "resource": None,
            "case:segment": "gold",
            "page_count": None,
            "amount": "19.5",
        },
        {
            "case_id": "c2",
            "activity": "visit",
            "timestamp": "2024-03-02T08:00:00Z",
            "lifecycle": None,
            "resource": None,
            "case:segment": None,
            "page_count": None,
            "amount": None,
        },
    ]


def test_malformed_xml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.xes"
    path.write_text(SMALL_XES.replace("</trace>\n  <trace>", "</trace>\n  <trace", 1))
    with pytest.raises(IngestError, match=r"broken\.xes: not well-formed XES at line \d+"):
        read_xes(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="not found"):
        read_xes(tmp_path / "nope.xes.gz")


@pytest.mark.real
@pytest.mark.parametrize(
    "folder, name",
    [
        ("helpdesk_tickets", "helpdesk.xes.gz"),
        ("receipt_wabo", "receipt.xes.gz"),
        ("bpi2012_loan_application", "BPI_Challenge_2012.xes.gz"),
    ],
)
def test_real_logs_have_the_reference_counts(real_data: Path, folder: str, name: str) -> None:
    reference = json.loads((real_data / folder / "reference_figures.json").read_text())
    table = read_xes(real_data / folder / name)
    assert table.num_rows == reference["events"]
    assert len(set(table["case_id"].to_pylist())) == reference["cases"]
    assert len(set(table["activity"].to_pylist())) == reference["activities"]
    assert table["timestamp"].null_count == 0
