"""The funnel's other surfaces: SQL macros, `cjm funnel`, and the chart's data twin/figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from cjm_analytics import warehouse
from cjm_analytics.cli import app
from cjm_analytics.errors import FunnelError
from cjm_analytics.funnels import event_funnel
from cjm_analytics.funnels.macros import install_sql_macros
from cjm_analytics.funnels.on_warehouse import parse_window, pick_table
from cjm_analytics.reports.event_funnel import event_funnel_data, event_funnel_figure

# 40 customers, 12 events each on a 0..30 s clock (ties and repeats on purpose)
LOG_SQL = """
CREATE TABLE touchpoints AS
SELECT 'c' || (i % 40) AS customer_id,
    TIMESTAMP '2024-01-01' + to_seconds(CAST(hash(i) % 31 AS BIGINT)) AS event_at,
    ['a', 'b', 'c', 'x'][CAST(hash(i * 3) % 4 + 1 AS BIGINT)] AS event_name,
    ['mobile', 'desktop', NULL][CAST(hash(i * 5) % 3 + 1 AS BIGINT)] AS device
FROM range(480) AS r(i)
"""


@pytest.fixture
def warehouse_file(tmp_path: Path) -> Path:
    path = tmp_path / "cjm.duckdb"
    with warehouse.connection(path) as con:
        con.execute(LOG_SQL)
        install_sql_macros(con)
    return path


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def eq(x: Any, y: Any) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-9)
        return x == y

    return len(a) == len(b) and all(eq(r[k], s[k]) for r, s in zip(a, b, strict=True) for k in r)


@pytest.mark.parametrize("mode", ["ordered", "strict"])
@pytest.mark.parametrize("steps", [["a", "b", "c"], ["a", "a", "b"], ["b", "a", "b", "a"]])
def test_sql_macro_gives_the_same_rows_as_python(warehouse_file: Path, mode: str, steps: list[str]):
    # the macro is stored in the file: a read-only analyst connection can call it
    with warehouse.connection(warehouse_file, read_only=True) as con:
        rel = con.sql(f"SELECT * FROM cjm_funnel_{mode}('touchpoints', ?, 8)", params=[steps])
        got = pl.from_arrow(rel.to_arrow_table())
        expected = event_funnel("touchpoints", steps, con=con, mode=mode, window_seconds=8)
    assert isinstance(got, pl.DataFrame)
    assert got.columns == expected.columns
    assert _same(got.to_dicts(), expected.to_dicts())
    assert expected["unit_count"][0] > 0


def test_cli_prints_the_funnel_from_the_warehouse(warehouse_file: Path):
    result = CliRunner().invoke(
        app, ["funnel", "--steps", "a,b,c", "--window", "10s", "--warehouse", str(warehouse_file)]
    )
    assert result.exit_code == 0, result.output
    expected = event_funnel("touchpoints", ["a", "b", "c"], window_seconds=10,
                            con=warehouse.connect(warehouse_file, read_only=True))  # fmt: skip
    assert f"{expected['unit_count'][2]:,}" in result.output
    assert "ordered funnel, window 10s" in result.output


def test_cli_breakdown_and_errors(warehouse_file: Path):
    runner = CliRunner()
    ok = runner.invoke(app, ["funnel", "--steps", "a,b", "--window", "1m", "--mode", "strict",
                             "--breakdown", "device", "--warehouse", str(warehouse_file)])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "mobile" in ok.output and "breakdown" in ok.output
    bad = runner.invoke(app, ["funnel", "--steps", "a,b", "--breakdown", "nope",
                              "--warehouse", str(warehouse_file)])  # fmt: skip
    assert bad.exit_code == 2 and "nope" in bad.output
    missing = runner.invoke(app, ["funnel", "--steps", "a", "--warehouse", "/nonexistent.duckdb"])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_parse_window_and_pick_table():
    assert parse_window("7d") == 7 * 86400
    assert parse_window("90") == 90
    assert parse_window("1.5h") == 5400
    with pytest.raises(FunnelError, match="duration"):
        parse_window("soon")
    cols = {"touchpoints": ["customer_id", "event_at", "event_name"],
            "events": ["customer_id", "event_at", "event_name", "device"]}  # fmt: skip
    assert pick_table(cols, {"customer_id", "event_at", "event_name"}) == "touchpoints"
    assert pick_table(cols, {"customer_id", "event_at", "event_name", "device"}) == "events"
    with pytest.raises(FunnelError, match="no table"):
        pick_table(cols, {"region"})


def test_chart_data_twin_and_figure():
    # u1 a b c, u2 a b, u3 a: counts 3, 2, 1; dropped 1 at each step, 0 at the last
    events = pl.DataFrame(
        {
            "customer_id": ["u1"] * 3 + ["u2"] * 2 + ["u3"],
            "event_name": ["a", "b", "c", "a", "b", "a"],
            "event_at": pl.datetime_range(
                pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1, 0, 0, 5), "1s", eager=True
            ),
        }
    )
    frame = event_funnel_data(events, ["a", "b", "c"])
    assert frame["label"].to_list() == ["1. a", "2. b", "3. c"]
    assert frame["dropped_count"].to_list() == [1, 1, 0]
    fig = event_funnel_figure(frame)
    assert [list(t.x) for t in fig.data] == [[3, 2, 1]]
    broken = event_funnel_data(
        events.with_columns(device=pl.lit("m")), ["a", "b"], breakdown="device"
    )
    assert [t.name for t in event_funnel_figure(broken).data] == ["m"]


def test_sql_macro_takes_a_whole_day_as_an_integer_window(warehouse_file: Path):
    # 86400 * 1e6 overflows INT32: the macro must widen the window before scaling it.
    with warehouse.connection(warehouse_file, read_only=True) as con:
        rows = con.execute(
            "SELECT unit_count FROM cjm_funnel_ordered('touchpoints', ['a', 'b'], 7 * 86400)"
        ).fetchall()
        expected = event_funnel("touchpoints", ["a", "b"], con=con, window_seconds=7 * 86400)
    assert [r[0] for r in rows] == expected["unit_count"].to_list()
