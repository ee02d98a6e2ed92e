"""Command line, with settings from the environment; prints one JSON line (keys and counts only).

``python -m privacy erase --provider b2c|akamai --identity-id ID --requested-by WHO``
    record an erasure request; the next run erases the person (see ``privacy.erasure``). Safe to repeat.
``python -m privacy status``
    erasure requests not applied yet.
"""
from __future__ import annotations

import argparse
import sys

import orjson

from inbox import Inbox
from settings import SettingsError, load_settings

PROVIDERS = ("b2c", "akamai", "scim")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m privacy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    erase = sub.add_parser("erase", help="record that a person is to be erased at the next run")
    erase.add_argument("--provider", required=True, choices=PROVIDERS, help="the identity's provider")
    erase.add_argument("--identity-id", required=True, help="the identity's id at its provider")
    erase.add_argument("--requested-by", required=True,
                       help="who asked (a ticket or operator reference, recorded in the audit; no personal data)")
    sub.add_parser("status", help="erasure requests the next run will apply")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        parser.exit(2, f"python -m privacy: {exc}\n")
    inbox = Inbox(settings.inbox_path)
    try:
        if args.command == "erase":
            new = inbox.request_erasure(args.provider, args.identity_id.strip(), args.requested_by)
            out = {"requested": new, "already_requested": not new, "applied_by": "the next run"}
        else:
            out = {"pending": [{k: r[k] for k in ("provider", "identity_id", "requested_by", "requested_at")}
                               for r in inbox.pending_erasures()]}
    finally:
        inbox.close()
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
