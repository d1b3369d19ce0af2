"""Time `cjm generate` at a given size: python bench/bench_synthetic.py [customers] [out_dir].

Prints the wall and CPU time (all threads), rows written and valid events; the target is
1M customers (about 10M events) in under 2 minutes on 2 cores. On a shared, loaded machine
the CPU time is the fairer number: wall time there mostly measures the other processes.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from cjm_analytics.synthetic import generate


def main() -> None:
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    out = (
        Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="cjm-synthetic-"))
    )
    began, cpu_began = time.perf_counter(), time.process_time()
    summary = generate(out, customers=customers, seed=7)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    rows = sum(summary.row_counts.values())
    print(
        f"customers={customers:,} rows={rows:,} valid_events={summary.event_count:,} "
        f"events_per_customer={summary.event_count / customers:.2f} seconds={seconds:.1f} "
        f"cpu_seconds={cpu_seconds:.1f} out={out}"
    )


if __name__ == "__main__":
    main()
