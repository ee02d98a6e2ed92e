"""The Dynamics writer: contacts created by alternate key through $batch change sets, create-only and
update-only where meant, partial failures judged one by one, throttling honoured, the mapping checked against
the table's metadata before anything is written."""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import duckdb
import pytest

from clients.dataverse import DataverseClient
from reverse_etl.dynamics_writer import DynamicsWriter, push_dynamics
from reverse_etl.mapping import FieldMapping, MappingError, TargetMapping
from reverse_etl.salesforce_writer import CREATE_CONTACT, SET_EXTERNAL_ID
from reverse_etl.state import SyncRecord
from tests.reverse_etl.marts import contact_row, external_id_row, write_marts

MAPPING = {"uuid": "idlink_identityid", "email": "emailaddress1", "givenName": "firstname",
           "familyName": "lastname", "phone": "mobilephone", "city": "address1_city"}


def target(**fields) -> FieldMapping:
    return FieldMapping.for_every_client({"dynamics": TargetMapping(type="dynamics", fields={**MAPPING, **fields})})


def create(identity_id: str, **payload) -> SyncRecord:
    return SyncRecord(key=f"b2c:{identity_id}", operation=CREATE_CONTACT,
                      payload={"idlink_identityid": identity_id, "lastname": f"Family {identity_id}", **payload})


def state_contacts(environment) -> list[dict]:
    return environment.state("dynamics")["dynamics"]["contacts"]


def batch_calls(environment) -> int:
    return environment.stats()["requests"].get("POST /dynamics/api/data/v9.2/$batch", 0)


@pytest.fixture
def writer(settings) -> DynamicsWriter:
    return DynamicsWriter(DataverseClient(settings), batch_size=25, sleep=lambda s: None)


def test_new_contacts_are_upserted_by_alternate_key_in_batches(environment, settings, tmp_path):
    warehouse = str(tmp_path / "w.duckdb")
    write_marts(warehouse, contacts=[contact_row(f"id-{n}", n, crm="dynamics") for n in range(60)])
    environment.reset_stats()
    result = push_dynamics(warehouse, settings, target(), "run-1")
    assert (result.attempted, result.succeeded, result.dead_lettered) == (60, 60, 0)
    assert batch_calls(environment) == 1 and result.api_calls == 1  # 60 change sets in one $batch
    created = {c["idlink_identityid"]: c for c in state_contacts(environment) if (c.get("idlink_identityid") or "")
               .startswith("id-")}
    assert len(created) == 60 and created["id-7"]["emailaddress1"] == "person7@example.org"
    with duckdb.connect(warehouse) as con:  # the contact id comes back with each answer
        assert con.execute("select count(remote_id) from reverse_etl.sync_state").fetchone()[0] == 60

    environment.reset_stats()
    again = push_dynamics(warehouse, settings, target(), "run-2")
    assert (again.skipped, again.api_calls, batch_calls(environment)) == (60, 0, 0)


def test_a_resent_creation_finds_the_contact_it_made_and_overwrites_nothing(environment, writer):
    first = writer.send([create("crash-1", firstname="First")])
    resent = writer.send([create("crash-1", firstname="Changed meanwhile")])
    assert first[0].ok and resent[0].ok  # If-None-Match: * answered 412: it exists, which is what was wanted
    mine = [c for c in state_contacts(environment) if c.get("idlink_identityid") == "crash-1"]
    assert len(mine) == 1 and mine[0]["firstname"] == "First"


def test_an_identity_id_with_quotes_and_slashes_stays_inside_its_key(environment, writer):
    tricky = "o'brien/../contacts(x)?$select=*"
    assert writer.send([create(tricky)])[0].ok
    assert [c["idlink_identityid"] for c in state_contacts(environment)].count(tricky) == 1


def test_one_refused_record_fails_alone_and_the_rest_of_the_batch_is_written(environment, writer):
    outcomes = writer.send([create("ok-1"), create("too-long", lastname="x" * 60), create("ok-2")])
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error_code == "0x80044331" and outcomes[1].permanent


def test_an_update_of_a_deleted_contact_is_given_up_and_never_recreates_it(environment, writer, contacts):
    gone = contacts[0]["contactid"]
    assert writer.client.request("DELETE", f"contacts({gone})").status_code == 204
    outcome = writer.send([SyncRecord(key=f"{gone}:idlink_identityid", operation=SET_EXTERNAL_ID,
                                      payload={"idlink_identityid": "u-1"}, target=gone)])[0]
    assert not outcome.ok and outcome.give_up  # If-Match: * answered 404
    assert all(c["contactid"] != gone for c in state_contacts(environment))


