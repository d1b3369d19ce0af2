"""Write the three sources' rows to their export files (byte-stable for a given input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cjm_analytics.synthetic import dirt
from cjm_analytics.synthetic.render import (
    CALL_COLUMNS,
    CRM_COLUMNS,
    WEB_COLUMNS,
    berlin_naive_text,
    utc_text,
)


def finish_web(
    frame: pl.DataFrame, rng: np.random.Generator, rate: float, as_of_us: int
) -> pl.DataFrame:
    """Web rows with `_line` (the JSON text, malformed where planted)."""
    frame = dirt.spoil_before_text(
        dirt.mark(frame, rng, "web", rate), rng, "web", ("_at",), as_of_us
    )
    frame = frame.with_columns(timestamp=utc_text(pl.col("_at"), with_offset=True))
    frame = dirt.break_timestamps(frame, rng, "web", "timestamp")
    line = pl.struct(*WEB_COLUMNS).struct.json_encode()
    malformed = pl.col("_dirty") == "malformed_json"
    return dirt.duplicate(
        frame.with_columns(
            _line=pl.when(malformed)
            .then(line.str.slice(0, line.str.len_chars() // 2))
            .otherwise(line)
        )
    )


def finish_crm(
    frame: pl.DataFrame, rng: np.random.Generator, rate: float, as_of_us: int
) -> pl.DataFrame:
    frame = dirt.spoil_before_text(
        dirt.mark(frame, rng, "crm", rate), rng, "crm", ("_at",), as_of_us
    )
    frame = frame.with_columns(occurred_at=berlin_naive_text(pl.col("_at")))
    return dirt.duplicate(dirt.break_timestamps(frame, rng, "crm", "occurred_at"))


def finish_calls(
    frame: pl.DataFrame, rng: np.random.Generator, rate: float, as_of_us: int
) -> pl.DataFrame:
    frame = dirt.spoil_before_text(
        dirt.mark(frame, rng, "calls", rate), rng, "calls", ("_at", "_answered", "_ended"), as_of_us
    )
    frame = frame.with_columns(
        queued_at=utc_text(pl.col("_at"), with_offset=False),
        answered_at=pl.when(pl.col("_answered") >= 0).then(
            utc_text(pl.col("_answered"), with_offset=False)
        ),
        ended_at=utc_text(pl.col("_ended"), with_offset=False),
    )
    return dirt.duplicate(dirt.break_timestamps(frame, rng, "calls", "queued_at"))


def write_jsonl(frame: pl.DataFrame, out_dir: Path) -> dict[str, int]:
    """One file per `_file`; returns {relative path: line count}."""
    written = {}
    for part in frame.partition_by("_file", maintain_order=True):
        relative = part["_file"][0]
        text = part["_line"].str.join("\n")[0] + "\n"
        _target(out_dir, relative).write_bytes(text.encode("utf-8"))
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
