"""Command line, with settings from the environment; each command prints one JSON line (keys and counts only).

``python -m reverse_etl push salesforce|b2c [--dry-run]``
    push the marts to one system.
``python -m reverse_etl replay (--all | [--system S] [--error-code C] [--key K ...])``
    hand dead letters back to the next push (every filter given must match), audited in ``sync_log``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import uuid
from pathlib import Path

import orjson

from reverse_etl.mapping import mapping_for
from reverse_etl.runner import DEFAULT_MAX_WORKERS, push_b2c, push_salesforce
from reverse_etl.salesforce_writer import DEFAULT_BULK_THRESHOLD, ValidationPolicy
from reverse_etl.state import ACTOR_COMMAND, DEFAULT_MAX_ATTEMPTS, replay_dead_letters
from settings import SettingsError, load_settings
from warehouse import Warehouse, push_scope


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reverse_etl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    push = sub.add_parser("push", help="push the marts to one system")
    push.add_argument("system", choices=("salesforce", "b2c"))
    push.add_argument("--warehouse", type=Path, default=None,
                      help="a DuckDB file (default: WAREHOUSE_URL, else WAREHOUSE_PATH)")
    push.add_argument("--run-id", default=None)
    push.add_argument("--dry-run", action="store_true", help="compute and log what would be sent; no writes")
    push.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS)
    push.add_argument("--max-workers", type=int, default=DEFAULT_MAX_WORKERS)
    push.add_argument("--bulk-threshold", type=int, default=DEFAULT_BULK_THRESHOLD)
    push.add_argument("--validation-policy", choices=[p.value for p in ValidationPolicy],
                      default=ValidationPolicy.DROP_FIELD.value,
                      help="a new contact refused for a field value: create it without the field, or dead-letter it")
    replay = sub.add_parser("replay", help="hand dead letters back to the next push (audited in sync_log)")
    replay.add_argument("--warehouse", type=Path, default=None,
                        help="a DuckDB file (default: WAREHOUSE_URL, else WAREHOUSE_PATH)")
    replay.add_argument("--run-id", default=None, help="sync_log run_id of the replay rows")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--system", help="only dead letters of this system (salesforce, b2c, akamai)")
    replay.add_argument("--error-code", help="only dead letters with this error code, e.g. INVALID_EMAIL_ADDRESS")
    replay.add_argument("--key", action="append", default=[], help="a record_key (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    try:
        settings = load_settings()
    except SettingsError as exc:
        parser.exit(2, f"python -m reverse_etl: {exc}\n")
    warehouse = Warehouse.of(args.warehouse) if args.warehouse else Warehouse.from_settings(settings)
    if args.command == "replay":
        return _replay(args, warehouse)
    run_id = args.run_id or f"cli-{uuid.uuid4()}"
    common = {"dry_run": args.dry_run, "max_attempts": args.max_attempts, "max_workers": args.max_workers,
              "actor": ACTOR_COMMAND}
    if args.system == "salesforce":
        if settings.salesforce is None:
            parser.exit(2, "python -m reverse_etl: Salesforce is not configured (SALESFORCE_CLIENT_ID, "
                           "SALESFORCE_CLIENT_SECRET)\n")
        with warehouse.exclusive(push_scope("salesforce")):
            result = push_salesforce(warehouse, settings.salesforce, mapping_for(settings.field_mapping),
                                     run_id, bulk_threshold=args.bulk_threshold,
                                     validation_policy=ValidationPolicy(args.validation_policy), **common)
    else:
        if settings.graph is None:
            parser.exit(2, "python -m reverse_etl: B2C is not configured (B2C_TENANT_ID, B2C_CLIENT_ID, "
                           "B2C_CLIENT_SECRET)\n")
        with warehouse.exclusive(push_scope("b2c")):
            result = push_b2c(warehouse, settings.graph, mapping_for(settings.field_mapping), run_id, **common)
    sys.stdout.write(orjson.dumps(result.as_dict()).decode() + "\n")
    return 0


def _replay(args: argparse.Namespace, warehouse: Warehouse) -> int:
    if not (args.all or args.system or args.error_code or args.key):
        sys.stderr.write("replay: name what to replay (--system, --error-code, --key) or pass --all\n")
        return 2
    run_id = args.run_id or f"replay-{uuid.uuid4()}"
    with warehouse.connect() as con:
        counts = replay_dead_letters(con, run_id, system=args.system, error_code=args.error_code, keys=args.key)
    sys.stdout.write(orjson.dumps({"run_id": run_id, "replayed": sum(counts.values()), "by_system": counts}).decode()
                     + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
