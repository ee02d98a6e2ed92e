"""sObject REST for Contact: describe, CRUD, upsert by external id, validation, timestamps and change events."""
from __future__ import annotations

import pytest

from sandbox import salesforce
from sandbox.salesforce.harness import InProcessSalesforce
from sandbox.salesforce.ids import to_18

EXT = "External_User_Id__c"


@pytest.fixture
def sf():
    harness = InProcessSalesforce([
        {"Id": "0035g00000AbCdEAAV", "LastName": "Seed", "Email": "seed@example.com", EXT: "ext-seed"},
        # legacy rows sharing one external id (loaded before the field was unique)
        {"LastName": "Twin", EXT: "ext-twin"},
        {"LastName": "Twin", EXT: "EXT-TWIN"},
    ])
    yield harness
    harness.close()


def created_id(response) -> str:
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True and body["errors"] == []
    return body["id"]


def error_codes(response) -> list[str]:
    return [e["errorCode"] for e in response.json()]


def test_load_contacts_fills_valid_ids_and_canonical_timestamps():
    harness = InProcessSalesforce([{"LastName": "A", "CreatedDate": "2024-03-01T10:00:00Z"}, {"LastName": "B"}])
    try:
        records = list(harness.contacts.values())
        assert all(to_18(r["Id"]) == r["Id"] and r["Id"].startswith("003") for r in records)
        assert records[0]["CreatedDate"] == "2024-03-01T10:00:00.000+0000"
        assert records[0]["SystemModstamp"] == "2024-03-01T10:00:00.000+0000"  # inherits when missing
        assert records[1]["IsDeleted"] is False and records[1]["Name"] == "B"
    finally:
        harness.close()


def test_load_contacts_rejects_malformed_ids_without_echoing_the_record():
    with pytest.raises(ValueError, match="malformed Id"):
        InProcessSalesforce([{"Id": "not-an-id", "LastName": "Secret", "Email": "secret@example.com"}])


def test_env_points_clients_at_the_sandbox():
    harness = InProcessSalesforce()
    try:
        assert salesforce.env(harness.ctx) == {
            "SALESFORCE_LOGIN_URL": "https://testserver",
            "SALESFORCE_CLIENT_ID": harness.ctx.config.client_id,
            "SALESFORCE_CLIENT_SECRET": harness.ctx.config.client_secret,
            "SALESFORCE_API_VERSION": "62.0",
            "SALESFORCE_EXTERNAL_ID_FIELD": EXT,
        }
    finally:
        harness.close()


def test_describe_marks_the_external_id_field_unique_and_case_insensitive(sf):
    described = sf.get("sobjects/Contact/describe").json()
    assert described["urls"]["rowTemplate"] == "/services/data/v62.0/sobjects/Contact/{ID}"
    fields = {f["name"]: f for f in described["fields"]}
    ext = fields[EXT]
    assert (ext["type"], ext["length"], ext["externalId"], ext["unique"], ext["caseSensitive"], ext["idLookup"]) == (
        "string", 255, True, True, False, True)
    assert fields["LastName"]["nillable"] is False
    assert fields["SystemModstamp"]["createable"] is False and fields["SystemModstamp"]["updateable"] is False
    assert fields["Email"]["type"] == "email"


