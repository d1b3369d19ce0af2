"""Benchmark: a 5-step ordered funnel with a window, against the DuckDB sort floor and
retentioneering's funnel on the same synthetic log.

    .venv/bin/python bench/bench_funnel.py            # 1M events (+ retentioneering)
    .venv/bin/python bench/bench_funnel.py 1e6 1e7    # sizes to run

The floor is DuckDB sorting the same events by customer and time into a table: no
funnel can be cheaper than ordering every customer's events once.

retentioneering's funnel is sequential with no conversion window and no tie rule (a
path reaches step k when the step events occur in increasing event order). With a
window longer than the whole log and no two events of a customer at the same instant,
that is exactly our ordered funnel, so the counts must be identical: the bench fails
loudly if they are not. Its time includes building its Eventstream from pandas (it has
no other entry point), reported separately.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from typing import Any

import duckdb

from cjm_analytics import warehouse
from cjm_analytics.funnels import event_funnel

os.environ.setdefault("RETENTIONEERING_NO_TRACK", "1")
STEPS = ["view_pricing", "start_trial", "book_demo", "request_quote", "purchase"]
WINDOW_SECONDS = 7 * 86400
FOREVER_SECONDS = 10 * 365 * 86400
NOISE = ["page_view", "email_open", "support_call", "login", "search"]


def make_log(con: duckdb.DuckDBPyConnection, events: int, table: str = "events") -> None:
    """`events` rows: 20 events per customer over 30 days, half of them noise; a step
    event's kind cycles with the day (steps 1..5 over 7.5 days) so some customers convert
    inside the window; microsecond timestamps (ties are reported, and rare)."""
    names = STEPS + NOISE
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {table} AS
        WITH raw AS (
            SELECT i, 'c' || CAST(i // 20 AS VARCHAR) AS customer_id,
                hash(i * 7) % CAST(2592000000000 AS UBIGINT) AS offset_us,
                hash(i * 13) % 100 AS roll
            FROM range(?) AS r(i)
        )
        SELECT customer_id,
            TIMESTAMP '2024-01-01' + to_microseconds(CAST(offset_us AS BIGINT)) AS event_at,
            list_extract(?, CASE
                WHEN roll < 50 THEN 6 + CAST(roll % 5 AS INTEGER)
                ELSE 1 + least(4, CAST(offset_us // 129600000000 % 5 AS INTEGER) + CAST(roll % 2 AS INTEGER))
            END) AS event_name,
            CASE roll % 3 WHEN 0 THEN 'mobile' WHEN 1 THEN 'desktop' END AS device
        FROM raw
        """,
        [events, names],
    )


CPU: dict[str, float] = {}  # CPU seconds (all threads) of the last `_timed` call


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn: Any) -> tuple[float, Any]:
    """(wall seconds, result); the CPU seconds go to CPU["last"] (robust to a loaded machine)."""
    start, cpu = time.perf_counter(), _cpu()
    result = fn()
    CPU["last"] = _cpu() - cpu
    return time.perf_counter() - start, result


def sort_floor(con: duckdb.DuckDBPyConnection) -> float:
    seconds, _ = _timed(
        lambda: con.execute(
            "CREATE OR REPLACE TEMP TABLE sorted_floor AS "
            "SELECT * FROM events ORDER BY customer_id, event_at"
        )
    )
    con.execute("DROP TABLE sorted_floor")
    CPU["floor"] = CPU["last"]
    return seconds


def retentioneering_counts(con: duckdb.DuckDBPyConnection) -> tuple[float, float, list[int]]:
    """(seconds to build the Eventstream, seconds for the funnel, counts per step)."""
    from retentioneering import Eventstream

    df = con.sql("SELECT customer_id, event_name, event_at FROM events").df()
    schema = {"path_cols": ["customer_id"], "event_col": "event_name", "timestamp_col": "event_at"}
    load_s, stream = _timed(lambda: Eventstream(df, schema=schema))
    CPU["load"] = CPU["last"]
    funnel_s, data = _timed(lambda: stream.funnel_data(steps=STEPS))
    return load_s, funnel_s, [int(s["unique_paths"]) for s in data["steps"]]


def run(events: int, with_retentioneering: bool = True) -> list[dict[str, Any]]:
    """One row per measured thing at this size: seconds and ratio to the sort floor."""
    con = warehouse.connect()
    make_log(con, 1000, "warm_up")  # one-time imports and setup are not the funnel's cost
    event_funnel("warm_up", STEPS, window_seconds=WINDOW_SECONDS, con=con)
    make_log(con, events)
    ties = con.execute(
        "SELECT count(*) - count(DISTINCT (customer_id, event_at)) FROM events"
    ).fetchone()[0]  # type: ignore[index]
    floor = sort_floor(con)
    rows = [
        {
            "events": events,
            "what": "duckdb sort floor",
            "seconds": floor,
            "x_floor": 1.0,
            "cpu_seconds": CPU["floor"],
            "cpu_x_floor": 1.0,
            "same_instant_events": ties,
        }
    ]
    for mode in ("ordered", "strict", "unordered"):
        seconds, frame = _timed(
            lambda m=mode: event_funnel(
                "events", STEPS, mode=m, window_seconds=WINDOW_SECONDS, con=con
            )
        )
        rows.append(
            _row(events, f"cjm {mode}, 7d window", seconds, floor, frame["unit_count"].to_list())
        )
    seconds, ours = _timed(
        lambda: event_funnel("events", STEPS, window_seconds=FOREVER_SECONDS, con=con)
    )
    ours_counts = ours["unit_count"].to_list()
    rows.append(_row(events, "cjm ordered, no window", seconds, floor, ours_counts))
    if with_retentioneering:
        load_s, funnel_s, theirs = retentioneering_counts(con)
        CPU["last"], funnel_cpu = CPU["load"], CPU["last"]
        rows.append(_row(events, "retentioneering load", load_s, floor, None))
        CPU["last"] = funnel_cpu
        rows.append(_row(events, "retentioneering funnel", funnel_s, floor, theirs))
        # with ties the peer's order is arbitrary where ours helps the funnel
        if ties == 0 and theirs != ours_counts:
            raise AssertionError(
                f"same semantics, different counts: retentioneering {theirs} vs cjm {ours_counts}"
            )
    con.close()
    return rows


def _row(
    events: int, what: str, seconds: float, floor: float, counts: list[int] | None
) -> dict[str, Any]:
    return {
        "events": events,
        "what": what,
        "seconds": seconds,
        "x_floor": seconds / floor,
        "cpu_seconds": CPU["last"],
        "cpu_x_floor": CPU["last"] / CPU["floor"],
        "unit_counts": counts,
    }


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    sizes = [int(float(a)) for a in argv] or [1_000_000]
    table = Table("events", "what", "seconds", "x floor", "cpu s", "cpu x floor", "units per step")
    for size in sizes:
        for row in run(size, with_retentioneering=size <= 2_000_000):
            table.add_row(
                f"{row['events']:,}", row["what"], f"{row['seconds']:.2f}",
                f"{row['x_floor']:.1f}", f"{row['cpu_seconds']:.2f}",
                f"{row['cpu_x_floor']:.1f}", str(row.get("unit_counts") or ""),
            )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
