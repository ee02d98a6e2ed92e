"""One full sync without Dagster, for end-to-end tests: ingest B2C and the CRMs from a sandbox, `dbt build`
(models, snapshot, data tests), push each CRM then B2C."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ingestion.pipeline import run_b2c, run_dynamics, run_salesforce
from reverse_etl.dynamics_writer import push_dynamics
from reverse_etl.mapping import mapping_for
from reverse_etl.runner import SyncResult, push_b2c, push_salesforce
from settings import load_settings
from tests.dbt.dbt_cli import run_dbt


def sync_cycle(env: Mapping[str, str], warehouse: Path, run_id: str,
               dbt_vars: Mapping[str, Any] | None = None) -> tuple[SyncResult, SyncResult]:
    """Salesforce as the one CRM: (Salesforce push, B2C push)."""
    results = sync_crms(env, warehouse, run_id, ("salesforce",), dbt_vars)
    return results["salesforce"], results["b2c"]


def sync_crms(env: Mapping[str, str], warehouse: Path, run_id: str, crms: Sequence[str],
              dbt_vars: Mapping[str, Any] | None = None) -> dict[str, SyncResult]:
    """A full sync linking in ``crms`` (dbt var ``crms``): each push's result by system."""
    settings = load_settings(env)
    run_b2c(settings.graph, str(warehouse))
    loads = {"salesforce": lambda: run_salesforce(settings.salesforce, str(warehouse)),
             "dynamics": lambda: run_dynamics(settings.dynamics, str(warehouse))}
    for crm in crms:
        loads[crm]()
    args = ["build", "--exclude", "resource_type:unit_test", "--vars",
            json.dumps({"crms": list(crms), **(dbt_vars or {})})]
    build = run_dbt(args, warehouse.parent / "dbt_target", {"WAREHOUSE_PATH": str(warehouse)})
    assert build.returncode == 0, build.failures() or build.output[-3000:]
    mapping = mapping_for(settings.field_mapping)
    pushes = {"salesforce": lambda: push_salesforce(warehouse, settings.salesforce, mapping, run_id),
              "dynamics": lambda: push_dynamics(warehouse, settings.dynamics, mapping, run_id)}
    results = {crm: pushes[crm]() for crm in crms}
    results["b2c"] = push_b2c(warehouse, settings.graph, mapping, run_id)
    return results
