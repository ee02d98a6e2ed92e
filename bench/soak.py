"""Soak: the chaos schedule (tests/chaos/world.py) run again and again for a configurable time, each run with a
new seed: the whole stack against the sandbox with 20% injected faults, SIGKILLed syncs and fast lane, hostile
records and concurrent duplicate sign-ups, then every invariant of the README's Guarantees checked.

    python bench/soak.py --minutes 30 [--size 40] [--rounds 3] [--seed S]

Progress goes to stderr; the last line on stdout is one JSON object: runs, the seeds, how many facts each
invariant checked, the violations (with the seed that replays them: IDLINK_CHAOS_SEED=<seed> in the test, and the
folder of that run, kept with its logs).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.chaos.world import Chaos  # after the repository root is importable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="keep starting runs until this much time passed")
    parser.add_argument("--size", type=int, default=40, help="synthetic people in each run's sandbox")
    parser.add_argument("--rounds", type=int, default=3, help="faulted, killed sync rounds per run")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first run (the next runs follow it)")
    args = parser.parse_args(argv)

    seeds = random.Random(args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30))
    deadline = time.monotonic() + args.minutes * 60
    checks: Counter = Counter()
    events: Counter = Counter()
    violations: list[str] = []
    ran: list[int] = []
    started = time.monotonic()
    while time.monotonic() < deadline:
        seed = seeds.randrange(1 << 30)
        print(f"soak: run {len(ran) + 1}, seed {seed}", file=sys.stderr, flush=True)
        workdir = Path(tempfile.mkdtemp(prefix="idlink-soak-"))
        chaos = Chaos(seed, workdir, size=args.size, rounds=args.rounds)
        ran.append(seed)
        try:
            report = chaos.run()
        except Exception as exc:  # noqa: BLE001 -- not converged or the stack broke: a finding like a violation
            report = chaos.report
            report.violations.append(f"{type(exc).__name__}: {exc}")
        checks.update(report.checks)
        events.update(report.events)
        violations.extend(f"seed {seed}: {v} (logs kept in {workdir})" for v in report.violations)
        if not report.violations:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"runs": len(ran), "seeds": ran, "minutes": round((time.monotonic() - started) / 60, 1),
                      "invariants_checked": dict(sorted(checks.items())), "events": dict(sorted(events.items())),
                      "violations": len(violations), "violation_details": violations[:50]}))
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
