"""The batch push writes each identity through the mapping entry of the client it registered through: which
fields a contact gets, and which events (created, updated, deleted) are sent at all. Against the sandbox."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reverse_etl.mapping import MappingError, load_field_mapping
from reverse_etl.runner import push_salesforce
from tests.reverse_etl.marts import contact_row, external_id_row, write_marts
from tests.reverse_etl.scenario import build_world, identity_id, write_calls

SHOP, APP, KIOSK = "web-shop", "mobile-app", "kiosk"
SEED_FIELDS = {"uuid": "External_User_Id__c", "email": "Email", "givenName": "FirstName", "familyName": "LastName",
               "created": "Identity_Created__c", "emailVerified": "Email_Verified__c", "lastLogin": "Last_Login__c",
               "lastUpdated": "Identity_Updated__c"}
CREATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
LOGIN = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def mapping(tmp_path, clients: dict):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"acme": {"prod": clients}}))
    return load_field_mapping(path, "acme", "prod")


def salesforce(fields=None, **entry):
    return [{"type": "salesforce", "mapping": fields or {"uuid": "External_User_Id__c", "familyName": "LastName"},
             **entry}]


def seeded(n: int, client: str | None, **overrides):
    return contact_row(identity_id(n), n, client_id=client, created_at=CREATED, email_verified=True,
                       last_login_at=LOGIN, last_updated_at=LOGIN, **overrides)


def by_external_id(world) -> dict[str, dict]:
    return {c["External_User_Id__c"]: c for c in world.contacts() if c.get("External_User_Id__c")}


def test_each_client_creates_contacts_with_its_own_fields_and_an_unmapped_client_sends_nothing(
        sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=0)
    write_marts(world.warehouse, contacts=[seeded(1, SHOP), seeded(2, APP), seeded(3, KIOSK), seeded(4, None)])
    result = push_salesforce(world.warehouse, world.salesforce, mapping(tmp_path, {
        SHOP: salesforce(SEED_FIELDS, events=["created"]),
        APP: salesforce({"uuid": "External_User_Id__c", "familyName": "LastName", "email": "Email"}),
        # no "*": an identity of any other client (or of none) is sent nowhere
    }), "run-1")
    assert (result.attempted, result.succeeded) == (2, 2)
    contacts = by_external_id(world)
    assert set(contacts) == {identity_id(1), identity_id(2)}
    shop = contacts[identity_id(1)]
    # every seed attribute lands in the field the client's entry names, timestamps as ISO 8601 UTC
    assert (shop["Email"], shop["FirstName"], shop["LastName"]) == ("person1@example.org", "Given1", "Family1")
    assert shop["Email_Verified__c"] is True
    assert shop["Identity_Created__c"].startswith("2024-01-02T03:04:05")
    assert shop["Last_Login__c"].startswith("2025-03-01T10:00:00")
    assert shop["Identity_Updated__c"].startswith("2025-03-01T10:00:00")
    app = contacts[identity_id(2)]
    assert app["FirstName"] is None and app["Last_Login__c"] is None  # its entry maps no such field


def test_a_client_whose_entry_does_not_send_created_gets_no_contact(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=0)
    write_marts(world.warehouse, contacts=[seeded(1, SHOP), seeded(2, APP)])
    result = push_salesforce(world.warehouse, world.salesforce, mapping(tmp_path, {
        SHOP: salesforce(events=["updated", "deleted"]), "*": salesforce()}), "run-1")
    assert result.attempted == 1 and set(by_external_id(world)) == {identity_id(2)}  # APP falls back to "*"


def test_updated_sends_a_linked_contacts_followed_fields_once_per_value(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=2)
    (shop_identity, shop_contact), (app_identity, app_contact) = world.links
    fields_mapping = mapping(tmp_path, {
        SHOP: salesforce(SEED_FIELDS, events={"created": True, "updated": ["lastLogin", "emailVerified"]}),
        APP: salesforce(SEED_FIELDS, events=["created"])})

    def linked(login: datetime):
        return [{"crm": "salesforce", "contact_id": shop_contact, "identity_provider": "akamai",
                 "identity_id": shop_identity, "client_id": SHOP, "email": "x@example.org", "family_name": "Other",
                 "email_verified": True, "last_login_at": login},
                {"crm": "salesforce", "contact_id": app_contact, "identity_provider": "akamai",
                 "identity_id": app_identity, "client_id": APP, "email_verified": True, "last_login_at": login}]

    write_marts(world.warehouse, contact_fields=linked(LOGIN))
    before = {c["Id"]: c for c in world.contacts()}
    first = push_salesforce(world.warehouse, world.salesforce, fields_mapping, "run-1")
    assert (first.attempted, first.succeeded) == (1, 1)  # APP does not send updated
    contacts = {c["Id"]: c for c in world.contacts()}
    shop = contacts[shop_contact]
    assert shop["Last_Login__c"].startswith("2025-03-01T10:00:00") and shop["Email_Verified__c"] is True
    # fields the entry does not follow stay as the CRM has them
    assert (shop["Email"], shop["LastName"]) == (before[shop_contact]["Email"], before[shop_contact]["LastName"])
    assert contacts[app_contact]["Last_Login__c"] is None

    world.sandbox.reset_stats()
    assert push_salesforce(world.warehouse, world.salesforce, fields_mapping, "run-2").attempted == 0
    assert write_calls(world.sandbox.stats()) == 0  # an unchanged identity causes no write

    write_marts(world.warehouse, contact_fields=linked(datetime(2025, 4, 1, tzinfo=UTC)))
    assert push_salesforce(world.warehouse, world.salesforce, fields_mapping, "run-3").succeeded == 1
    assert {c["Id"]: c for c in world.contacts()}[shop_contact]["Last_Login__c"].startswith("2025-04-01")


@pytest.mark.parametrize("deleted, expected_id, expected_flag", [
    (True, None, False),  # the default: the contact stops carrying the deleted identity's id
    ({"flag": "Identity_Deleted__c"}, "keep", True),  # the contact keeps the id and is flagged
    (False, "keep", False),  # nothing is sent
])
def test_deleted_clears_flags_or_leaves_the_contact_as_the_clients_entry_says(
        sandbox_factory, tmp_path, deleted, expected_id, expected_flag):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=1)
    [(identity, contact)] = world.links
    push_salesforce(world.warehouse, world.salesforce, mapping(tmp_path, {"*": salesforce()}), "run-1")
    assert by_external_id(world)[identity]["Id"] == contact
    row = external_id_row("salesforce", contact, "External_User_Id__c", None, identity_id=identity,
                          contact_id=contact, reason="deleted")
    write_marts(world.warehouse, external_ids=[{**row, "client_id": SHOP}])
    push_salesforce(world.warehouse, world.salesforce, mapping(tmp_path, {
        SHOP: salesforce(events={"created": True, "deleted": deleted})}), "run-2")
    [after] = [c for c in world.contacts() if c["Id"] == contact]
    assert after["External_User_Id__c"] == (identity if expected_id == "keep" else None)
    assert after["Identity_Deleted__c"] is expected_flag


def test_every_clients_entry_is_checked_against_describe_before_any_write(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=3, links=0)
    broken = mapping(tmp_path, {"*": salesforce(),
                                KIOSK: salesforce({"uuid": "External_User_Id__c", "lastLogin": "Last_Seen__c"})})
    # no identity of the kiosk client is in the marts: its entry is still checked, and nothing is written
    with pytest.raises(MappingError, match=r"acme > prod > kiosk: 'lastLogin' maps to Contact.Last_Seen__c"):
        push_salesforce(world.warehouse, world.salesforce, broken, "run-1")
    assert write_calls(world.sandbox.stats()) == 0


def test_a_deleted_flag_that_is_not_a_checkbox_is_refused_before_any_write(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=1, links=0)
    with pytest.raises(MappingError, match="LastName is a string field, not a checkbox"):
        push_salesforce(world.warehouse, world.salesforce, mapping(tmp_path, {
            "*": salesforce(events={"created": True, "deleted": {"flag": "LastName"}})}), "run-1")
    assert write_calls(world.sandbox.stats()) == 0
