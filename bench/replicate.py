"""The 100M data: ten disjoint copies of the 10M synthetic company, gzip-compressed.

The generator holds the whole company in memory (11.8 GB of RSS at 10M events, 549 s),
so 100M events cannot come from one `generate` call on a 24 GB machine. Instead every
raw file of `10m-seed7` (base and increment) is written ten times, copy k with every
identifier rewritten by the increment's rules (`bench_ingest.id_rewrites`): event,
record and call ids, cookies, user and contact ids, emails and mobile numbers get a
copy tag, so no two copies share a customer or an event. Copy 0 keeps the original
identifiers. The shared switchboard number stays shared, as in the generator.

Each copy is the same company's behaviour (same timestamps, same journeys) under other
names: the per-customer shape of the data is the generator's, the volume is ten times.
Files are gzip-compressed (level 1): 30 GB of text would not fit beside the warehouse
on the bench machine's disk; the night reads `.jsonl.gz` and `.csv.gz` as plain files.

    .venv/bin/python bench/replicate.py            # 10m-seed7 -> 100m-seed7 (cached)
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_ingest import data_dir, ensure_data, id_rewrites

COPIES = 10


def write_copy(task: tuple[str, str, int]) -> int:
    """Child: one raw file as copy k, gzip-compressed; the bytes written."""
    source, target, k = task
    text = Path(source).read_text(encoding="utf-8")
    if k:
        # mobiles +49 1.. -> +49 2k1..: still 8-15 digits, never an original or an
        # increment (+49 8..) number
        for pattern, replacement in id_rewrites(f"r{k}", f"+49 2{k}1"):
            text = pattern.sub(replacement, text)
    Path(target).write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=1))
    return Path(target).stat().st_size


def replicate(src: Path, dst: Path, copies: int = COPIES, workers: int = 2) -> None:
    """Every raw file of `src/{base,increment}/raw` as `copies` tagged gzip files in `dst`."""
    tasks = []
    for part in ("base", "increment"):
        for path in sorted((src / part / "raw").glob("*/*")):
            out = dst / part / "raw" / path.parent.name
            out.mkdir(parents=True, exist_ok=True)
            for k in range(copies):
                name = f"{path.stem}-r{k}{path.suffix}.gz"
                tasks.append((str(path), str(out / name), k))
    with ProcessPoolExecutor(workers) as pool:
        for done, size in enumerate(pool.map(write_copy, tasks), start=1):
            if done % 20 == 0 or done == len(tasks):
                print(f"{done}/{len(tasks)} files ({size / 2**20:.0f} MB last)", flush=True)


def ensure_100m(copies: int = COPIES) -> dict[str, Any]:
    """The 100m data folder (made from the 10m one when missing); its meta.json."""
    folder = data_dir("100m")
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        return {**json.loads(meta_path.read_text()), "cached": True}
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished earlier attempt
    source_meta = ensure_data("10m")
    start = time.perf_counter()
    replicate(data_dir("10m"), folder, copies)
    seconds = time.perf_counter() - start

    def times(part: dict[str, Any]) -> dict[str, Any]:
        return {
            **part,
            "customers": part["customers"] * copies,
            "valid_event_count": part["valid_event_count"] * copies,
            "row_counts": {k: v * copies for k, v in part["row_counts"].items()},
        }

    meta = {
        "size": "100m",
        "base": times(source_meta["base"]),
        "increment": times(source_meta["increment"]),
        "replicated_from": "10m-seed7",
        "copies": copies,
        "generate_wall_seconds": source_meta["generate_wall_seconds"] + seconds,
        "replicate_wall_seconds": seconds,
        "generate_peak_rss_mb": source_meta["generate_peak_rss_mb"],
        "raw_bytes": sum(p.stat().st_size for p in (folder / "base" / "raw").rglob("*")),
        "generated_at": datetime.now().isoformat(timespec="seconds"),
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return {**meta, "cached": False}


if __name__ == "__main__":
    print(json.dumps(ensure_100m(int(sys.argv[1]) if len(sys.argv) > 1 else COPIES), indent=2))
