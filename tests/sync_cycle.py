"""One full sync without Dagster, for end-to-end tests: ingest B2C and Salesforce from a sandbox, `dbt build`
(models, snapshot, data tests), push Salesforce then B2C."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ingestion.pipeline import run_b2c, run_salesforce
from reverse_etl.mapping import mapping_for
from reverse_etl.runner import SyncResult, push_b2c, push_salesforce
from settings import load_settings
from tests.dbt.dbt_cli import run_dbt


def sync_cycle(env: Mapping[str, str], warehouse: Path, run_id: str,
               dbt_vars: Mapping[str, Any] | None = None) -> tuple[SyncResult, SyncResult]:
    settings = load_settings(env)
    graph, salesforce = settings.graph, settings.salesforce
    run_b2c(graph, str(warehouse))
    run_salesforce(salesforce, str(warehouse))
    args = ["build", "--exclude", "resource_type:unit_test"]
    if dbt_vars:
        args += ["--vars", json.dumps(dict(dbt_vars))]
    build = run_dbt(args, warehouse.parent / "dbt_target", {"WAREHOUSE_PATH": str(warehouse)})
    assert build.returncode == 0, build.failures() or build.output[-3000:]
    mapping = mapping_for(settings.field_mapping, graph.client_id)
    return (push_salesforce(warehouse, salesforce, mapping, run_id),
            push_b2c(warehouse, graph, mapping, run_id))
