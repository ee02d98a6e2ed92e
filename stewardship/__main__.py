"""Command line for data stewards; each command prints JSON lines (ids, decisions, who and why; no other field).

``python -m stewardship decide link|never_link|unlink --identity PROVIDER:ID --contact CRM:ID --by WHO --reason WHY``
    record a decision on a pair; the next link build honours it over the rules and the match model:
    link   link this identity and contact (first, before any rule; one-to-one: it takes both sides)
    never_link   never link them, nor offer them for review again
    unlink   undo the pair's active link, and never link them again
``python -m stewardship list [--history]``
    the decision in force for every pair (the latest), or every decision ever recorded.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from settings import SettingsError, load_settings
from stewardship.decisions import DECISIONS, Decision, DecisionError, list_decisions, record_decision
from warehouse import DECISIONS as DECISIONS_SCOPE
from warehouse import Warehouse


def _pair_part(value: str) -> tuple[str, str]:
    system, sep, key = value.partition(":")
    if not sep or not system or not key:
        raise argparse.ArgumentTypeError(f"expected SYSTEM:ID (e.g. b2c:1f0c..., salesforce:003...), not {value!r}")
    return system, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stewardship", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    decide = sub.add_parser("decide", help="record a decision on an identity-contact pair")
    decide.add_argument("decision", choices=DECISIONS)
    decide.add_argument("--identity", type=_pair_part, required=True, help="PROVIDER:ID, e.g. b2c:<object id>")
    decide.add_argument("--contact", type=_pair_part, required=True, help="CRM:ID, e.g. salesforce:<contact id>")
    decide.add_argument("--by", required=True, help="who decides")
    decide.add_argument("--reason", required=True, help="why")
    listing = sub.add_parser("list", help="the decisions in force (--history: every decision)")
    listing.add_argument("--history", action="store_true")
    for command in (decide, listing):
        command.add_argument("--warehouse", type=Path, default=None,
                             help="DuckDB file (default: WAREHOUSE_URL's Postgres database, else WAREHOUSE_PATH)")
    args = parser.parse_args(argv)
    try:
        warehouse = Warehouse(args.warehouse) if args.warehouse else Warehouse.from_settings(load_settings())
    except SettingsError as exc:
        parser.exit(2, f"python -m stewardship: {exc}\n")
    try:
        if args.command == "list":
            with warehouse.connect(read_only=True) as con:
                decisions = list_decisions(con, history=args.history)
            for decision in decisions:
                sys.stdout.write(orjson.dumps(decision.as_dict()).decode() + "\n")
            return 0
        # a decision is a write: on DuckDB it waits for the step holding the file
        with warehouse.exclusive(DECISIONS_SCOPE), warehouse.connect() as con:
            recorded = record_decision(con, Decision(*args.identity, *args.contact, args.decision, args.by,
                                                     args.reason))
    except (DecisionError, FileNotFoundError) as exc:
        parser.exit(2, f"python -m stewardship: {exc}\n")
    sys.stdout.write(orjson.dumps(recorded.as_dict()).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
