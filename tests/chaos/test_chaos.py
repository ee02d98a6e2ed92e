"""The chaos suite: full_sync, the gateway and the fast lane against the sandbox with 20% injected faults,
SIGKILLed at random points, fed hostile records and concurrent duplicate sign-ups; after convergence every
invariant of the README's Guarantees holds. The seed is printed; IDLINK_CHAOS_SEED=<seed> replays a schedule."""
from __future__ import annotations

import os
import random

import pytest

from tests.chaos.world import Chaos

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1800)  # 3-4 minutes on an idle 2-core machine, 8.5 at load 17: past the suite's 600 s
def test_after_faults_kills_and_hostile_input_every_invariant_holds(tmp_path, capsys):
    seed = int(os.environ.get("IDLINK_CHAOS_SEED") or random.SystemRandom().randrange(1 << 30))
    print(f"chaos seed {seed} (replay: IDLINK_CHAOS_SEED={seed})")  # in the failure report, under xdist too
    with capsys.disabled():
        print(f"\nchaos seed {seed} (replay: IDLINK_CHAOS_SEED={seed})")
    try:
        report = Chaos(seed, tmp_path).run()
    except AssertionError as exc:  # did not converge
        raise AssertionError(f"seed {seed}: {exc}") from exc
    with capsys.disabled():
        print(f"chaos seed {seed}: checks {dict(report.checks)}; events {dict(report.events)}")
    assert not report.violations, f"seed {seed}: " + "; ".join(report.violations[:20])
    assert report.events["full_sync_killed"] + report.events["fast_lane_killed"] >= 3
    for invariant in ("one_contact_per_identity", "no_contact_without_consent", "linked_both_ways",
                      "acknowledged_webhook_stored", "hostile_webhook_refused", "nothing_else_modified",
                      "no_personal_data_outside_the_warehouse"):
        assert report.checks[invariant] > 0, f"{invariant} was never checked"
