"""The field mapping file: selection by customer / environment / client, and validation before any write."""
from __future__ import annotations

import json

import pytest

from reverse_etl.mapping import (
    MappingError,
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
    targets = mapping_for(load_settings({}).field_mapping, "any-client-id")
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
    assert mapping_for(settings, "any-client")["b2c"].fields == {"crmContactId": "CrmContactId"}
