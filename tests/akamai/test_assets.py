"""The Dagster assets load raw_akamai.users (all, or just the uuids a sensor names) and push contact ids."""
from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from dagster_dlt import DagsterDltResource

from orchestration.defs import akamai as akamai_assets
from orchestration.defs.resources import (
    AkamaiResource,
    FieldMappingResource,
    GraphResource,
    IngestTuningResource,
    WarehouseResource,
)
from sandbox import akamai as sandbox_akamai
from sandbox.context import SandboxConfig
from settings import load_settings
from tests.akamai.support import make_warehouse


@pytest.fixture
def resources(tenant_url, tmp_path) -> dict:
    return {
        "dlt": DagsterDltResource(),
        "akamai": AkamaiResource(base_url=f"{tenant_url}/akamai", client_id=SandboxConfig.client_id,
                                 client_secret=SandboxConfig.client_secret, retry_max_s=10.0),
        "warehouse": WarehouseResource(warehouse_path=str(tmp_path / "warehouse.duckdb")),
        "graph": GraphResource(),
        "field_mapping": FieldMappingResource(path=str(load_settings({}).field_mapping.path)),
        "ingest_tuning": IngestTuningResource(),
    }


def materialization(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dg.AssetMaterialization:
    [event] = [e.materialization for e in result.get_asset_materialization_events() if e.asset_key == key]
    return event


def loaded_ids(resources: dict) -> set[str]:
    with duckdb.connect(resources["warehouse"].path, read_only=True) as con:
        return {r[0] for r in con.execute("select id from raw_akamai.users").fetchall()}


def test_assets_sit_in_their_groups_and_the_warehouse_pool():
    users, contact_ids = akamai_assets.akamai_users, akamai_assets.akamai_contact_ids
    assert users.group_names_by_key == {dg.AssetKey("raw_akamai_users"): "ingestion"}
    assert contact_ids.group_names_by_key == {dg.AssetKey(["reverse_etl", "akamai_contact_ids"]): "reverse_etl"}
    assert users.op.pool == contact_ids.op.pool == "warehouse"
    upstream = {dep.asset_key for dep in contact_ids.specs_by_key[akamai_assets.CONTACT_IDS_KEY].deps}
    assert dg.AssetKey("external_ids_to_push") in upstream


def test_run_config_fragment_targets_the_load_op():
    assert akamai_assets.akamai_run_config(["b", "a", "b"]) == {
        "ops": {"akamai_users": {"config": {"identity_ids": ["a", "b"]}}}}


@pytest.mark.slow
def test_full_load_then_targeted_load_by_uuid(resources, seeded, ctx):
    result = dg.materialize([akamai_assets.akamai_users], resources=resources)
    assert result.success
    assert loaded_ids(resources) == {e["uuid"] for e in seeded}
    metadata = materialization(result, akamai_assets.USERS_KEY).metadata
    assert (metadata["rows_total"].value, metadata["rows_deleted"].value) == (25, 0)

    scans = ctx.records_by_route["/akamai/entity.find"]
    target = seeded[0]["uuid"]
    sandbox_akamai.tenant(ctx).by_uuid[target]["givenName"] = "Targeted"
    result = dg.materialize([akamai_assets.akamai_users], resources=resources,
                            run_config=akamai_assets.akamai_run_config([target]))
    assert result.success
    assert ctx.records_by_route["/akamai/entity.find"] == scans
    with duckdb.connect(resources["warehouse"].path, read_only=True) as con:
        assert con.execute("select given_name from raw_akamai.users where id = ?", [target]).fetchone() == \
            ("Targeted",)


def test_unconfigured_akamai_loads_nothing_and_says_so(resources):
    resources["akamai"] = AkamaiResource()
    result = dg.materialize([akamai_assets.akamai_users], resources=resources)
    assert result.success
    event = materialization(result, akamai_assets.USERS_KEY)
    assert event.metadata["configured"].value is False


def test_contact_id_push_writes_onto_akamai_users_and_reports_counts(resources, seeded, ctx):
    make_warehouse(resources["warehouse"].path, [("akamai", seeded[0]["uuid"], "CrmContactId", "003000000000001AAA")])
    result = dg.materialize([akamai_assets.akamai_contact_ids], resources=resources)
    assert result.success
    assert sandbox_akamai.tenant(ctx).by_uuid[seeded[0]["uuid"]]["crmContactId"] == "003000000000001AAA"
    event = materialization(result, akamai_assets.CONTACT_IDS_KEY)
    assert (event.metadata["succeeded"].value, event.metadata["attempted"].value) == (1, 1)
    assert all(check.passed for check in result.get_asset_check_evaluations())
