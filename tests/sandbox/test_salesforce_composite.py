"""sObject Collections: per-record results in request order, allOrNone rollback, the 200-record limit."""
from __future__ import annotations

import pytest

from sandbox.salesforce.harness import InProcessSalesforce

EXT = "External_User_Id__c"
UPSERT = f"composite/sobjects/Contact/{EXT}"


@pytest.fixture
def sf():
    harness = InProcessSalesforce([{"LastName": "Existing", EXT: "ext-1"}])
    yield harness
    harness.close()


def rec(**fields):
    return {"attributes": {"type": "Contact"}, **fields}


def test_upsert_collection_reports_each_record_in_request_order(sf):
    existing_id = next(iter(sf.contacts))
    response = sf.patch(UPSERT, json={"allOrNone": False, "records": [
        rec(**{EXT: "ext-new", "LastName": "Created"}),
        rec(**{EXT: "ext-bad", "LastName": "Bad", "Email": "nope"}),
        rec(**{EXT: "EXT-1", "FirstName": "Updated"}),
        rec(LastName="No external id"),
    ]})
    assert response.status_code == 200
    created, bad, updated, missing = response.json()
    assert created["success"] is True and created["created"] is True and created["errors"] == []
    assert bad == {"id": None, "success": False, "created": False, "errors": [
        {"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address: nope",
         "fields": ["Email"]}]}
    assert updated == {"id": existing_id, "success": True, "errors": [], "created": False}
    assert missing["success"] is False and missing["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert sf.contacts[existing_id]["FirstName"] == "Updated"
    assert {r[EXT] for r in sf.contacts.values()} == {"ext-1", "ext-new"}


def test_all_or_none_rolls_every_record_back_when_one_fails(sf):
    before = {i: dict(r) for i, r in sf.contacts.items()}
    response = sf.patch(UPSERT, json={"allOrNone": True, "records": [
        rec(**{EXT: "ext-1", "FirstName": "Changed"}),
        rec(**{EXT: "ext-2", "LastName": "Created"}),
        rec(**{EXT: "ext-3", "LastName": "L" * 81}),
    ]})
    results = response.json()
    assert [r["success"] for r in results] == [False, False, False]
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "STRING_TOO_LONG"]
    assert results[1]["id"] is None  # the rolled-back create left no record behind
    assert sf.contacts == before
    assert sf.events == []


def test_all_or_none_commits_everything_when_all_records_are_valid(sf):
    response = sf.patch(UPSERT, json={"allOrNone": True, "records": [
        rec(**{EXT: "ext-1", "FirstName": "Changed"}), rec(**{EXT: "ext-2", "LastName": "Created"})]})
    assert [(r["success"], r["created"]) for r in response.json()] == [(True, False), (True, True)]
    assert [event for _, event, _ in sf.events] == ["updated", "created"]


def test_more_than_200_records_are_refused_as_a_whole(sf):
    records = [rec(**{EXT: f"bulk-{i}", "LastName": "X"}) for i in range(201)]
    response = sf.patch(UPSERT, json={"allOrNone": False, "records": records})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert len(sf.contacts) == 1


def test_upsert_collection_on_a_field_that_is_not_an_external_id_is_not_found(sf):
    response = sf.patch("composite/sobjects/Contact/Email", json={"records": [rec(Email="a@example.com")]})
    assert response.status_code == 404 and response.json()[0]["errorCode"] == "NOT_FOUND"


def test_create_collection_creates_records_and_rejects_other_types(sf):
    response = sf.post("composite/sobjects", json={"allOrNone": False, "records": [
        rec(LastName="One"), {"attributes": {"type": "Account"}, "Name": "Acme"}, rec(LastName="Two")]})
    one, account, two = response.json()
    assert one["success"] and two["success"] and one["id"] != two["id"]
    assert account["success"] is False and account["errors"][0]["statusCode"] == "INVALID_TYPE"


def test_update_collection_updates_by_id_and_reports_unknown_ids(sf):
    existing_id = next(iter(sf.contacts))
    response = sf.patch("composite/sobjects", json={"allOrNone": False, "records": [
        rec(Id=existing_id, Phone="+4930123456"), rec(Id="0035g00000ZZZZZ", Phone="+4930123456"), rec(Phone="x")]})
    updated, unknown, no_id = response.json()
    assert updated == {"id": existing_id, "success": True, "errors": []}
    assert unknown["errors"][0]["statusCode"] == "NOT_FOUND"
    assert no_id["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert sf.contacts[existing_id]["Phone"] == "+4930123456"


def test_delete_collection_soft_deletes_by_ids(sf):
    existing_id = next(iter(sf.contacts))
    response = sf.delete("composite/sobjects", params={"ids": existing_id, "allOrNone": "true"})
    assert response.json() == [{"id": existing_id, "success": True, "errors": []}]
    assert sf.contacts[existing_id]["IsDeleted"] is True
