"""The Dagster assets around the pushes: metadata (counts only), checks, dry run, dependencies."""
from __future__ import annotations

import dagster as dg

from orchestration.defs.resources import (
    FieldMappingResource,
    GraphResource,
    InboxResource,
    SalesforceResource,
    WarehouseResource,
)
from orchestration.defs.reverse_etl import (
    B2C_KEY,
    SALESFORCE_KEY,
    b2c_contact_ids,
    defs,
    salesforce_contacts,
)
from settings import load_settings
from tests.reverse_etl.marts import contact_row, write_marts
from tests.reverse_etl.scenario import build_world, identity_id, write_calls


def resources(world) -> dict:
    env = world.sandbox.env
    tuning = {"ca_bundle": env["IDLINK_CA_BUNDLE"], "http_timeout_s": float(env["IDLINK_HTTP_TIMEOUT_S"]),
              "retry_max_s": float(env["IDLINK_RETRY_MAX_S"])}
    return {
        "warehouse": WarehouseResource(warehouse_path=str(world.warehouse)),
        "field_mapping": FieldMappingResource(path=str(load_settings({}).field_mapping.path)),
        "inbox": InboxResource(path=str(world.warehouse.parent / "inbox.sqlite3")),
        "salesforce": SalesforceResource(client_id=env["SALESFORCE_CLIENT_ID"],
                                         client_secret=env["SALESFORCE_CLIENT_SECRET"],
                                         login_url=env["SALESFORCE_LOGIN_URL"], **tuning),
        "graph": GraphResource(tenant_id=env["B2C_TENANT_ID"], client_id=env["B2C_CLIENT_ID"],
                               client_secret=env["B2C_CLIENT_SECRET"], authority_host=env["B2C_AUTHORITY_HOST"],
                               graph_base_url=env["GRAPH_BASE_URL"], extensions_app_id=env["B2C_EXTENSIONS_APP_ID"],
                               **tuning),
    }


def run_config(**settings) -> dict:
    return {"ops": {op: {"config": settings} for op in ("reverse_etl__salesforce_contacts",
                                                        "reverse_etl__b2c_contact_ids")}}


def materialization(result: dg.ExecuteInProcessResult, key: dg.AssetKey):
    return next(m for m in result.get_asset_materialization_events() if m.asset_key == key).materialization


def check(result: dg.ExecuteInProcessResult, key: dg.AssetKey, name: str):
    return next(e for e in result.get_asset_check_evaluations() if e.asset_key == key and e.check_name == name)


def test_the_assets_live_in_the_reverse_etl_group_after_the_marts_and_salesforce_before_b2c():
    assert salesforce_contacts.asset_deps[SALESFORCE_KEY] == {dg.AssetKey("contacts_to_create"),
                                                              dg.AssetKey("external_ids_to_push")}
    assert b2c_contact_ids.asset_deps[B2C_KEY] == {dg.AssetKey("external_ids_to_push"), SALESFORCE_KEY}
    assert salesforce_contacts.group_names_by_key[SALESFORCE_KEY] == "reverse_etl"
    assert b2c_contact_ids.group_names_by_key[B2C_KEY] == "reverse_etl"
    assert salesforce_contacts.op.pool == "warehouse" and b2c_contact_ids.op.pool == "warehouse"
    assert {s.name for s in salesforce_contacts.check_specs} == {"no_new_dead_letters", "success_rate"}
    assert {a.key for a in defs.assets} == {SALESFORCE_KEY, B2C_KEY}


def test_a_push_records_counts_as_metadata_and_passes_its_checks(monkeypatch, sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=8, links=3)
    world.sandbox.apply_env(monkeypatch)
    result = dg.materialize([salesforce_contacts, b2c_contact_ids], resources=resources(world))
    assert result.success
    metadata = materialization(result, SALESFORCE_KEY).metadata
    assert {k: metadata[k].value for k in ("attempted", "succeeded", "failed", "skipped", "dead_lettered")} == {
        "attempted": 11, "succeeded": 11, "failed": 0, "skipped": 0, "dead_lettered": 0}
    assert metadata["api_calls"].value == 2
    assert materialization(result, B2C_KEY).metadata["succeeded"].value == 3
    text = repr({k: v.value for k, v in metadata.items()})
    assert "@" not in text and "Family" not in text  # no PII in metadata
    for key in (SALESFORCE_KEY, B2C_KEY):
        assert check(result, key, "no_new_dead_letters").passed
        assert check(result, key, "success_rate").passed


def test_a_dry_run_materializes_what_would_be_sent_without_writing(monkeypatch, sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=4, links=2)
    world.sandbox.apply_env(monkeypatch)
    result = dg.materialize([salesforce_contacts, b2c_contact_ids], resources=resources(world),
                            run_config=run_config(dry_run=True))
    assert result.success
    assert materialization(result, SALESFORCE_KEY).metadata["would_send"].value == 6
    assert materialization(result, B2C_KEY).metadata["would_send"].value == 2
    assert write_calls(world.sandbox.stats()) == 0


def test_new_dead_letters_and_a_low_success_rate_fail_the_checks(monkeypatch, sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=1)
    world.sandbox.apply_env(monkeypatch)
    world.sandbox.configure(duplicate_rule="block")
    write_marts(world.warehouse, contacts=[contact_row(identity_id(50), 50, email="existing0@example.org")])
    result = dg.materialize([salesforce_contacts], resources=resources(world), run_config={
        "ops": {"reverse_etl__salesforce_contacts": {"config": {"max_attempts": 1}}}})
    assert result.success  # a data problem is reported by the checks, not by failing the run
    assert materialization(result, SALESFORCE_KEY).metadata["dead_lettered"].value == 1
    dead_letters = check(result, SALESFORCE_KEY, "no_new_dead_letters")
    assert not dead_letters.passed and dead_letters.severity == dg.AssetCheckSeverity.WARN
    assert not check(result, SALESFORCE_KEY, "success_rate").passed
