"""Pushes through the real clients against the API sandbox: convergence, idempotence, limits, dead letters."""
from __future__ import annotations

import json

import duckdb
import pytest

from reverse_etl.mapping import MappingError, load_field_mapping
from reverse_etl.runner import push_b2c, push_salesforce
from tests.reverse_etl.marts import contact_row, external_id_row, write_marts
from tests.reverse_etl.scenario import build_world, identity_id, write_calls


def push_both(world, run_id: str, **kwargs):
    sf = push_salesforce(world.warehouse, world.salesforce, world.mapping, run_id, **kwargs)
    b2c = push_b2c(world.warehouse, world.graph, world.mapping, run_id,
                   **{k: v for k, v in kwargs.items() if k != "bulk_threshold"})
    return sf, b2c


def assert_applied_exactly_once(world) -> None:
    contacts = world.contacts()
    by_external_id: dict[str, list[dict]] = {}
    for contact in contacts:
        if contact.get("External_User_Id__c"):
            by_external_id.setdefault(contact["External_User_Id__c"], []).append(contact)
    assert len(contacts) == world.existing_contacts + len(world.creates)  # no duplicate was created
    for ident in world.creates:
        assert len(by_external_id.get(ident, [])) == 1, "each new identity owns exactly one contact"
    users = world.users()
    attribute = world.graph.extension_attribute("CrmContactId")
    for ident, contact_id in world.links:
        assert [c["Id"] for c in by_external_id[ident]] == [contact_id]
        assert users[ident][attribute] == contact_id


def test_repeated_runs_converge_under_20_percent_faults_with_every_row_applied_once(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=60, links=15, fault_rate=0.2)
    for run in range(4):
        sf, b2c = push_both(world, f"run-{run}")
        if sf.pending_after == 0 and b2c.pending_after == 0:
            break
    assert (sf.pending_after, b2c.pending_after, sf.dead_letters_after, b2c.dead_letters_after) == (0, 0, 0, 0)
    assert sum(world.sandbox.stats()["faults"].values()) > 0
    world.sandbox.configure(fault_rate=0.0)
    assert_applied_exactly_once(world)


def test_a_bulk_job_creates_the_same_contacts_as_collections_would(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=40, links=3)
    sf = push_salesforce(world.warehouse, world.salesforce, world.mapping, "run-1", bulk_threshold=10)
    assert (sf.attempted, sf.succeeded) == (43, 43)
    requests = world.sandbox.stats()["requests"]
    assert requests["POST /services/data/v{version}/jobs/ingest"] == 1
    assert "PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}" not in requests
    push_b2c(world.warehouse, world.graph, world.mapping, "run-1")
    assert_applied_exactly_once(world)


def test_an_unchanged_second_run_makes_no_write_call(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=10, links=5)
    push_both(world, "run-1")
    before = write_calls(world.sandbox.stats())
    sf, b2c = push_both(world, "run-2")
    assert write_calls(world.sandbox.stats()) == before
    assert (sf.attempted, sf.skipped, b2c.attempted, b2c.skipped) == (0, 15, 0, 5)


def test_a_dry_run_reports_what_it_would_send_and_makes_no_write_call(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=10, links=5)
    sf, b2c = push_both(world, "dry", dry_run=True)
    assert (sf.would_send, b2c.would_send, sf.api_calls, b2c.api_calls) == (15, 5, 0, 0)
    assert write_calls(world.sandbox.stats()) == 0
    assert len(world.contacts()) == world.existing_contacts


def test_a_mapping_naming_an_unknown_field_fails_before_any_write(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=5, links=0)
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"default": {"dev": {"*": [{"type": "salesforce", "mapping": {
        "uuid": "External_User_Id__c", "familyName": "LastName", "email": "Primary_Email__c"}}]}}}))
    with pytest.raises(MappingError, match="Primary_Email__c"):
        push_salesforce(world.warehouse, world.salesforce, load_field_mapping(path, "default", "dev"), "run-1")
    assert write_calls(world.sandbox.stats()) == 0


def test_duplicate_rule_rejections_are_dead_lettered_after_three_attempts(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=2)
    world.sandbox.configure(duplicate_rule="block")
    # the second new identity shares its email with an existing contact: the org's duplicate rule refuses it
    write_marts(world.warehouse, contacts=[contact_row(identity_id(90), 90),
                                           contact_row(identity_id(91), 91, email="existing0@example.org")])
    results = [push_salesforce(world.warehouse, world.salesforce, world.mapping, f"run-{i}") for i in range(4)]
    assert [(r.attempted, r.succeeded, r.failed, r.dead_lettered) for r in results] == [
        (2, 1, 1, 0), (1, 0, 1, 0), (1, 0, 0, 1), (0, 0, 0, 0)]
    with duckdb.connect(str(world.warehouse)) as con:
        assert con.execute("select record_key, error_code, attempts from reverse_etl.dead_letters").fetchall() == [
            (f"b2c:{identity_id(91)}", "DUPLICATES_DETECTED", 3)]
        assert con.execute("""select count(*) from reverse_etl.sync_log
                              where record_key = ? and system = 'salesforce'""",
                           [f"b2c:{identity_id(91)}"]).fetchall() == [(3,)]
        logged = " ".join(str(v) for row in con.execute("select * from reverse_etl.sync_log").fetchall() for v in row)
    assert "existing0@example.org" not in logged and "Family9" not in logged


def test_an_identity_that_no_longer_exists_is_dead_lettered_at_once(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=1)
    ghost = identity_id(999)
    write_marts(world.warehouse, external_ids=[
        external_id_row("b2c", ghost, "CrmContactId", "003000000000001AAA", identity_id=ghost,
                        contact_id="003000000000001AAA"),
        external_id_row("b2c", world.links[0][0], "CrmContactId", world.links[0][1],
                        identity_id=world.links[0][0], contact_id=world.links[0][1])])
    result = push_b2c(world.warehouse, world.graph, world.mapping, "run-1")
    assert (result.succeeded, result.dead_lettered, result.pending_after) == (1, 1, 0)


def test_withdrawn_links_clear_the_external_id_on_both_sides(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=2)
    push_both(world, "run-1")
    ident, contact = world.links[0]
    write_marts(world.warehouse, external_ids=[
        external_id_row("salesforce", contact, "External_User_Id__c", None, identity_id=ident, contact_id=contact,
                        reason="withdrawn"),
        external_id_row("b2c", ident, "CrmContactId", None, identity_id=ident, contact_id=contact,
                        reason="withdrawn")])
    sf, b2c = push_both(world, "run-2")
    assert (sf.succeeded, b2c.succeeded) == (1, 1)
    cleared = next(c for c in world.contacts() if c["Id"] == contact)
    assert cleared.get("External_User_Id__c") is None
    assert world.users()[ident].get(world.graph.extension_attribute("CrmContactId")) is None


def test_request_limit_ends_the_run_cleanly_and_the_next_run_resumes(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=450, links=0)
    world.sandbox.configure(daily_api_limit=3)  # describe + two of the three collection calls
    first = push_salesforce(world.warehouse, world.salesforce, world.mapping, "run-1", max_workers=1)
    assert first.limit_reached
    assert first.succeeded == 400 and first.pending_after == 50 and first.failed == 0
    world.sandbox.configure(daily_api_limit=0)
    second = push_salesforce(world.warehouse, world.salesforce, world.mapping, "run-2")
    assert not second.limit_reached
    assert (second.attempted, second.succeeded, second.skipped, second.pending_after) == (50, 50, 400, 0)
    assert len(world.contacts()) == 450
