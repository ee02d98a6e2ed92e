"""OAuth client credentials, session checks, API versions and the daily API request limit."""
from __future__ import annotations

import time

import pytest

from sandbox.salesforce.harness import InProcessSalesforce


@pytest.fixture
def sf():
    harness = InProcessSalesforce([{"LastName": "Doe", "Email": "doe@example.com"}])
    yield harness
    harness.close()


def test_client_credentials_grant_returns_a_bearer_token_for_the_instance(sf):
    response = sf.request_token()
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == "https://testserver"
    assert body["id"].startswith("https://testserver/id/00D")
    assert body["issued_at"].isdigit() and body["signature"]
    assert body["access_token"] != sf.token


@pytest.mark.parametrize("client_id, secret", [("idlink-sandbox-client", "wrong"), ("someone-else", "sandbox-secret")])
def test_bad_client_credentials_are_rejected_as_invalid_client(sf, client_id, secret):
    response = sf.request_token(client_id, secret)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


def test_other_grant_types_are_unsupported(sf):
    response = sf.client.post("/services/oauth2/token", data={"grant_type": "password"})
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_api_calls_without_a_valid_session_get_invalid_session_id(sf):
    expected = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert sf.client.get("/services/data/v62.0/limits").json() == expected
    response = sf.get("limits", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401 and response.json() == expected


def test_oauth_scheme_is_accepted_like_bearer(sf):
    assert sf.get("limits", headers={"Authorization": f"OAuth {sf.token}"}).status_code == 200


def test_tokens_stop_working_after_their_lifetime():
    harness = InProcessSalesforce(token_lifetime_s=0)
    try:
        time.sleep(0.01)
        assert harness.get("limits").status_code == 401
    finally:
        harness.close()


def test_versions_are_listed_without_a_session(sf):
    versions = sf.client.get("/services/data/").json()
    assert {"label": "Release 62.0", "url": "/services/data/v62.0", "version": "62.0"} in versions


def test_unknown_api_versions_are_not_found(sf):
    response = sf.get("/services/data/v12.0/limits")
    assert response.status_code == 404 and response.json()[0]["errorCode"] == "NOT_FOUND"


def test_every_api_response_reports_usage_in_sforce_limit_info():
    harness = InProcessSalesforce(daily_api_limit=100)
    try:
        assert harness.get("limits").headers["Sforce-Limit-Info"] == "api-usage=1/100"
        assert harness.query("SELECT Id FROM Contact").headers["Sforce-Limit-Info"] == "api-usage=2/100"
        limits = harness.get("limits").json()
        assert limits["DailyApiRequests"] == {"Max": 100, "Remaining": 97}
    finally:
        harness.close()


def test_calls_beyond_the_daily_limit_get_request_limit_exceeded():
    harness = InProcessSalesforce([{"LastName": "Doe"}], daily_api_limit=3)
    try:
        for _ in range(3):
            assert harness.query("SELECT Id FROM Contact").status_code == 200
        response = harness.post("sobjects/Contact", json={"LastName": "Blocked"})
        assert response.status_code == 403
        assert response.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        assert response.headers["Sforce-Limit-Info"] == "api-usage=4/3"
        assert len(harness.contacts) == 1  # the refused create wrote nothing
    finally:
        harness.close()


def test_token_requests_do_not_count_against_the_api_limit():
    harness = InProcessSalesforce(daily_api_limit=1)
    try:
        for _ in range(3):
            assert harness.request_token().status_code == 200
        assert harness.get("limits").status_code == 200
    finally:
        harness.close()


def test_unexpected_failures_answer_unknown_exception_without_details(sf, monkeypatch, caplog):
    from sandbox.salesforce import sobjects as salesforce_sobjects

    def broken(version):
        raise RuntimeError("secret detail jane@example.com")

    monkeypatch.setattr(salesforce_sobjects, "describe_contact", broken)
    response = sf.get("sobjects/Contact/describe")
    assert response.status_code == 500
    assert response.json() == [{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}]
    assert "RuntimeError" in caplog.text and "jane@example.com" not in caplog.text
