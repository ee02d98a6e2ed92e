"""The Dagster assets around the pushes: metadata (counts only), checks, dry run, dependencies."""
from __future__ import annotations

import logging

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
                                                              dg.AssetKey("external_ids_to_push"),
                                                              dg.AssetKey("contact_fields_to_push")}
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


def _refused_push(sandbox_factory, tmp_path, monkeypatch, instance=None, **config):
    """One contact to create that the CRM refuses for good (a duplicate rule blocks it)."""
    world = build_world(sandbox_factory, tmp_path, creates=0, links=1)
    world.sandbox.apply_env(monkeypatch)
    world.sandbox.configure(duplicate_rule="block")
    write_marts(world.warehouse, contacts=[contact_row(identity_id(50), 50, email="existing0@example.org")])
    result = dg.materialize([salesforce_contacts, b2c_contact_ids], resources=resources(world), instance=instance,
                            raise_on_error=False, run_config={"ops": {
                                "reverse_etl__salesforce_contacts": {"config": {"max_attempts": 1, **config}}}})
    return result


def test_a_record_refused_for_good_warns_without_failing_the_run(monkeypatch, sandbox_factory, tmp_path):
    with dg.instance_for_test() as instance:
        result = _refused_push(sandbox_factory, tmp_path, monkeypatch, instance)
        logged = [(entry.level, entry.user_message) for entry in instance.all_logs(result.run_id)]
    assert result.success  # one refused record is a data problem to review, not a failed pipeline
    assert materialization(result, SALESFORCE_KEY).metadata["dead_lettered"].value == 1
    dead_letters = check(result, SALESFORCE_KEY, "no_new_dead_letters")
    assert not dead_letters.passed and dead_letters.severity == dg.AssetCheckSeverity.WARN
    rate = check(result, SALESFORCE_KEY, "success_rate")
    assert rate.passed and "not judged" in rate.description  # 1 record is too few to judge a rate
    # the run log says what failed with the system's code and the record's key, never a value
    assert any(level == logging.WARNING and "create_contact DUPLICATES_DETECTED" in message
               and identity_id(50) in message for level, message in logged)
    assert any(level == logging.INFO and message.startswith("Salesforce: 1 failed") for level, message in logged)
    assert not any("existing0@example.org" in message for _, message in logged)


def test_a_push_that_mostly_fails_fails_its_run_and_holds_back_the_pushes_after_it(
        monkeypatch, sandbox_factory, tmp_path):
    result = _refused_push(sandbox_factory, tmp_path, monkeypatch, min_attempts_to_judge=1)
    assert not result.success
    assert not check(result, SALESFORCE_KEY, "success_rate").passed
    assert B2C_KEY not in {m.asset_key for m in result.get_asset_materialization_events()}


def test_a_push_with_nothing_to_send_passes_its_rate_check_saying_so(monkeypatch, sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=0)
    world.sandbox.apply_env(monkeypatch)
    result = dg.materialize([salesforce_contacts], resources=resources(world))
    rate = check(result, SALESFORCE_KEY, "success_rate")
    assert result.success and rate.passed and rate.description == "not judged: nothing was sent"
