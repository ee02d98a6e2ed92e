"""Loads survive a flaky API: throttling, server errors, slow answers and dropped connections."""

from __future__ import annotations

from ingestion.pipeline import run_b2c, run_salesforce
from tests.ingestion.helpers import graph_settings, query, salesforce_settings


def test_with_twenty_percent_faults_everything_still_loads(sandbox_factory, warehouse):
    running = sandbox_factory(size=300, fault_rate=0.2, extra_args=("--seed", "5"))
    running.configure(slow_fault_s=1.5)  # slow faults still outlast the client timeout below
    # small pages: many requests, so the run really meets faults of every kind
    run_b2c(graph_settings(running.env, timeout_s=1.0), warehouse, page_size=25)
    run_salesforce(salesforce_settings(running.env, timeout_s=1.0), warehouse, page_size=200)

    truth = running.state()
    users = {u["id"] for u in truth["b2c"]["users"]}
    contacts = {c["Id"] for c in truth["salesforce"]["Contact"] if not c.get("IsDeleted")}
    assert {r[0] for r in query(warehouse, "select id from raw_b2c.users where not is_deleted")} == users
    assert {
        r[0] for r in query(warehouse, "select id from raw_salesforce.contact where not is_deleted")
    } == contacts
    assert sum(running.stats()["faults"].values()) > 0  # the run really met faults
