"""Write the three sources' rows to their export files (byte-stable for a given input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cjm_analytics.synthetic import dirt
from cjm_analytics.synthetic.render import CALL_COLUMNS, CRM_COLUMNS, WEB_COLUMNS
from cjm_analytics.synthetic.timetext import timestamp_text

#: hidden columns the truth needs after the text is written
KEEP = ("_customer", "_at", "_stage", "_dirty", "_file")


def _text(
    frame: pl.DataFrame, column: str, zone: str | None, sep: str, millis: bool, with_offset: bool
) -> pl.Series:
    """Text of a microsecond column (negative = no time, left empty)."""
    at = frame[column].to_numpy()
    text = timestamp_text(
        np.where(at < 0, at.max(initial=0), at),
        zone,
        sep=sep,
        millis=millis,
        with_offset=with_offset,
    )
    return text.scatter(np.flatnonzero(at < 0), None)


def finish_web(
    frame: pl.DataFrame, rng: np.random.Generator, rate: float, as_of_us: int
) -> pl.DataFrame:
    """Web rows reduced to `_line` (the JSON text, malformed where planted) and what truth needs."""
    frame = dirt.spoil_before_text(
        dirt.mark(frame, rng, "web", rate), rng, "web", ("_at",), as_of_us
    )
    frame = frame.with_columns(timestamp=_text(frame, "_at", "Europe/Berlin", "T", True, True))
    frame = dirt.break_timestamps(frame, rng, "web", "timestamp")
    line = pl.struct(*WEB_COLUMNS).struct.json_encode()
    malformed = pl.col("_dirty") == "malformed_json"
    slim = frame.select(
        *KEEP, "_cookie", "anonymous_id", "user_id", "email",
        _line=pl.when(malformed).then(line.str.slice(0, line.str.len_chars() // 2)).otherwise(line),
    )  # fmt: skip
    return dirt.duplicate(slim)


def finish_crm(
    frame: pl.DataFrame, rng: np.random.Generator, rate: float, as_of_us: int
) -> pl.DataFrame:
    frame = dirt.spoil_before_text(
        dirt.mark(frame, rng, "crm", rate), rng, "crm", ("_at",), as_of_us
    )
    frame = frame.with_columns(occurred_at=_text(frame, "_at", "Europe/Berlin", " ", False, False))
    return dirt.duplicate(dirt.break_timestamps(frame, rng, "crm", "occurred_at"))


def finish_calls(
    frame: pl.DataFrame, rng: np.random.Generator, rate: float, as_of_us: int
) -> pl.DataFrame:
    times = ("_at", "_answered", "_ended")
    frame = dirt.spoil_before_text(
        dirt.mark(frame, rng, "calls", rate), rng, "calls", times, as_of_us
    )
    frame = frame.with_columns(
        queued_at=_text(frame, "_at", None, " ", False, False),
        answered_at=_text(frame, "_answered", None, " ", False, False),
        ended_at=_text(frame, "_ended", None, " ", False, False),
    )
    return dirt.duplicate(dirt.break_timestamps(frame, rng, "calls", "queued_at"))


def write_jsonl(frame: pl.DataFrame, out_dir: Path) -> dict[str, int]:
    """One file per `_file`; returns {relative path: line count}."""
    written = {}
    for part in frame.select("_file", "_line").partition_by("_file", maintain_order=True):
        relative = part["_file"][0]
        part.select("_line").write_csv(
            _target(out_dir, relative), include_header=False, quote_style="never"
        )
        written[relative] = part.height
    return written


def write_csv(
    frame: pl.DataFrame, out_dir: Path, columns: tuple[str, ...], delimiter: str
) -> dict[str, int]:
    written = {}
    for part in frame.partition_by("_file", maintain_order=True):
        relative = part["_file"][0]
        part.select(columns).write_csv(
            _target(out_dir, relative),
            separator=delimiter,
            quote_char='"',
            float_precision=2,
            null_value="",
        )
        written[relative] = part.height
    return written


def _target(out_dir: Path, relative: str) -> Path:
    path = out_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


__all__ = [
    "CALL_COLUMNS",
    "CRM_COLUMNS",
    "finish_calls",
    "finish_crm",
    "finish_web",
    "write_csv",
    "write_jsonl",
]
