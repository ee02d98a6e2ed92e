"""The field mapping file: selection by customer / environment / client, and validation before any write."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reverse_etl.mapping import (
    DeletedAction,
    MappingError,
    contact_fields,
    load_field_mapping,
    load_mapping,
    mapping_for,
    validate_b2c_mapping,
    validate_salesforce_mapping,
)
from settings import load_settings

DESCRIBE = {"name": "Contact", "fields": [
    {"name": "Id", "createable": False, "updateable": False, "externalId": False, "idLookup": True},
    {"name": "LastName", "createable": True, "updateable": True, "externalId": False},
    {"name": "Email", "createable": True, "updateable": True, "externalId": False},
    {"name": "Name", "createable": False, "updateable": False, "externalId": False},
    {"name": "External_User_Id__c", "createable": True, "updateable": True, "externalId": True, "idLookup": True},
]}


def write(tmp_path, document) -> str:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(document))
    return str(path)


def salesforce_entry(**fields):
    return {"type": "salesforce", "instance": "eu", "mapping": {"uuid": "External_User_Id__c", **fields}}


def test_the_shipped_mapping_loads_for_the_default_customer_and_every_client():
    targets = mapping_for(load_settings({}).field_mapping).for_client("any-client-id")
    assert set(targets) == {"salesforce", "dynamics", "b2c", "akamai"}
    assert targets["salesforce"].remote("uuid") == "External_User_Id__c"
    assert targets["dynamics"].remote("uuid") == "idlink_identityid"
    assert targets["b2c"].remote("crmContactId") == "CrmContactId"
    assert targets["akamai"].remote("crmContactId") == "crmContactId"


def test_a_client_specific_entry_wins_over_the_wildcard(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {
        "*": [salesforce_entry(email="Email")],
        "app-1": [salesforce_entry(familyName="LastName")]}}})
    assert dict(load_mapping(path, "acme", "prod", "app-1")["salesforce"].fields) == {
        "uuid": "External_User_Id__c", "familyName": "LastName"}
    assert load_mapping(path, "acme", "prod", "app-2")["salesforce"].remote("email") == "Email"


@pytest.mark.parametrize("customer, environment, expected", [
    ("nobody", "prod", "no customer 'nobody'"),
    ("acme", "staging", "no environment 'staging'"),
])
def test_an_unknown_customer_or_environment_is_named_in_the_error(tmp_path, customer, environment, expected):
    path = write(tmp_path, {"acme": {"prod": {"*": [salesforce_entry()]}}})
    with pytest.raises(MappingError, match=expected):
        load_mapping(path, customer, environment, "app")


def test_an_unknown_logical_name_is_rejected_when_loading(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [salesforce_entry(shoeSize="Shoe_Size__c")]}}})
    with pytest.raises(MappingError, match="shoeSize"):
        load_mapping(path, "acme", "prod", "app")


def test_a_salesforce_target_must_map_the_identity_id(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [{"type": "salesforce", "mapping": {"email": "Email"}}]}}})
    with pytest.raises(MappingError, match="uuid"):
        load_mapping(path, "acme", "prod", "app")


def test_a_missing_or_broken_file_fails_with_its_path(tmp_path):
    with pytest.raises(MappingError, match="does not exist"):
        load_mapping(tmp_path / "absent.json", "a", "b", "c")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(MappingError, match="not valid JSON"):
        load_mapping(broken, "a", "b", "c")


def test_a_field_the_org_does_not_have_fails_naming_the_field(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [salesforce_entry(email="Emial__c")]}}})
    target = load_mapping(path, "acme", "prod", "app")["salesforce"]
    with pytest.raises(MappingError, match=r"Contact\.Emial__c, which does not exist"):
        validate_salesforce_mapping(target, DESCRIBE, "External_User_Id__c")


def test_a_read_only_field_is_rejected(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [salesforce_entry(familyName="Name")]}}})
    with pytest.raises(MappingError, match="read-only"):
        validate_salesforce_mapping(load_mapping(path, "acme", "prod", "x")["salesforce"], DESCRIBE,
                                    "External_User_Id__c")


def test_the_identity_id_must_go_to_the_configured_external_id_field(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [salesforce_entry()]}}})
    with pytest.raises(MappingError, match="configured external-id field is Other__c"):
        validate_salesforce_mapping(load_mapping(path, "acme", "prod", "x")["salesforce"], DESCRIBE, "Other__c")


def test_a_b2c_attribute_must_be_a_configured_custom_attribute(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [{"type": "b2c", "mapping": {"crmContactId": "CrmId"}}]}}})
    target = load_mapping(path, "acme", "prod", "x")["b2c"]
    with pytest.raises(MappingError, match="CrmId"):
        validate_b2c_mapping(target, ("CrmSyncConsent", "CrmContactId"))
    validate_b2c_mapping(target, ("CrmId",))



def test_mapping_location_and_selection_come_from_the_settings(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [{"type": "b2c", "mapping": {"crmContactId": "CrmContactId"}}]}}})
    settings = load_settings({"IDLINK_FIELD_MAPPING": str(path), "IDLINK_CUSTOMER": "acme",
                              "IDLINK_ENVIRONMENT": "prod"}).field_mapping
    assert mapping_for(settings).for_client("any-client")["b2c"].fields == {"crmContactId": "CrmContactId"}


# -- per client, with the events each entry sends ---------------------------------------------------------------

def test_without_events_an_entry_sends_created_and_clears_the_id_on_deleted(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [salesforce_entry(email="Email")]}}})
    events = load_mapping(path, "acme", "prod", "app")["salesforce"].events
    assert (events.created, events.updated, events.deleted) == (True, (), DeletedAction.CLEAR_EXTERNAL_ID)


def test_events_as_a_list_switch_each_event_on_with_every_mapped_field_followed(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [
        {**salesforce_entry(email="Email", lastLogin="Last_Login__c"), "events": ["updated"]}]}}})
    target = load_mapping(path, "acme", "prod", "app")["salesforce"]
    assert (target.events.created, target.events.deleted) == (False, DeletedAction.KEEP)
    assert target.updated_fields() == {"email": "Email", "lastLogin": "Last_Login__c"}  # never the uuid


def test_events_as_an_object_name_the_followed_fields_and_a_deleted_flag(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [
        {**salesforce_entry(email="Email", lastLogin="Last_Login__c"),
         "events": {"created": True, "updated": ["lastLogin"], "deleted": {"flag": "Identity_Deleted__c"}}}]}}})
    events = load_mapping(path, "acme", "prod", "app")["salesforce"].events
    assert (events.created, events.updated) == (True, ("lastLogin",))
    assert (events.deleted, events.deleted_flag) == (DeletedAction.FLAG, "Identity_Deleted__c")


@pytest.mark.parametrize("events, message", [
    (["created", "merged"], r"unknown event\(s\) \['merged'\]"),
    ({"updated": ["phone"]}, r"updated names \['phone'\], which the entry does not map"),
    ({"updated": ["uuid"]}, "never changes"),
    ({"created": "yes"}, "created must be true or false"),
    ({"deleted": {"flag": ""}}, "deleted must be true, false"),
])
def test_a_malformed_events_entry_is_refused_naming_its_place(tmp_path, events, message):
    path = write(tmp_path, {"acme": {"prod": {"app-1": [{**salesforce_entry(email="Email"), "events": events}]}}})
    with pytest.raises(MappingError, match=r"acme > prod > app-1\[0\]\.events"):
        load_mapping(path, "acme", "prod", "app-1")
    with pytest.raises(MappingError, match=message):
        load_mapping(path, "acme", "prod", "app-1")


def test_events_belong_to_crm_targets_only(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"*": [
        {"type": "b2c", "mapping": {"crmContactId": "CrmContactId"}, "events": ["created"]}]}}})
    with pytest.raises(MappingError, match="events are sent to a CRM"):
        load_mapping(path, "acme", "prod", "app")


def test_the_seed_attributes_can_all_be_mapped_and_reach_the_wire_in_iso_8601(tmp_path):
    seed = {"uuid": "External_User_Id__c", "email": "Email", "givenName": "FirstName", "familyName": "LastName",
            "created": "Created__c", "emailVerified": "Email_Verified__c", "lastLogin": "Last_Login__c",
            "lastUpdated": "Updated__c"}
    path = write(tmp_path, {"acme": {"prod": {"*": [{"type": "salesforce", "mapping": seed}]}}})
    target = load_mapping(path, "acme", "prod", "app")["salesforce"]
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    fields = contact_fields(target, {"identity_id": "u1", "email": "a@example.org", "given_name": "Ann",
                                     "family_name": "Lee", "created_at": when, "email_verified": True,
                                     "last_login_at": when, "last_updated_at": None})
    assert fields == {"External_User_Id__c": "u1", "Email": "a@example.org", "FirstName": "Ann", "LastName": "Lee",
                      "Created__c": "2024-01-02T03:04:05Z", "Email_Verified__c": True,
                      "Last_Login__c": "2024-01-02T03:04:05Z", "Updated__c": None}


def test_a_client_without_its_own_entry_uses_the_wildcard_and_without_one_has_none(tmp_path):
    path = write(tmp_path, {"acme": {"prod": {"app-1": [salesforce_entry()]}}})
    mapping = load_field_mapping(path, "acme", "prod")
    assert mapping.target("salesforce", "app-1") is not None
    assert mapping.target("salesforce", "app-2") is None and mapping.target("salesforce", None) is None
    assert mapping.for_client("app-2") == {}
