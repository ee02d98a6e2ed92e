"""Personal data lives in the warehouse only: a load leaves no user or contact values in dlt's working files."""

from __future__ import annotations

from pathlib import Path

from ingestion.pipeline import run_b2c, run_salesforce
from tests.ingestion.helpers import graph_settings, salesforce_settings, scalar
from tests.pii_files import files_with


def personal_values(state: dict) -> set[str]:
    """Emails and names of every B2C user and Salesforce contact the sandbox holds (long enough to be telling)."""
    values: set[str] = set()
    for user in state["b2c"]["users"]:
        values.update(i.get("issuerAssignedId") or "" for i in user.get("identities") or [])
        values.update((user.get("surname") or "", user.get("mail") or ""))
    for contact in state["salesforce"]["Contact"]:
        values.update((contact.get("Email") or "", contact.get("LastName") or ""))
    return {v for v in values if len(v) >= 6}


def test_loads_leave_no_personal_data_in_the_pipelines_folder(private_sandbox, warehouse):
    run_b2c(graph_settings(private_sandbox.env), warehouse)
    run_salesforce(salesforce_settings(private_sandbox.env), warehouse)
    assert scalar(warehouse, "select count(*) from raw_b2c.users") > 100
    assert scalar(warehouse, "select count(*) from raw_salesforce.contact") > 100

    values = personal_values(private_sandbox.state())
    assert len(values) > 200
    pipelines_dir = Path(warehouse).parent / "dlt_pipelines"
    assert any(pipelines_dir.rglob("*")), "the pipelines keep their state there"
    assert files_with(values, pipelines_dir) == set()