def test_create_then_get_returns_the_stored_contact(sf):
    record_id = created_id(sf.post("sobjects/Contact", json={"LastName": "New", "Email": "new@example.com"}))
    body = sf.get(f"sobjects/Contact/{record_id}").json()
    assert body["attributes"] == {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{record_id}"}
    assert (body["LastName"], body["Email"], body["IsDeleted"]) == ("New", "new@example.com", False)
    assert body["CreatedDate"] == body["LastModifiedDate"] == body["SystemModstamp"]
    assert sf.get(f"sobjects/Contact/{record_id}", params={"fields": "Email"}).json() == {
        "attributes": body["attributes"], "Email": "new@example.com"}


def test_fifteen_character_ids_address_the_same_record(sf):
    assert sf.get("sobjects/Contact/0035g00000AbCdE").json()["LastName"] == "Seed"


def test_update_changes_fields_and_moves_the_modstamp_forward(sf):
    before = sf.get("sobjects/Contact/0035g00000AbCdEAAV").json()
    assert sf.patch("sobjects/Contact/0035g00000AbCdEAAV", json={"FirstName": "Now"}).status_code == 204
    after = sf.get("sobjects/Contact/0035g00000AbCdEAAV").json()
    assert after["FirstName"] == "Now" and after["Name"] == "Now Seed"
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert after["LastModifiedDate"] == after["SystemModstamp"]
    assert after["CreatedDate"] == before["CreatedDate"]


def test_modstamps_strictly_increase_even_within_one_millisecond(sf):
    ids = [created_id(sf.post("sobjects/Contact", json={"LastName": f"N{i}"})) for i in range(20)]
    stamps = [sf.contacts[i]["SystemModstamp"] for i in ids]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(len(s) == len("2024-01-01T00:00:00.000+0000") and s.endswith("+0000") for s in stamps)


def test_delete_is_soft_and_the_record_is_then_gone_for_reads(sf):
    assert sf.delete("sobjects/Contact/0035g00000AbCdEAAV").status_code == 204
    assert sf.contacts["0035g00000AbCdEAAV"]["IsDeleted"] is True
    gone = sf.get("sobjects/Contact/0035g00000AbCdEAAV")
    assert gone.status_code == 404 and error_codes(gone) == ["ENTITY_IS_DELETED"]


def test_unknown_and_malformed_ids_are_distinguished(sf):
    missing = sf.get("sobjects/Contact/0035g00000ZZZZZ")
    assert missing.status_code == 404 and error_codes(missing) == ["NOT_FOUND"]
    assert error_codes(sf.patch("sobjects/Contact/bogus", json={"FirstName": "x"})) == ["MALFORMED_ID"]


def test_upsert_creates_when_the_external_id_is_new_and_updates_when_it_exists(sf):
    created = sf.patch(f"sobjects/Contact/{EXT}/user-42", json={"LastName": "Upserted"})
    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": True}
    assert sf.contacts[created.json()["id"]][EXT] == "user-42"
    # external ids match case-insensitively
    updated = sf.patch(f"sobjects/Contact/{EXT}/USER-42", json={"FirstName": "Again"})
    assert updated.status_code == 200
    assert updated.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": False}
    assert sf.contacts[created.json()["id"]]["FirstName"] == "Again"


def test_upsert_with_several_matches_answers_300_with_their_urls(sf):
    response = sf.patch(f"sobjects/Contact/{EXT}/ext-twin", json={"FirstName": "Which"})
    assert response.status_code == 300
    twins = sorted(i for i, r in sf.contacts.items() if r["LastName"] == "Twin")
    assert response.json() == [f"/services/data/v62.0/sobjects/Contact/{i}" for i in twins]
    assert all(sf.contacts[i]["FirstName"] is None for i in twins)


def test_upsert_on_a_field_that_is_not_an_external_id_is_not_found(sf):
    for field in ("Email", "Nope__c"):
        response = sf.patch(f"sobjects/Contact/{field}/x", json={"LastName": "X"})
        assert response.status_code == 404 and error_codes(response) == ["NOT_FOUND"]


def test_get_by_external_id_finds_the_contact(sf):
    assert sf.get(f"sobjects/Contact/{EXT}/EXT-SEED").json()["Id"] == "0035g00000AbCdEAAV"
    assert sf.get(f"sobjects/Contact/{EXT}/ext-twin").status_code == 300


@pytest.mark.parametrize("payload, code, field", [
    ({"FirstName": "No last name"}, "REQUIRED_FIELD_MISSING", "LastName"),
    ({"LastName": "X", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", "Email"),
    ({"LastName": "X" * 81}, "STRING_TOO_LONG", "LastName"),
    ({"LastName": "X", "Favourite__c": "tea"}, "INVALID_FIELD", "Favourite__c"),
    ({"LastName": "X", "SystemModstamp": "2024-01-01T00:00:00.000+0000"}, "INVALID_FIELD_FOR_INSERT_UPDATE",
     "SystemModstamp"),
    ({"LastName": "X", EXT: "EXT-seed"}, "DUPLICATE_VALUE", EXT),
])
def test_invalid_creates_fail_with_the_salesforce_error_and_store_nothing(sf, payload, code, field):
    before = len(sf.contacts)
    response = sf.post("sobjects/Contact", json=payload)
    assert response.status_code == 400
    assert [(e["errorCode"], e["fields"]) for e in response.json()] == [(code, [field])]
    assert len(sf.contacts) == before and sf.events == []


def test_like_salesforce_a_refused_email_or_too_long_value_is_quoted_in_the_message(sf):
    response = sf.post("sobjects/Contact", json={"LastName": "Z" * 81, "Email": "private.person@@example"})
    assert sorted(error_codes(response)) == ["INVALID_EMAIL_ADDRESS", "STRING_TOO_LONG"]
    assert "private.person@@example" in response.text and "Z" * 81 in response.text


def test_clearing_the_last_name_on_update_is_refused(sf):
    response = sf.patch("sobjects/Contact/0035g00000AbCdEAAV", json={"LastName": None})
    assert error_codes(response) == ["REQUIRED_FIELD_MISSING"]


def test_duplicate_rule_blocks_creating_a_contact_with_an_existing_email():
    harness = InProcessSalesforce([{"LastName": "Seed", "Email": "seed@example.com"}], duplicate_rule="block")
    try:
        response = harness.post("sobjects/Contact", json={"LastName": "Copy", "Email": "SEED@example.com"})
        assert response.status_code == 400 and error_codes(response) == ["DUPLICATES_DETECTED"]
        assert harness.post("sobjects/Contact", json={"LastName": "Fresh", "Email": "fresh@example.com"}).status_code == 201
    finally:
        harness.close()


def test_duplicate_rule_off_allows_shared_emails(sf):
    assert sf.post("sobjects/Contact", json={"LastName": "Copy", "Email": "seed@example.com"}).status_code == 201


def test_every_change_emits_an_event_with_the_record(sf):
    record_id = created_id(sf.post("sobjects/Contact", json={"LastName": "Evented"}))
    sf.patch(f"sobjects/Contact/{record_id}", json={"FirstName": "E"})
    sf.delete(f"sobjects/Contact/{record_id}")
    assert [(system, event, record["Id"]) for system, event, record in sf.events] == [
        ("salesforce", "created", record_id), ("salesforce", "updated", record_id), ("salesforce", "deleted", record_id)]
    assert sf.events[-1][2]["IsDeleted"] is True


def test_requests_for_other_objects_are_not_found(sf):
    assert sf.post("sobjects/Account", json={"Name": "Acme"}).status_code == 404


def test_bodies_that_are_not_json_objects_are_parser_errors(sf):
    response = sf.post("sobjects/Contact", content=b"[1, 2", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error_codes(response) == ["JSON_PARSER_ERROR"]
    assert error_codes(sf.post("sobjects/Contact", json=["LastName"])) == ["JSON_PARSER_ERROR"]
