"""Command line: ``python -m reverse_etl push salesforce|b2c [--dry-run]`` with settings from the environment.

Prints the run's counts as one JSON line (keys and counts only).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from pathlib import Path

import orjson

from clients.settings import GraphSettings, SalesforceSettings
from reverse_etl.mapping import REPO_ROOT, load_mapping, mapping_settings_from_env
from reverse_etl.runner import DEFAULT_MAX_WORKERS, push_b2c, push_salesforce
from reverse_etl.salesforce_writer import DEFAULT_BULK_THRESHOLD
from reverse_etl.state import DEFAULT_MAX_ATTEMPTS


def _warehouse_path() -> Path:
    path = Path(os.environ.get("WAREHOUSE_PATH", "").strip() or "data/warehouse.duckdb")
    return path if path.is_absolute() else REPO_ROOT / path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reverse_etl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    push = sub.add_parser("push", help="push the marts to one system")
    push.add_argument("system", choices=("salesforce", "b2c"))
    push.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default: WAREHOUSE_PATH)")
    push.add_argument("--run-id", default=None)
    push.add_argument("--dry-run", action="store_true", help="compute and log what would be sent; no writes")
    push.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS)
    push.add_argument("--max-workers", type=int, default=DEFAULT_MAX_WORKERS)
    push.add_argument("--bulk-threshold", type=int, default=DEFAULT_BULK_THRESHOLD)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    warehouse = args.warehouse or _warehouse_path()
    run_id = args.run_id or f"cli-{uuid.uuid4()}"
    path, customer, environment = mapping_settings_from_env()
    common = {"dry_run": args.dry_run, "max_attempts": args.max_attempts, "max_workers": args.max_workers}
    if args.system == "salesforce":
        settings = SalesforceSettings.from_env()
        client_id = os.environ.get("B2C_CLIENT_ID", "").strip() or settings.client_id
        result = push_salesforce(warehouse, settings, load_mapping(path, customer, environment, client_id), run_id,
                                 bulk_threshold=args.bulk_threshold, **common)
    else:
        settings = GraphSettings.from_env()
        result = push_b2c(warehouse, settings, load_mapping(path, customer, environment, settings.client_id), run_id,
                          **common)
    sys.stdout.write(orjson.dumps(result.as_dict()).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
