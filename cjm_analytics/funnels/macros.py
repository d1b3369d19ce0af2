"""The event funnel as DuckDB table macros, so analysts can run it from SQL.

    SELECT * FROM cjm_funnel_ordered('touchpoints', ['view_pricing', 'book_demo', 'purchase'], 7 * 86400);
    SELECT * FROM cjm_funnel_strict('events', ['a', 'b'], 3600);

Same rows and the same semantics as `event_funnel` (ordered / strict, window, ties,
best attempt, time to convert) for funnels of up to MAX_STEPS event names, counted per
`customer_id`. Exclusions, `where` filters, first-time steps, breakdowns, date bounds
and unordered funnels are Python/CLI only: a macro's SQL is fixed when it is created,
and each of those changes the shape of the query (see docs/adr/0041).

The macro text is generated from the same builders as the engine (one CTE chain instead
of temporary tables); step names and the window are macro arguments, so no value is
ever pasted into SQL.
"""

from __future__ import annotations

import duckdb

from cjm_analytics.funnels.engine import chain_ctes, copies_sql
from cjm_analytics.funnels.spec import FunnelSpec, Matcher

MAX_STEPS = 6
MACROS = {"cjm_funnel_ordered": "ordered", "cjm_funnel_strict": "strict"}


def install_sql_macros(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create (or replace) the funnel table macros in `con`'s database; returns their names.

    Call it on the warehouse being built, before publishing: the macros are stored in the
    file, so every analyst's read-only connection has them.
    """
    for name, mode in MACROS.items():
        con.execute(macro_sql(name, mode))
    return list(MACROS)


def macro_sql(name: str, mode: str) -> str:
    """`CREATE OR REPLACE MACRO name(events_table, steps, window_seconds) AS TABLE ...`."""
    # every step "has the same name" as far as the generator knows, so each step gets the
    # full number of hops past already-used events: correct for any repeated names
    spec = FunnelSpec(steps=tuple(Matcher("?") for _ in range(MAX_STEPS)), mode=mode)
    n = spec.n
    flags = ", ".join(f"coalesce(event_name = steps[{j + 1}], false) AS m{j}" for j in range(n))
    any_step = " OR ".join(f"m{j}" for j in range(n))
    strict_cols = ""
    if mode == "strict":
        strict_cols = (
            ", count(*) OVER (PARTITION BY unit_id ORDER BY t RANGE BETWEEN CURRENT ROW "
            "AND CURRENT ROW) AS cnt_t, min(t) OVER (PARTITION BY unit_id ORDER BY t "
            "RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS nd_t"
        )
    chain, _ = chain_ctes(
        spec, "cp", window="CAST(CAST(window_seconds AS DOUBLE) * 1000000 AS BIGINT)"
    )
    reached = " + ".join(["1"] + [f"CAST(e{k} IS NOT NULL AS INTEGER)" for k in range(1, n)])
    last = "coalesce(" + ", ".join(f"t{k}" for k in reversed(range(n))) + ")"
    later = "".join(f", t{k}" for k in range(1, n))
    diff = " ".join(f"WHEN {k + 1} THEN t{k} - t{k - 1}" for k in range(1, n))
    return f"""
    CREATE OR REPLACE MACRO {name}(events_table, steps, window_seconds) AS TABLE
    WITH raw AS (
        SELECT customer_id AS unit_id, '' AS bucket, epoch_us(event_at) AS t, {flags}
        FROM query_table(events_table)
        WHERE customer_id IS NOT NULL AND event_at IS NOT NULL
    ),
    timed AS (SELECT *{strict_cols} FROM raw),
    ev AS (SELECT * FROM timed WHERE {any_step}),
    cp AS ({copies_sql(spec, "ev")}),
    {chain},
    scored AS (SELECT *, {reached} AS reached FROM s{n - 1}),
    best AS (
        SELECT * FROM scored
        QUALIFY row_number() OVER (
            PARTITION BY unit_id ORDER BY reached DESC, {last}, t0 DESC{later}) = 1
    ),
    numbered AS (SELECT unnest(generate_series(1, len(steps))) AS step),
    counted AS (
        SELECT s.step, count(b.unit_id) AS unit_count,
            avg(CASE s.step {diff} END) / 1e6 AS avg_s,
            median(CASE s.step {diff} END) / 1e6 AS median_s
        FROM numbered AS s LEFT JOIN best AS b ON b.reached >= s.step
        GROUP BY s.step
    ),
    final AS (
        SELECT step, steps[step] AS event_name, unit_count,
            CASE WHEN coalesce(lag(unit_count) OVER w, unit_count) > 0
                THEN unit_count / coalesce(lag(unit_count) OVER w, unit_count) END
                AS conversion_rate_from_previous,
            CASE WHEN first_value(unit_count) OVER w > 0
                THEN unit_count / first_value(unit_count) OVER w END
                AS conversion_rate_from_start,
            avg_s AS avg_time_from_previous_seconds,
            median_s AS median_time_from_previous_seconds
        FROM counted
        WINDOW w AS (ORDER BY step)
    )
    SELECT * FROM final ORDER BY step
    """
