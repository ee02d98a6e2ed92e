"""Command line of the sandbox.

``python -m sandbox serve``    run the HTTPS simulators (Microsoft identity platform + Graph, Salesforce,
                               Akamai Identity Cloud, a SCIM 2.0 directory) seeded from JSONL files and/or
                               synthetic data;
``python -m sandbox generate`` write a synthetic dataset (with ground truth) as JSONL files.
"""

from __future__ import annotations

import argparse
import fcntl
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from sandbox import synthetic
from sandbox.context import SandboxConfig, SandboxContext
from sandbox.seed import (  # SeedFileError is a ValueError; named for readers
    SEED_TARGETS,
    SeedFileError,
    seed_context,
)
from sandbox.server import bind_socket, serve
from sandbox.tls import make_tls_files


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = SandboxConfig()
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTPS API simulators")
    for target in SEED_TARGETS:
        serve.add_argument(target.option, dest=target.system, type=Path, help=target.description)
    serve.add_argument(
        "--size", type=_non_negative_int, help="generate about N records for systems without a file"
    )
    serve.add_argument("--seed", type=int, default=defaults.seed)
    serve.add_argument("--noise-profile", choices=sorted(synthetic.profiles.PROFILES), default=defaults.noise_profile,
                       help="how hard the generated people are to link: default, or messy (more typos, missing "
                            "fields, family mailboxes, same-name strangers, work emails, non-Latin names)")
    serve.add_argument("--dynamics-share", type=_rate, default=defaults.dynamics_share,
                       help="share of synthetic people who also have a Dynamics contact")
    serve.add_argument(
        "--fault-rate", type=_rate, default=0.0, help="share of data requests that fail (0..1)"
    )
    serve.add_argument(
        "--latency-ms", type=_non_negative_float, default=0.0, help="delay added to every call"
    )
    serve.add_argument("--env-file", type=Path, help="write KEY=VALUE lines here once the server listens")
    serve.add_argument(
        "--port", type=_non_negative_int, default=0, help="TCP port on 127.0.0.1 (0 = any free)"
    )
    serve.add_argument("--extensions-app-id", default=defaults.extensions_app_id)
    serve.add_argument(
        "--daily-api-limit", type=_non_negative_int, default=0, help="Salesforce API requests a day"
    )
    serve.add_argument("--state-dir", type=Path, help="where TLS material goes (default: a new temp dir)")
    serve.add_argument("--webhook-url", default="", help="Akamai webhook listener to deliver events to")

    generate = commands.add_parser("generate", help="write a synthetic dataset as JSONL files")
    generate.add_argument("--size", type=_non_negative_int, required=True)
    generate.add_argument("--out", type=Path, required=True)
    generate.add_argument("--seed", type=int, default=defaults.seed)
    generate.add_argument("--extensions-app-id", default=defaults.extensions_app_id)
    generate.add_argument("--noise-profile", choices=sorted(synthetic.profiles.PROFILES), default="default")
    return parser


def _lock_state_dir(state_dir: Path) -> IO[str] | None:
    """Hold an exclusive lock on the state dir for the process lifetime (None if another sandbox holds it):
    a second sandbox would otherwise replace the CA that the first one's clients trust."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = (state_dir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def run_serve(args: argparse.Namespace) -> int:
    config = SandboxConfig(
        seed=args.seed,
        fault_rate=args.fault_rate,
        latency_ms=args.latency_ms,
        extensions_app_id=args.extensions_app_id,
        daily_api_limit=args.daily_api_limit,
        webhook_url=args.webhook_url,
        dynamics_share=args.dynamics_share,
        noise_profile=args.noise_profile,
    )
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="idlink-sandbox-"))
    state_lock = _lock_state_dir(state_dir)
    if state_lock is None:
        print(f"sandbox: state dir {state_dir} is in use by another running sandbox", file=sys.stderr)
        return 2
    tls = make_tls_files(state_dir)
    try:
        sock = bind_socket(args.port)
    except OSError as exc:
        print(f"sandbox: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    config.base_url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    ctx = SandboxContext(config=config)
    started = time.perf_counter()
    try:
        counts = seed_context(
            ctx,
            files={target.system: getattr(args, target.system) for target in SEED_TARGETS},
            size=args.size,
        )
    except (SeedFileError, ValueError, OSError) as exc:
        print(f"sandbox: cannot load seed data: {exc}", file=sys.stderr)
        sock.close()
        return 2
    summary = ", ".join(f"{n} {system}" for system, n in counts.items()) or "no records"
    print(f"sandbox: loaded {summary} in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    try:
        serve(ctx, tls=tls, sock=sock, env_file=args.env_file)
    finally:
        state_lock.close()
    return 0


def run_generate(args: argparse.Namespace) -> int:
    data = synthetic.generate(args.size, seed=args.seed, extensions_app_id=args.extensions_app_id,
                              noise_profile=args.noise_profile)
    paths = synthetic.write_dataset(data, args.out)
    print(
        f"sandbox: wrote {len(data.users)} users, {len(data.contacts)} contacts, "
        f"{len(data.akamai_users)} Akamai users to {args.out}",
        file=sys.stderr,
    )
    for name, path in paths.items():
        print(f"{name}={path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return run_serve(args)
    return run_generate(args)


if __name__ == "__main__":
    raise SystemExit(main())