def test_throttled_batches_wait_for_retry_after_and_then_succeed(environment, settings):
    environment.reset_stats()
    environment.configure(dataverse_max_concurrent=1, dataverse_execution_ms=300)
    writer = DynamicsWriter(DataverseClient(dataclasses.replace(settings, max_concurrent=4)), batch_size=5)
    records = [create(f"busy-{n}") for n in range(20)]
    with ThreadPoolExecutor(4) as pool:
        outcomes = [o for batch in pool.map(writer.send, writer.batches(records)) for o in batch]
    assert all(o.ok for o in outcomes)
    # four $batch calls, some of them refused with 429 (one request at a time) and sent again after Retry-After
    assert writer.api_calls == 4 and batch_calls(environment) > 4
    assert len([c for c in state_contacts(environment) if (c.get("idlink_identityid") or "").startswith("busy-")]) == 20


@pytest.mark.parametrize(("fields", "message"), [
    ({"city": "address1_town"}, "does not exist"),
    ({"givenName": "fullname"}, "cannot be written"),
    ({"uuid": "emailaddress1"}, "configured external-id column"),
])
def test_a_mapping_the_table_cannot_take_stops_the_push_before_any_write(environment, settings, tmp_path, fields,
                                                                         message):
    warehouse = str(tmp_path / "w.duckdb")
    write_marts(warehouse, contacts=[contact_row("id-1", 1, crm="dynamics")])
    environment.reset_stats()
    with pytest.raises(MappingError, match=message):
        push_dynamics(warehouse, settings, target(**fields), "run-1")
    assert batch_calls(environment) == 0


def test_external_ids_are_set_on_linked_contacts_by_their_id(environment, settings, tmp_path, contacts):
    warehouse = str(tmp_path / "w.duckdb")
    linked = contacts[5]["contactid"]
    write_marts(warehouse, external_ids=[dict(external_id_row("dynamics", linked, "idlink_identityid", "u-5",
                                                             identity_id="u-5", contact_id=linked), crm="dynamics")])
    result = push_dynamics(warehouse, settings, target(), "run-1")
    assert result.succeeded == 1
    assert next(c for c in state_contacts(environment) if c["contactid"] == linked)["idlink_identityid"] == "u-5"


def test_without_a_dynamics_target_nothing_is_sent(environment, settings, tmp_path):
    warehouse = str(tmp_path / "w.duckdb")
    write_marts(warehouse, contacts=[contact_row("id-1", 1, crm="dynamics")])
    environment.reset_stats()
    assert push_dynamics(warehouse, settings, FieldMapping(), "run-1").attempted == 0
    assert environment.stats()["total_requests"] == 0


def test_every_clients_entry_is_checked_against_the_tables_metadata_before_any_write(environment, settings,
                                                                                      tmp_path):
    warehouse = str(tmp_path / "w.duckdb")
    write_marts(warehouse, contacts=[contact_row("id-1", 1, crm="dynamics", client_id="web-shop")])
    good = TargetMapping(type="dynamics", fields=MAPPING)
    bad = TargetMapping(type="dynamics", fields={**MAPPING, "lastLogin": "idlink_lastseen"}, where="acme > prod > kiosk")
    environment.reset_stats()
    with pytest.raises(MappingError, match=r"acme > prod > kiosk: 'lastLogin' maps to contact.idlink_lastseen"):
        push_dynamics(warehouse, settings, FieldMapping({"web-shop": {"dynamics": good}, "kiosk": {"dynamics": bad}}),
                      "run-1")
    assert batch_calls(environment) == 0


def test_the_seed_attributes_reach_their_mapped_columns(environment, settings, tmp_path):
    warehouse = str(tmp_path / "w.duckdb")
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    write_marts(warehouse, contacts=[contact_row("id-1", 1, crm="dynamics", created_at=when, email_verified=True,
                                                 last_login_at=when, last_updated_at=when)])
    seed = {"created": "idlink_identitycreatedon", "emailVerified": "idlink_emailverified",
            "lastLogin": "idlink_lastlogin", "lastUpdated": "idlink_identityupdatedon"}
    assert push_dynamics(warehouse, settings, target(**seed), "run-1").succeeded == 1
    [contact] = [c for c in state_contacts(environment) if c.get("idlink_identityid") == "id-1"]
    assert contact["idlink_emailverified"] is True
    assert contact["idlink_lastlogin"].startswith("2024-01-02T03:04:05")
    assert contact["idlink_identitycreatedon"].startswith("2024-01-02T03:04:05")
