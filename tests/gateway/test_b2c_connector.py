"""The B2C sign-up API connector: exact request/response shapes, consent, auth, and never blocking a sign-up."""
from __future__ import annotations

import time

import pytest

from clients.http import ApiError
from gateway.app import CONNECTOR_PATH
from tests.gateway.conftest import basic_auth

OBJECT_ID = "5e9a3b1c-2d4f-4a6b-8c7d-9e0f1a2b3c4d"
APP_ID = "b2c0e5a15e1d4c2b9a7f3c1d2e4f5a6b"

CLIENT_ID = "a1b2c3d4-0000-4000-8000-000000000001"
# the application signed up through goes back as a claim B2C stores on the user: the batch sync reads it later
CONTINUE = {"version": "1.0.0", "action": "Continue", "extension_SignUpClientId": CLIENT_ID}


def claims(**overrides) -> dict:
    body = {"email": "Ada.Lovelace@Example.org", "givenName": "Ada", "surname": "Lovelace",
            "objectId": OBJECT_ID, f"extension_{APP_ID}_CrmSyncConsent": True, "ui_locales": "en-GB",
            "step": "PostAttributeCollection", "client_id": CLIENT_ID}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def call(client, body, auth=None):
    return client.post(CONNECTOR_PATH, json=body, headers=auth if auth is not None else basic_auth())


def test_a_consenting_sign_up_gets_continue_with_the_crm_contact_id(client, inbox, directory) -> None:
    response = call(client, claims())
    assert response.status_code == 200
    assert response.json() == {**CONTINUE, "extension_CrmContactId": "003000000000001AAA"}
    [identity] = directory.calls
    assert (identity.email, identity.object_id, identity.surname, identity.client_id) == (
        "Ada.Lovelace@example.org", OBJECT_ID, "Lovelace", CLIENT_ID)
    [event] = inbox.pending()
    assert (event.source, event.kind, event.subject) == ("b2c", "signUp", OBJECT_ID)
    assert event.payload["contact_id"] == "003000000000001AAA" and event.payload["outcome"] == "linked"


def test_consent_is_also_read_from_the_short_extension_claim_name(client, directory) -> None:
    body = claims(**{f"extension_{APP_ID}_CrmSyncConsent": None, "extension_CrmSyncConsent": "true"})
    assert call(client, body).json()["extension_CrmContactId"] == "003000000000001AAA"


def test_without_consent_the_answer_is_continue_without_the_claim_and_the_crm_is_not_asked(
        client, inbox, directory) -> None:
    response = call(client, claims(**{f"extension_{APP_ID}_CrmSyncConsent": False}))
    assert response.status_code == 200
    assert response.json() == CONTINUE
    assert directory.calls == []
    [event] = inbox.pending()
    assert event.payload["outcome"] == "no_consent" and event.payload["contact_id"] is None


def test_an_invalid_email_gets_a_validation_error_in_b2c_shape(client, inbox, directory) -> None:
    response = call(client, claims(email="not-an-email"))
    assert response.status_code == 400
    assert response.json() == {"version": "1.0.0", "status": 400, "action": "ValidationError",
                               "userMessage": "Please enter a valid email address."}
    assert directory.calls == [] and inbox.stats()["total"] == 0


@pytest.mark.parametrize("body", [
    [1, 2, 3],
    claims(objectId="not-a-guid"),
    claims(surname="x" * 500),
    claims(givenName="Ada\x00"),
    claims(**{f"extension_{APP_ID}_CrmSyncConsent": {"granted": True}}),
], ids=["not-an-object", "bad-object-id", "oversized-name", "control-characters", "bad-consent"])
def test_malformed_claims_get_a_validation_error_that_echoes_nothing(client, body) -> None:
    response = call(client, body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["action"] == "ValidationError" and payload["version"] == "1.0.0"
    assert "x" * 20 not in payload["userMessage"] and "Ada" not in payload["userMessage"]


def test_a_body_that_is_not_json_gets_a_validation_error(client) -> None:
    response = client.post(CONNECTOR_PATH, content=b"{not json", headers=basic_auth())
    assert response.status_code == 400 and response.json()["action"] == "ValidationError"


@pytest.mark.parametrize("auth", [{}, basic_auth(password="wrong"), basic_auth(user="someone"),
                                  {"Authorization": "Basic !!!"}, {"Authorization": "Bearer abc"}],
                         ids=["missing", "wrong-password", "wrong-user", "undecodable", "other-scheme"])
def test_calls_without_the_right_basic_credentials_get_401(client, inbox, directory, auth) -> None:
    response = call(client, claims(), auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert directory.calls == [] and inbox.stats()["total"] == 0


def test_a_slow_crm_never_holds_the_sign_up_past_the_budget(client, inbox, directory) -> None:
    directory.delay_s = 10.0  # budget in these tests is 0.5 s
    started = time.perf_counter()
    response = call(client, claims())
    elapsed = time.perf_counter() - started
    assert response.json() == CONTINUE
    assert elapsed < 1.5
    [event] = inbox.pending()
    assert event.payload["outcome"] == "crm_timeout" and event.subject == OBJECT_ID


def test_a_crm_that_is_down_yields_continue_and_an_event_for_the_asynchronous_path(
        client, inbox, directory) -> None:
    directory.error = ApiError("Salesforce unavailable", status=503, retryable=True)
    response = call(client, claims())
    assert response.json() == CONTINUE
    [event] = inbox.pending()
    assert event.payload["outcome"] == "crm_error"


def test_a_retried_call_with_the_same_claims_is_stored_once(client, inbox) -> None:
    call(client, claims())
    call(client, claims())
    assert inbox.stats()["total"] == 1


def test_a_sign_up_without_email_continues_and_is_recorded(client, inbox, directory) -> None:
    response = call(client, claims(email=None))
    assert response.json() == CONTINUE
    assert directory.calls == []
    assert inbox.pending()[0].payload["outcome"] == "no_email"


def test_stored_events_carry_no_personal_data(client, inbox) -> None:
    call(client, claims())
    raw = inbox.path.read_bytes() + inbox.path.with_name(inbox.path.name + "-wal").read_bytes()
    assert b"Lovelace" not in raw and b"example.org" not in raw.lower()
