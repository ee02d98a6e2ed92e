"""``python -m gateway serve --host 127.0.0.1 --port 8787 [--inbox PATH] [--ssl-certfile F --ssl-keyfile F]``
``python -m gateway fast-lane [--inbox PATH]`` (the worker that links new Akamai identities within seconds)"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import uvicorn

from gateway.app import create_app
from gateway.fast_lane import build_worker
from inbox import Inbox
from settings import Settings, SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description="idlink event gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the webhook listener, the API connector and /healthz")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--inbox", help="inbox file (default: GATEWAY_INBOX_PATH or data/inbox.sqlite3)")
    serve.add_argument("--ssl-certfile", help="serve HTTPS with this certificate chain (PEM)")
    serve.add_argument("--ssl-keyfile", help="private key of --ssl-certfile (PEM)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes; they share the inbox file (SQLite serialises their commits)")
    serve.add_argument("--log-level", default="info")
    lane = sub.add_parser("fast-lane", help="link new Akamai identities to CRM contacts as their webhooks arrive")
    lane.add_argument("--inbox", help="inbox file (default: GATEWAY_INBOX_PATH or data/inbox.sqlite3)")
    lane.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        parser.exit(2, f"python -m gateway: {exc}\n")
    if args.inbox:
        settings = dataclasses.replace(settings, inbox_path=Path(args.inbox).resolve())
    if args.command == "fast-lane":
        return _fast_lane(args, settings)

    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        parser.error("--ssl-certfile and --ssl-keyfile go together")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    Inbox(settings.inbox_path).close()  # fail fast on an unusable inbox path, before listening
    # access_log off: request lines are noise at webhook rates; our own logs carry ids and outcomes only
    options = {"host": args.host, "port": args.port, "ssl_certfile": args.ssl_certfile,
               "ssl_keyfile": args.ssl_keyfile, "log_level": args.log_level, "access_log": False}
    if args.workers > 1:  # worker processes build the app themselves, reading the same environment
        os.environ["GATEWAY_INBOX_PATH"] = str(settings.inbox_path)  # --inbox reaches them this way
        uvicorn.run("gateway.app:app_from_environment", factory=True, workers=args.workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)
    return 0


def _fast_lane(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    inbox = Inbox(settings.inbox_path)
    try:
        worker = build_worker(inbox, settings)
    except ValueError as exc:  # missing settings or an unusable field mapping
        inbox.close()
        print(f"fast lane not started: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger("gateway.fast_lane").info("fast lane following %s", inbox.path)
    try:
        worker.run(stop)
    finally:
        worker.close()
        inbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
