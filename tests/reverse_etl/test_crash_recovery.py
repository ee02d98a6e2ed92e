"""A push killed mid-run (SIGKILL, no cleanup) and run again creates no duplicate and loses no row."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from reverse_etl.runner import push_salesforce
from tests.reverse_etl.scenario import build_world

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSERT_ROUTE = "PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}"


@pytest.mark.slow
def test_a_push_killed_mid_run_and_rerun_creates_each_contact_exactly_once(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=600, links=0, latency_ms=150)
    env = {**os.environ, **world.sandbox.env, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "reverse_etl", "push", "salesforce", "--warehouse", str(world.warehouse),
         "--run-id", "killed", "--max-workers", "1"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while world.sandbox.stats()["requests"].get(UPSERT_ROUTE, 0) < 2:
            assert child.poll() is None, child.stderr.read().decode(errors="replace")
            assert time.monotonic() < deadline, "the push never reached Salesforce"
            time.sleep(0.02)
    finally:
        child.kill()  # SIGKILL: no chance to record outcomes
        child.wait(timeout=10)

    created_before_rerun = len(world.contacts())
    assert 0 < created_before_rerun < 600
    with duckdb.connect(str(world.warehouse)) as con:
        # intent was written before the requests: nothing the killed run touched is forgotten
        accepted = con.execute("select count(*) from reverse_etl.sync_state").fetchall()[0][0]
        pending = con.execute("select count(*) from reverse_etl.pending").fetchall()[0][0]
    assert pending > 0 and accepted + pending >= created_before_rerun

    result = push_salesforce(world.warehouse, world.salesforce, world.mapping, "rerun")
    assert (result.failed, result.pending_after, result.dead_letters_after) == (0, 0, 0)
    contacts = world.contacts()
    owners = Counter(c["External_User_Id__c"] for c in contacts)
    assert len(contacts) == 600
    assert set(owners) == set(world.creates) and set(owners.values()) == {1}
