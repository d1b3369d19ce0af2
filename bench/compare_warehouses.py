"""Are two warehouse files the same night? Per table: row count and an order-independent
fingerprint of the rows (floating point rounded to 9 significant digits, since parallel sums
may differ in the last bits). Prints the tables that differ; exit status 1 when any does.

    .venv/bin/python bench/compare_warehouses.py A.duckdb B.duckdb [--skip runs ...]

Used to prove a speed-up or the incremental night changes no result: build the same night
before and after (or incrementally and as a full rebuild) and compare.
"""

from __future__ import annotations

import argparse
import sys

import duckdb

#: Tables that legitimately differ between two builds of the same night (run ids, times).
DEFAULT_SKIP = ("runs", "stage_history", "segment_history", "identity_merges", "build_info")
#: Columns that name the run or the wall-clock moment a row was written: they differ between
#: two builds of the same night by design.
RUN_COLUMNS = ("run_id", "previous_run_id", "loaded_at", "rejected_at", "merged_at", "future_after")


def _fingerprint_sql(con: duckdb.DuckDBPyConnection, db: str, table: str) -> str:
    columns = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = ? AND table_name = ? ORDER BY column_index",
        [db, table],
    ).fetchall()
    parts = []
    for name, data_type in columns:
        if name in RUN_COLUMNS:
            continue
        quoted = f'"{name}"'
        if data_type in ("DOUBLE", "FLOAT", "REAL") or data_type.startswith("DECIMAL"):
            parts.append(
                f"CASE WHEN {quoted} IS NULL OR isnan({quoted}) OR isinf({quoted}) THEN {quoted}::VARCHAR "
                f"ELSE printf('%.9g', {quoted}) END"
            )
        else:
            parts.append(f"{quoted}::VARCHAR")
    row = " || '\x1f' || ".join(f"coalesce({p}, '\x00')" for p in parts) or "''"
    return f'SELECT count(*), sum(hash({row})::HUGEINT) FROM {db}."{table}"'


def compare(a: str, b: str, skip: tuple[str, ...] = DEFAULT_SKIP) -> list[str]:
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    tables = {}
    for db in ("a", "b"):
        tables[db] = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [db]
            ).fetchall()
        }
    problems = [f"only in {db}: {sorted(tables[db] - tables[other])}"
                for db, other in (("a", "b"), ("b", "a")) if tables[db] - tables[other]]  # fmt: skip
    for table in sorted((tables["a"] & tables["b"]) - set(skip)):
        fa = con.execute(_fingerprint_sql(con, "a", table)).fetchone()
        fb = con.execute(_fingerprint_sql(con, "b", table)).fetchone()
        if fa != fb:
            problems.append(f"{table}: rows {fa[0]} vs {fb[0]}, fingerprint differs")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--skip", nargs="*", default=list(DEFAULT_SKIP))
    args = parser.parse_args()
    problems = compare(args.a, args.b, tuple(args.skip))
    for line in problems:
        print(line)
    print("identical" if not problems else f"{len(problems)} difference(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
