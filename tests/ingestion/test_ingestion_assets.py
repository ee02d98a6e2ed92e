"""The Dagster assets of the B2C and Salesforce loads."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
import pytest

from orchestration.defs.ingestion import (
    B2C_USERS_KEY,
    SALESFORCE_CONTACT_KEY,
    b2c_users,
    salesforce_contacts,
    targeted_run_config,
)
from orchestration.defs.resources import build_resources
from settings import load_settings
from tests.ingestion.helpers import scalar


@pytest.fixture
def resources(private_sandbox, warehouse, monkeypatch):
    private_sandbox.configure(fault_rate=0.0)
    private_sandbox.apply_env(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_PATH", warehouse)
    # the central resource set also binds dbt, which looks for its executable next to the interpreter
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return {
        key: value
        for key, value in build_resources(load_settings()).items()
        if key in ("warehouse", "graph", "salesforce", "dlt", "ingest_tuning")
    }


def test_assets_have_the_contract_keys_group_pool_and_kinds():
    for assets_def, key in ((b2c_users, B2C_USERS_KEY), (salesforce_contacts, SALESFORCE_CONTACT_KEY)):
        spec = next(iter(assets_def.specs))
        assert spec.key == key and spec.group_name == "ingestion"
        assert {"dlt", "duckdb"} < spec.kinds and not list(spec.deps)
        assert assets_def.op.pool == "warehouse"


def test_materialising_loads_both_tables_and_reports_counts_without_pii(
    private_sandbox, resources, warehouse
):
    result = dg.materialize([b2c_users, salesforce_contacts], resources=resources)
    assert result.success
    users = scalar(warehouse, "select count(*) from raw_b2c.users")
    contacts = scalar(warehouse, "select count(*) from raw_salesforce.contact")
    assert users == len(private_sandbox.state("b2c")["b2c"]["users"])
    assert contacts > 0
    metadata = {
        event.asset_key: event.materialization.metadata for event in result.get_asset_materialization_events()
    }
    assert metadata[B2C_USERS_KEY]["rows_total"].value == users
    assert metadata[SALESFORCE_CONTACT_KEY]["rows_total"].value == contacts
    emails = {
        u["identities"][0]["issuerAssignedId"]
        for u in private_sandbox.state("b2c")["b2c"]["users"]
        if u.get("identities")
    }
    shown = repr({k: v for m in metadata.values() for k, v in m.items()})
    assert not any(email in shown for email in emails)


def test_targeted_run_config_reaches_both_loads(private_sandbox, resources, warehouse):
    dg.materialize([b2c_users, salesforce_contacts], resources=resources)
    user_id = private_sandbox.state("b2c")["b2c"]["users"][0]["id"]
    contact_id = private_sandbox.state("salesforce")["salesforce"]["Contact"][0]["Id"]
    private_sandbox.reset_stats()
    result = dg.materialize(
        [b2c_users, salesforce_contacts],
        resources=resources,
        run_config=targeted_run_config([user_id], [contact_id]),
    )
    assert result.success
    stats = private_sandbox.stats()
    assert "GET /v1.0/users" not in stats["records_returned"]
    assert stats["records_returned"].get("salesforce:query") == 1
