"""The funnel engine on DuckDB: every unit's best attempt, with set-based SQL only.

Pipeline (each stage a temporary table, dropped at the end):

1. `ev`: the unit's events in the date range, one boolean per step (`m0..`), the
   breakdown bucket, and for strict mode / exclusions the time-based facts a chain needs
   (events at the same instant, the next distinct instant, the next excluded event).
2. ordered/strict: `cp` holds one *copy* of an event per step it matches, in the walk
   order (time, step, signature) that lets ties help the funnel, with running counts
   `r{j}` of step-j copies. An attempt starts at every step-1 copy; step k is the step-k
   copy ranked one after the previous step's count (a hash join), skipping (a bounded
   number of hops) events the attempt already used.
   unordered: every step event anchors a window; a step definition used once takes its
   first event from a windowed `min`, one used r times from an ASOF join plus `lead()`.
3. `best`: one row per (unit, bucket): the attempt that counts (furthest, then not
   excluded, then earliest completion, then latest start), with its step times.

Ordered funnels whose steps all name different events skip `cp` and the joins: their
chains are walked in numpy over one sorted fetch of `ev` (`walk.py`, ADR 0044).

No Python loop touches an event or a unit: the work is a few sorts, hash joins and
vectorized array passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

import duckdb

from cjm_analytics.funnels.spec import FunnelSpec, quote
from cjm_analytics.funnels.walk import walk_attempts, walk_unordered, walkable

Sql = tuple[str, list[Any]]


@contextmanager
def temp_names(con: duckdb.DuckDBPyConnection) -> Iterator[dict[str, str]]:
    """Unique temporary table names for one funnel run, dropped afterwards."""
    prefix = f"_cjm_funnel_{uuid4().hex[:10]}"
    names = {k: f"{prefix}_{k}" for k in ("ev", "cp", "att", "best")}
    try:
        yield names
    finally:
        for name in names.values():
            con.execute(f"DROP TABLE IF EXISTS temp.{name}")


def _flags(spec: FunnelSpec) -> Sql:
    parts, params = [], []
    for j, step in enumerate(spec.steps):
        sql, p = step.to_sql()
        parts.append(f"coalesce({sql}, false) AS m{j}")
        params += p
    for i, x in enumerate(spec.exclusions):
        sql, p = x.matcher.to_sql()
        parts.append(f"coalesce({sql}, false) AS x{i}")
        params += p
    return ", ".join(parts), params


def _bucketed(spec: FunnelSpec) -> str:
    """CTEs that give every event its breakdown bucket ('' when not broken down per event)."""
    if spec.breakdown is None or spec.by_touch:
        return "bucketed AS (SELECT *, '' AS bucket FROM flagged)"
    if spec.attribution == "all_events":
        return "bucketed AS (SELECT *, coalesce(bv, '') AS bucket FROM flagged)"
    b = spec.breakdown_step
    return f"""
    candidates AS (SELECT DISTINCT unit_id, coalesce(bv, '') AS bucket FROM flagged WHERE m{b}),
    buckets AS (
        SELECT * FROM candidates
        UNION ALL
        SELECT DISTINCT unit_id, '' FROM flagged
        WHERE unit_id NOT IN (SELECT unit_id FROM candidates)
    ),
    bucketed AS (
        SELECT f.* REPLACE (f.m{b} AND coalesce(f.bv, '') = k.bucket AS m{b}), k.bucket
        FROM flagged AS f JOIN buckets AS k USING (unit_id)
    )"""


def _timed(spec: FunnelSpec, source: str) -> str:
    """Time-based facts per event: strict adjacency, next excluded event strictly later."""
    cols = []
    if spec.mode == "strict":
        cols += ["count(*) OVER same_instant AS cnt_t", "min(t) OVER later AS nd_t"]
    cols += [
        f"min(CASE WHEN x{i} THEN t END) OVER later AS nx{i}" for i in range(len(spec.exclusions))
    ]
    if not cols:
        return f"timed AS (SELECT * FROM {source})"
    return f"""timed AS (
        SELECT *, {", ".join(cols)} FROM {source}
        WINDOW
            same_instant AS (PARTITION BY unit_id, bucket ORDER BY t RANGE BETWEEN CURRENT ROW AND CURRENT ROW),
            later AS (PARTITION BY unit_id, bucket ORDER BY t RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
    )"""


def step_event_ctes(source: str, spec: FunnelSpec, *, every_event: bool) -> Sql:
    """CTEs `hist` .. `kept`: the unit's events in the date range, flagged `m{j}`/`x{i}`,
    with their breakdown bucket; `kept` holds the step and excluded events, or with
    `every_event` all of them (strict mode needs every event for adjacency)."""
    unit = quote(spec.unit)
    props = "".join(f", {quote(c)}" for c in spec.property_columns)
    bv = f"CAST({quote(spec.breakdown)} AS VARCHAR)" if spec.breakdown else "CAST(NULL AS VARCHAR)"
    first = (
        f"event_at = min(event_at) OVER (PARTITION BY {unit}, event_name)"
        if spec.uses_first_time
        else "false"
    )
    flags, params = _flags(spec)
    any_event = " OR ".join(
        [f"m{j}" for j in range(spec.n)] + [f"x{i}" for i in range(len(spec.exclusions))]
    )
    # otherwise read only events named by a step or an exclusion (a scan filter DuckDB
    # pushes down)
    names = sorted({s.event for s in spec.steps} | {x.matcher.event for x in spec.exclusions})
    only_named = "" if every_event else f" AND event_name IN ({', '.join('?' * len(names))})"
    sql = f"""
    hist AS (
        SELECT {unit} AS unit_id, event_name, epoch_us(event_at) AS t, {bv} AS bv{props},
            {first} AS is_first_of_name
        FROM {source}
        WHERE {unit} IS NOT NULL AND event_at IS NOT NULL{only_named}
    ),
    ranged AS (
        SELECT * FROM hist
        WHERE (CAST(? AS BIGINT) IS NULL OR t >= ?) AND (CAST(? AS BIGINT) IS NULL OR t <= ?)
    ),
    flagged AS (SELECT unit_id, t, bv, {flags} FROM ranged),
    {_bucketed(spec)},
    kept AS (SELECT * FROM bucketed WHERE {"true" if every_event else any_event})"""
    bounds = [spec.from_us, spec.from_us, spec.to_us, spec.to_us]
    return sql, [*([] if every_event else names), *bounds, *params]


def prepare_events(
    con: duckdb.DuckDBPyConnection, source: str, spec: FunnelSpec, name: str
) -> None:
    """Materialize `ev`: one row per step event of a (unit, bucket) in the date range."""
    ctes, params = step_event_ctes(source, spec, every_event=spec.mode == "strict")
    any_step = " OR ".join(f"m{j}" for j in range(spec.n))
    xcols = [f"x{i}" for i in range(len(spec.exclusions))]
    exclude = f"EXCLUDE ({', '.join(xcols)})" if xcols else ""
    sql = f"""
    CREATE TEMP TABLE {name} AS
    WITH {ctes},
    {_timed(spec, "kept")}
    SELECT * {exclude} FROM timed WHERE {any_step}
    """
    con.execute(sql, params)


def touch_source(spec: FunnelSpec, ev: str) -> str:
    """A relation (unit_id, touch): the first- or last-touch breakdown value of each unit,
    over its step events in `ev` (nulls skipped; ties broken by the value)."""
    return f"(SELECT unit_id, {touch_aggregate(spec)} AS touch FROM {ev} GROUP BY unit_id)"


def touch_aggregate(spec: FunnelSpec) -> str:
    order = "t, bv" if spec.attribution == "first_touch" else "t DESC, bv DESC"
    return f"first(bv ORDER BY {order}) FILTER (WHERE bv IS NOT NULL)"


def _carried(spec: FunnelSpec) -> list[str]:
    """Per-event columns a chain step needs besides time: strict adjacency, exclusions."""
    cols = ["cnt_t", "nd_t"] if spec.mode == "strict" else []
    return cols + [f"nx{i}" for i in range(len(spec.exclusions))]


def build_copies(con: duckdb.DuckDBPyConnection, spec: FunnelSpec, ev: str, cp: str) -> None:
    """`cp`: one copy per (event, step it matches), numbered in the order a chain walks.

    Copies are ordered by time, then step, then the set of steps the event matches, so at
    one instant a step takes the events least useful to later steps first (ties help).
    """
    # `ev` is a table: its rowid numbers the events without a window over all of them
    con.execute(f"CREATE TEMP TABLE {cp} AS {copies_sql(spec, ev, eid='rowid')}")


def copies_sql(spec: FunnelSpec, ev: str, eid: str = "row_number() OVER ()") -> str:
    """The SELECT behind `build_copies` (also used by the SQL macros).

    `r{j}` counts the step-j copies up to and including this one in walk order, so "the
    first step-j copy after this one" is the step-j copy whose `r{j}` is one more: a hash
    join, no search. `eid` numbers the events of `ev` (any distinct numbers will do).
    """
    n = spec.n
    ranks = "".join(
        f", sum(CASE WHEN label = {j} THEN 1 ELSE 0 END) OVER walk AS r{j}" for j in range(1, n)
    )
    carried = "".join(f", {c}" for c in _carried(spec))
    flags = ", ".join(f"m{j}" for j in range(n))
    sig = " + ".join(f"(CASE WHEN m{j} THEN {1 << j} ELSE 0 END)" for j in range(n))
    if len({step.event for step in spec.steps}) == n:
        # distinct event names: an event matches at most one step, one copy is the event
        label = " ".join(f"WHEN m{j} THEN {j}" for j in range(n))
        unions = f"SELECT * EXCLUDE ({flags}), CASE {label} END AS label FROM ided"
    else:
        unions = " UNION ALL ".join(
            f"SELECT * EXCLUDE ({flags}), {j} AS label FROM ided WHERE m{j}" for j in range(n)
        )
    return f"""
    WITH ided AS (
        SELECT unit_id, bucket, t{carried}, {flags}, {sig} AS sig, {eid} AS eid
        FROM {ev}
    ),
    copies AS ({unions})
    SELECT unit_id, bucket, eid, label, t{carried}{ranks}
    FROM copies
    WINDOW walk AS (
        PARTITION BY unit_id, bucket ORDER BY t, label, sig, eid
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    )
    """


def _step_columns(spec: FunnelSpec, k: int, alias: str) -> list[tuple[str, str]]:
    """(target column, source expression) of step k's chain columns read from copy `alias`."""
    cols = [(f"e{k}", f"{alias}.eid"), (f"t{k}", f"{alias}.t")]
    if k + 1 < spec.n:
        cols.append((f"q{k}", f"{alias}.r{k + 1}"))
    if k > 0:
        cols.append((f"rk{k}", f"{alias}.r{k}"))
    if spec.mode == "strict":
        cols += [(f"c{k}", f"{alias}.cnt_t"), (f"d{k}", f"{alias}.nd_t")]
    cols += [
        (f"nx{i}_{k}", f"{alias}.nx{i}") for i, x in enumerate(spec.exclusions) if x.from_step == k
    ]
    return cols


def _hops(spec: FunnelSpec, k: int) -> int:
    """How many already-used events step k may have to skip at one instant."""
    return sum(1 for i in range(k) if spec.steps[i].event == spec.steps[k].event)


def _next_copy(cp: str, k: int, rank: str) -> str:
    """Join to the step-k copy of the same (unit, bucket) whose rank is `rank` + 1."""
    return (
        f"LEFT JOIN {cp} AS l ON l.label = {k} AND l.unit_id = a.unit_id "
        f"AND l.bucket = a.bucket AND l.r{k} = {rank} + 1"
    )


def chain_ctes(spec: FunnelSpec, cp: str, window: str = "?") -> Sql:
    """CTEs s0..s{n-1}: every attempt's chain, each step the next usable copy.

    `window` is the SQL for the window in microseconds: a bound `?` (default) or, in a
    macro, an expression of the macro's arguments.
    """
    first = ", ".join(f"{src} AS {dst}" for dst, src in _step_columns(spec, 0, "c"))
    ctes = [f"s0 AS (SELECT c.unit_id, c.bucket, {first} FROM {cp} AS c WHERE c.label = 0)"]
    params: list[Any] = []
    for k in range(1, spec.n):
        cols = _step_columns(spec, k, "l")
        used = ", ".join(f"e{i}" for i in range(k))
        sel = ", ".join(f"{src} AS {dst}" for dst, src in cols)
        ctes.append(
            f"j{k}_0 AS (SELECT a.*, {sel} FROM s{k - 1} AS a {_next_copy(cp, k, f'a.q{k - 1}')})"
        )
        last = f"j{k}_0"
        for r in range(1, _hops(spec, k) + 1):
            swap = ", ".join(
                f"CASE WHEN a.u THEN {src} ELSE a.{dst} END AS {dst}" for dst, src in cols
            )
            ctes.append(
                f"j{k}_{r} AS (SELECT a.* EXCLUDE (u, hop) REPLACE ({swap}) FROM "
                f"(SELECT *, coalesce(e{k} IN ({used}), false) AS u, "
                f"CASE WHEN e{k} IN ({used}) THEN rk{k} END AS hop FROM {last}) AS a "
                f"{_next_copy(cp, k, 'a.hop')})"
            )
            last = f"j{k}_{r}"
        ok = f"e{k} IS NOT NULL AND e{k} NOT IN ({used}) AND t{k} - t0 <= {window}"
        params += [spec.window_us] if window == "?" else []
        if spec.mode == "strict":
            same = " + ".join(f"CAST(t{i} = t{k - 1} AS INTEGER)" for i in range(k))
            ok += (
                f" AND (t{k} = t{k - 1} OR t{k} = d{k - 1})"
                f" AND (t{k - 1} = t0 OR t{k} = t{k - 1} OR c{k - 1} = {same})"
            )
        nulls = ", ".join(f"CASE WHEN ok THEN {dst} END AS {dst}" for dst, _ in cols)
        ctes.append(
            f"s{k} AS (SELECT * EXCLUDE (ok) REPLACE ({nulls}) "
            f"FROM (SELECT *, coalesce({ok}, false) AS ok FROM {last}))"
        )
    return ",\n".join(ctes), params


def _excluded(spec: FunnelSpec, start: str) -> Sql:
    """SQL boolean: the attempt contains an excluded event between its named steps."""
    parts, params = [], []
    for i, x in enumerate(spec.exclusions):
        nx = f"nx{i}_{x.from_step}"
        parts.append(
            f"(reached > {x.from_step} AND coalesce(CASE WHEN reached > {x.to_step} "
            f"THEN {nx} < t{x.to_step} ELSE {nx} <= {start} + ? END, false))"
        )
        params.append(spec.window_us)
    return (" OR ".join(parts) or "false"), params


def best_select(spec: FunnelSpec, source: str, best: str, start: str) -> str:
    times = ", ".join(f"t{k}" for k in range(spec.n))
    last = "coalesce(" + ", ".join(f"t{k}" for k in reversed(range(spec.n))) + ")"
    later = "".join(f", t{k}" for k in range(1, spec.n))
    return f"""
    CREATE TEMP TABLE {best} AS
    SELECT unit_id, bucket, reached, excluded, {times} FROM {source}
    QUALIFY row_number() OVER (
        PARTITION BY unit_id, bucket
        ORDER BY reached DESC, excluded, {last}, {start} DESC{later}
    ) = 1
    """


def ordered_best(con: duckdb.DuckDBPyConnection, spec: FunnelSpec, names: dict[str, str]) -> None:
    """`best` for ordered and strict funnels, from `ev`.

    Distinct step names in ordered mode walk the chains in numpy (`walk.py`, ADR 0044);
    the other funnels join copies in SQL. Both give `s{n-1}`: one row per attempt.
    """
    if walkable(spec):
        walked = names["cp"]
        walk_attempts(con, spec, names["ev"], walked)
        try:
            _score_attempts(con, spec, names, "", walked, [])
        finally:
            con.unregister(walked)
    else:
        build_copies(con, spec, names["ev"], names["cp"])
        chain, params = chain_ctes(spec, names["cp"])
        _score_attempts(con, spec, names, f"{chain},", f"s{spec.n - 1}", params)
    con.execute(best_select(spec, names["att"], names["best"], "t0"))


def _score_attempts(
    con: duckdb.DuckDBPyConnection,
    spec: FunnelSpec,
    names: dict[str, str],
    ctes: str,
    attempts: str,
    params: list[Any],
) -> None:
    """`att`: every attempt with how far it reached and whether an exclusion removes it."""
    reached = " + ".join(["1"] + [f"CAST(e{k} IS NOT NULL AS INTEGER)" for k in range(1, spec.n)])
    excluded, xparams = _excluded(spec, "t0")
    con.execute(
        f"""CREATE TEMP TABLE {names["att"]} AS
        WITH {ctes}
        scored AS (SELECT *, {reached} AS reached FROM {attempts})
        SELECT *, {excluded} AS excluded FROM scored""",
        params + xparams,
    )


def _groups(spec: FunnelSpec) -> list[tuple[int, int]]:
    """Distinct step definitions as (first step index, how many steps share it)."""
    seen: dict[Any, list[int]] = {}
    for j, step in enumerate(spec.steps):
        key = (step, spec.breakdown_step == j)
        seen.setdefault(key, []).append(j)
    return [(js[0], len(js)) for js in seen.values()]


def _overlapping(spec: FunnelSpec) -> bool:
    """Do two different step definitions share an event name (so one event may fit both)?"""
    names = [spec.steps[j].event for j, _ in _groups(spec)]
    return len(names) != len(set(names))


def unordered_best(con: duckdb.DuckDBPyConnection, spec: FunnelSpec, names: dict[str, str]) -> None:
    """`best` for unordered funnels: each step event anchors a window of distinct steps.

    Step definitions that can match the same event go through the exact (slower) path;
    distinct step names are walked in numpy (`walk.walk_unordered`, ADR 0044).
    """
    if walkable(spec, "unordered"):
        _unordered_walked(con, spec, names)
    elif _overlapping(spec):
        _unordered_matching(con, spec, names)
    else:
        _unordered_distinct(con, spec, names)


def _unordered_walked(
    con: duckdb.DuckDBPyConnection, spec: FunnelSpec, names: dict[str, str]
) -> None:
    walked = names["cp"]
    walk_unordered(con, spec, names["ev"], walked)
    excluded, xparams = _excluded(spec, "ta")
    try:
        con.execute(
            f"CREATE TEMP TABLE {names['att']} AS SELECT *, {excluded} AS excluded FROM {walked}",
            xparams,
        )
    finally:
        con.unregister(walked)
    con.execute(best_select(spec, names["att"], names["best"], "ta"))


def _unordered_matching(
    con: duckdb.DuckDBPyConnection, spec: FunnelSpec, names: dict[str, str]
) -> None:
    """Unordered with overlapping step definitions: steps are matched to distinct events.

    Every anchor is paired with the events of its window. How many steps the events up to
    time T can fill (the size of a largest matching of steps to events) is, by Hall's
    theorem, the minimum over step subsets S of n - |S| + (events matching some step of
    S); it is computed as running counts per subset. The k-th step is reached at the
    first T where that number reaches k (greedy is optimal for this kind of matching).
    """
    n, ev = spec.n, names["ev"]
    sig = " + ".join(f"(CASE WHEN m{j} THEN {1 << j} ELSE 0 END)" for j in range(n))
    nx = "".join(f", a.nx{i} AS nx{i}_0" for i in range(len(spec.exclusions)))
    keys = "unit_id, bucket, ta" + "".join(f", nx{i}_0" for i in range(len(spec.exclusions)))
    bounds = [
        f"{n - bin(mask).count('1')} + sum(CASE WHEN sig & {mask} <> 0 THEN 1 ELSE 0 END) OVER upto"
        for mask in range(1, 1 << n)
    ]
    times = ", ".join(f"min(t) FILTER (WHERE matched >= {k + 1}) AS t{k}" for k in range(n))
    excluded, xparams = _excluded(spec, "ta")
    con.execute(
        f"""CREATE TEMP TABLE {names["att"]} AS
        WITH anchors AS (SELECT DISTINCT unit_id, bucket, t AS ta{"".join(f", nx{i}" for i in range(len(spec.exclusions)))} FROM {ev}),
        pairs AS (
            SELECT a.unit_id, a.bucket, a.ta{nx}, e.t, {sig.replace("m", "e.m")} AS sig
            FROM anchors AS a JOIN {ev} AS e
                ON e.unit_id = a.unit_id AND e.bucket = a.bucket AND e.t >= a.ta AND e.t <= a.ta + ?
        ),
        counted AS (
            SELECT *, least({n}, {", ".join(bounds)}) AS matched FROM pairs
            WINDOW upto AS (PARTITION BY unit_id, bucket, ta ORDER BY t
                RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ),
        scored AS (SELECT {keys}, max(matched) AS reached, {times} FROM counted GROUP BY {keys})
        SELECT *, {excluded} AS excluded FROM scored""",
        [spec.window_us, *xparams],
    )
    con.execute(best_select(spec, names["att"], names["best"], "ta"))


def _unordered_distinct(
    con: duckdb.DuckDBPyConnection, spec: FunnelSpec, names: dict[str, str]
) -> None:
    """Unordered where no event can fit two different step definitions.

    A step definition used once takes its first matching event at or after the anchor
    from one windowed `min` (one sort for all of them); one used r times (steps
    [a, a, b]) takes its first r events from an ASOF join plus `lead()`.
    """
    ev, groups = names["ev"], _groups(spec)
    nx = "".join(f", nx{i} AS nx{i}_0" for i in range(len(spec.exclusions)))
    firsts = "".join(
        f", min(CASE WHEN m{j} THEN t END) OVER ahead AS f{g}"
        for g, (j, mult) in enumerate(groups)
        if mult == 1
    )
    ctes = [
        f"anchors AS (SELECT unit_id, bucket, t AS ta{nx}{firsts} FROM {ev} WINDOW ahead AS ("
        "PARTITION BY unit_id, bucket ORDER BY t RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING))"
    ]
    joins, found = [], []
    for g, (j, mult) in enumerate(groups):
        if mult == 1:
            found.append(f"a.f{g}")
            continue
        leads = "".join(f", lead(t, {r}) OVER w AS l{r}" for r in range(1, mult))
        ctes.append(
            f"g{g} AS (SELECT * EXCLUDE (prev_t) FROM ("
            f"SELECT unit_id, bucket, t{leads}, lag(t) OVER w AS prev_t FROM {ev} WHERE m{j} "
            f"WINDOW w AS (PARTITION BY unit_id, bucket ORDER BY t)) "
            f"WHERE prev_t IS DISTINCT FROM t)"
        )
        joins.append(
            f"ASOF LEFT JOIN g{g} ON a.unit_id = g{g}.unit_id AND a.bucket = g{g}.bucket "
            f"AND a.ta <= g{g}.t"
        )
        found += [f"g{g}.t"] + [f"g{g}.l{r}" for r in range(1, mult)]
    times = ", ".join(f"ts[{k + 1}] AS t{k}" for k in range(spec.n))
    excluded, xparams = _excluded(spec, "ta")
    con.execute(
        f"""CREATE TEMP TABLE {names["att"]} AS
        WITH {", ".join(ctes)},
        listed AS (
            SELECT a.*, list_sort(list_filter([{", ".join(found)}],
                lambda x: x IS NOT NULL AND x <= a.ta + ?)) AS ts
            FROM anchors AS a {" ".join(joins)}
        ),
        scored AS (SELECT *, len(ts) AS reached, {times} FROM listed)
        SELECT *, {excluded} AS excluded FROM scored""",
        [spec.window_us, *xparams],
    )
    con.execute(best_select(spec, names["att"], names["best"], "ta"))
