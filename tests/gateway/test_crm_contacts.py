"""Finding or creating a sign-up's CRM contact, against the sandbox's Salesforce through the real client."""
from __future__ import annotations

import uuid

import pytest

from gateway.crm_contacts import SalesforceContactDirectory, SignUpIdentity, soql_string


@pytest.fixture
def directory(sandbox) -> SalesforceContactDirectory:
    return SalesforceContactDirectory.from_env(budget_s=10.0, environ=sandbox.env)


def contacts(sandbox) -> list[dict]:
    return sandbox.state("salesforce")["salesforce"]["Contact"]


def test_a_new_identity_with_an_object_id_is_upserted_by_external_id(sandbox, directory) -> None:
    object_id = str(uuid.uuid4())
    identity = SignUpIdentity(email=f"new.{object_id[:8]}@example.org", given_name="Grace", surname="Hopper",
                              object_id=object_id)
    contact_id = directory.find_or_create(identity)
    [created] = [c for c in contacts(sandbox) if c["Id"] == contact_id]
    assert created["External_User_Id__c"] == object_id and created["LastName"] == "Hopper"
    assert directory.find_or_create(identity) == contact_id  # a retried sign-up finds the same contact


def test_an_existing_contact_is_found_by_email_and_not_duplicated(sandbox, directory) -> None:
    existing = next(c for c in contacts(sandbox) if c.get("Email") and not c.get("IsDeleted"))
    before = len(contacts(sandbox))
    identity = SignUpIdentity(email=existing["Email"], given_name=None, surname="Anyone", object_id=None)
    assert directory.find_or_create(identity) == existing["Id"]
    assert len(contacts(sandbox)) == before


def test_without_an_object_id_a_plain_contact_is_created(sandbox, directory) -> None:
    identity = SignUpIdentity(email=f"plain.{uuid.uuid4().hex[:8]}@example.org", given_name="Ada",
                              surname="Byron", object_id=None)
    contact_id = directory.find_or_create(identity)
    [created] = [c for c in contacts(sandbox) if c["Id"] == contact_id]
    assert not created.get("External_User_Id__c")


def test_without_a_surname_no_contact_is_created_now(sandbox, directory) -> None:
    before = len(contacts(sandbox))
    identity = SignUpIdentity(email=f"nosurname.{uuid.uuid4().hex[:8]}@example.org", given_name="Ada",
                              surname=None, object_id=str(uuid.uuid4()))
    assert directory.find_or_create(identity) is None
    assert len(contacts(sandbox)) == before


def test_soql_strings_escape_quotes_and_backslashes() -> None:
    assert soql_string("o'brien\\x@example.org") == "'o\\'brien\\\\x@example.org'"
