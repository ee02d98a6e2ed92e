"""The Dagster view of the linking project: asset keys, groups, dependencies on the ingestion assets, checks."""
from __future__ import annotations

import dagster as dg

from orchestration.defs.linking import defs, linking_dbt_assets


def test_every_model_seed_and_snapshot_is_a_linking_asset_keyed_by_its_name():
    keys = {spec.key for spec in linking_dbt_assets.specs}
    assert {dg.AssetKey("identity_contact_links"), dg.AssetKey("contacts_to_create"),
            dg.AssetKey("external_ids_to_push"), dg.AssetKey("link_conflicts"),
            dg.AssetKey("crm_duplicate_contacts"), dg.AssetKey("nickname_equivalents"),
            dg.AssetKey("identity_contact_links_snapshot")} <= keys
    assert {spec.group_name for spec in linking_dbt_assets.specs} == {"linking"}


def test_staging_models_depend_on_the_ingestion_assets_keys():
    deps = {spec.key: {d.asset_key for d in spec.deps} for spec in linking_dbt_assets.specs}
    assert dg.AssetKey("raw_b2c_users") in deps[dg.AssetKey("stg_b2c__users")]
    assert dg.AssetKey("raw_akamai_users") in deps[dg.AssetKey("stg_akamai__users")]
    assert dg.AssetKey("raw_salesforce_contact") in deps[dg.AssetKey("stg_salesforce__contacts")]


def test_dbt_data_tests_surface_as_asset_checks_and_the_op_runs_in_the_warehouse_pool():
    checked = {check.asset_key for check in linking_dbt_assets.check_specs}
    assert dg.AssetKey("identity_contact_links") in checked
    assert linking_dbt_assets.op.pool == "warehouse"
    assert {"dbt", "warehouse"} <= linking_dbt_assets.required_resource_keys


def test_module_defs_hold_the_dbt_assets():
    assert linking_dbt_assets in list(defs.assets)
