"""XES event logs (IEEE 1849, `.xes` or gzip-compressed `.xes.gz`) -> an Arrow table of text.

Streams the file with lxml `iterparse`: each trace is read, turned into rows and cleared
before the next, so memory holds one trace plus the finished Arrow chunks, never the
whole document. Every value stays text (the ingest validator parses times and numbers
and rejects bad rows with a reason):

- `case_id`: the trace's `concept:name`;
- `activity`: the event's `concept:name`;
- `timestamp`: the event's `time:timestamp` as written (ISO 8601 with its UTC offset);
- `lifecycle`: `lifecycle:transition`; `resource`: `org:resource`;
- every other event attribute under its own key, and every other trace attribute as
  `case:<key>` (pm4py's naming). Nested (list/container) attribute values are not kept.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import pyarrow as pa

from cjm_analytics.errors import IngestError

#: XES standard keys -> our column names.
EVENT_KEYS: dict[str, str] = {
    "concept:name": "activity",
    "time:timestamp": "timestamp",
    "lifecycle:transition": "lifecycle",
    "org:resource": "resource",
}
BASE_COLUMNS: tuple[str, ...] = ("case_id", "activity", "timestamp", "lifecycle", "resource")
CHUNK_EVENTS = 50_000


def read_xes(path: str | Path) -> pa.Table:
    """One row per event of the log, all columns strings (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"XES file not found: {path}")
    chunks = list(_chunks(path))
    if not chunks:
        return pa.table({name: pa.array([], pa.string()) for name in BASE_COLUMNS})
    table = pa.concat_tables(chunks, promote_options="default")
    extra = [name for name in table.column_names if name not in BASE_COLUMNS]
    return table.select([*BASE_COLUMNS, *extra])


def _open(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        is_gzip = probe.read(2) == b"\x1f\x8b"
    return cast(IO[bytes], gzip.GzipFile(path, "rb")) if is_gzip else path.open("rb")


def _chunks(path: Path) -> Iterator[pa.Table]:
    """Arrow tables of about CHUNK_EVENTS rows each, in file order."""
    rows: list[dict[str, str | None]] = []
    for trace_rows in _traces(path):
        rows.extend(trace_rows)
        if len(rows) >= CHUNK_EVENTS:
            yield _to_table(rows)
            rows = []
    if rows:
        yield _to_table(rows)


def _to_table(rows: list[dict[str, str | None]]) -> pa.Table:
    names = list(BASE_COLUMNS)
    seen = set(names)
    for row in rows:
        for name in row:
            if name not in seen:
                seen.add(name)
                names.append(name)
    return pa.table(
        {name: pa.array([row.get(name) for row in rows], pa.string()) for name in names}
    )


def _traces(path: Path) -> Iterator[list[dict[str, str | None]]]:
    """The rows of each trace; events are buffered until the trace's own attributes are known."""
    from lxml import etree

    events: list[dict[str, str | None]] = []
    with _open(path) as stream:
        parser = etree.iterparse(
            stream, events=("end",), tag=("{*}event", "{*}trace"), huge_tree=True
        )
        try:
            for _, element in parser:
                if etree.QName(element).localname == "event":
                    events.append(_event_row(element))
                    element.clear()
                    continue
                yield _with_trace(events, _attributes(element))
                events = []
                _release(element)
        except etree.XMLSyntaxError as exc:
            raise IngestError(
                f"{path}: not well-formed XES at line {exc.lineno}: {exc.msg} "
                "(expected an XES 1849 log of <trace> elements holding <event> elements)"
            ) from None
    if events:
        raise IngestError(f"{path}: {len(events)} <event> element(s) outside any <trace>")


def _attributes(element: Any) -> dict[str, str | None]:
    """key -> value of the direct attribute children (string, date, int, float, boolean, id)."""
    values: dict[str, str | None] = {}
    for child in element:
        key = child.get("key") if isinstance(child.tag, str) else None
        if key is not None and child.get("value") is not None:
            values[key] = child.get("value")
    return values


def _event_row(element: Any) -> dict[str, str | None]:
    row: dict[str, str | None] = {}
    for key, value in _attributes(element).items():
        row[EVENT_KEYS.get(key, key)] = value
    return row


def _with_trace(
    events: list[dict[str, str | None]], trace: dict[str, str | None]
) -> list[dict[str, str | None]]:
    case_columns = {f"case:{key}": value for key, value in trace.items() if key != "concept:name"}
    case_id = trace.get("concept:name")
    return [{"case_id": case_id, **case_columns, **event} for event in events]


def _release(element: Any) -> None:
    """Free a finished trace and the already-processed siblings before it."""
    element.clear()
    parent = element.getparent()
    while element.getprevious() is not None and parent is not None:
        del parent[0]
