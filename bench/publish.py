"""Publishing benchmark: how long publishing the analyst (and compliance) database takes after a link build.

Builds the linking project over N synthetic identities x N contacts (as bench/linking.py does), then publishes
the role files `--repeat` times in a row, each replacing the last (what every run does), and reports the median.
The target is at most 2 s at 1M on top of the build. Progress goes to stderr; one JSON line is printed last.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.linking import dataset, log, run_dbt
from publishing import ANALYST, COMPLIANCE, publish_files
from tests.dbt.raw_loader import load_raw_tables


def build_warehouse(warehouse: Path, args: argparse.Namespace, target_dir: Path) -> float | None:
    """Loads the dataset and builds the project into ``warehouse``; the build's seconds, None if it failed."""
    tables, _, _ = dataset(args.size, args.seed, args.cache_dir)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        load_raw_tables(con, tables)
    del tables
    log("dbt build of the seed, models, snapshot and published views")
    started = time.perf_counter()
    code, _, _ = run_dbt(["build", "--exclude", "resource_type:test", "resource_type:unit_test"], warehouse,
                         target_dir)
    if code != 0:
        log("dbt build failed")
        warehouse.unlink(missing_ok=True)
        return None
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5, help="publications timed in a row (median reported)")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "data" / "bench")
    parser.add_argument("--warehouse", type=Path,
                        help="keep the built warehouse here and, when it exists, publish from it without building "
                        "again (the build at 1M takes minutes; it must have been built from this size and seed)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="idlink-bench-publish-") as tmp:
        warehouse = args.warehouse or Path(tmp) / "warehouse.duckdb"
        build_s = None
        if warehouse.exists():
            log(f"publishing from the warehouse already built in {warehouse}")
        else:
            build_s = build_warehouse(warehouse, args, Path(tmp) / "target")
            if build_s is None:
                return 1
        targets = {ANALYST: Path(tmp) / "analyst.duckdb", COMPLIANCE: Path(tmp) / "compliance.duckdb"}
        timings, cpu_timings, per_role = [], [], []
        for attempt in range(args.repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            publications = publish_files(warehouse, targets, f"bench-{attempt}", "bench-salt")
            timings.append(time.perf_counter() - started)
            cpu_timings.append(time.process_time() - cpu_started)
            per_role.append({p.role: p.seconds for p in publications})
            log(f"publication {attempt + 1}: {timings[-1]:.2f} s ({cpu_timings[-1]:.2f} CPU-s) {per_role[-1]}")
        rows = publications[0].tables
        size_mb = targets[ANALYST].stat().st_size / 1e6
        log(f"analyst database: {sum(rows.values())} rows in {len(rows)} tables, {size_mb:.0f} MB: "
            + ", ".join(f"{name} {count}" for name, count in sorted(rows.items(), key=lambda item: -item[1])))
    print(json.dumps({
        "size": args.size, "publish_seconds": round(statistics.median(timings), 3),
        "publish_seconds_min": round(min(timings), 3), "publish_seconds_max": round(max(timings), 3),
        # CPU seconds of all threads: on a loaded machine the wall time mostly measures the wait for a core
        "publish_cpu_seconds": round(statistics.median(cpu_timings), 3),
        "analyst_seconds": round(statistics.median(r["analyst"] for r in per_role), 3),
        "compliance_seconds": round(statistics.median(r["compliance"] for r in per_role), 3),
        "analyst_rows": sum(rows.values()), "analyst_mb": round(size_mb, 1),
        "build_process_seconds": None if build_s is None else round(build_s, 1), "load_average": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
