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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5, help="publications timed in a row (median reported)")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "data" / "bench")
    args = parser.parse_args(argv)

    tables, _, _ = dataset(args.size, args.seed, args.cache_dir)
    with tempfile.TemporaryDirectory(prefix="idlink-bench-publish-") as tmp:
        warehouse = Path(tmp) / "warehouse.duckdb"
        with duckdb.connect(str(warehouse)) as con:
            load_raw_tables(con, tables)
        del tables
        log("dbt build of the seed, models, snapshot and published views")
        started = time.perf_counter()
        code, _, _ = run_dbt(["build", "--exclude", "resource_type:test", "resource_type:unit_test"], warehouse,
                             Path(tmp) / "target")
        build_s = time.perf_counter() - started
        if code != 0:
            log("dbt build failed")
            return 1
        targets = {ANALYST: Path(tmp) / "analyst.duckdb", COMPLIANCE: Path(tmp) / "compliance.duckdb"}
        timings, per_role = [], []
        for attempt in range(args.repeat):
            started = time.perf_counter()
            publications = publish_files(warehouse, targets, f"bench-{attempt}", "bench-salt")
            timings.append(time.perf_counter() - started)
            per_role.append({p.role: p.seconds for p in publications})
            log(f"publication {attempt + 1}: {timings[-1]:.2f} s {per_role[-1]}")
        rows = publications[0].tables
        size_mb = targets[ANALYST].stat().st_size / 1e6
        log(f"analyst database: {sum(rows.values())} rows in {len(rows)} tables, {size_mb:.0f} MB")
    print(json.dumps({
        "size": args.size, "publish_seconds": round(statistics.median(timings), 3),
        "publish_seconds_min": round(min(timings), 3), "publish_seconds_max": round(max(timings), 3),
        "analyst_seconds": round(statistics.median(r["analyst"] for r in per_role), 3),
        "compliance_seconds": round(statistics.median(r["compliance"] for r in per_role), 3),
        "analyst_rows": sum(rows.values()), "analyst_mb": round(size_mb, 1),
        "build_process_seconds": round(build_s, 1), "load_average": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
