"""Behaviour of the Salesforce client: token, limits, session refresh, SOQL paging."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from clients import http
from clients.http import ApiError, RequestLimitExceeded
from clients.salesforce import SalesforceClient
from settings import SalesforceSettings
from tests.clients.fakes import ScriptedAdapter, make_response

SETTINGS = SalesforceSettings(
    client_id="c", client_secret="s", login_url="https://login.sf.test", api_version="62.0", retry_max_s=5
)
INSTANCE = "https://instance.sf.test"


class FakeOrg:
    """Token endpoint plus scripted data replies."""

    def __init__(self, data_replies):
        self.data_replies = list(data_replies)
        self.tokens = 0

    def __call__(self, request):
        if request.url.endswith("/services/oauth2/token"):
            self.tokens += 1
            assert "grant_type=client_credentials" in request.body
            return make_response(
                request, 200, {"access_token": f"tok{self.tokens}", "instance_url": INSTANCE}
            )
        reply = self.data_replies.pop(0)
        return reply(request) if callable(reply) else make_response(request, *reply)


@pytest.fixture
def org_client(monkeypatch):
    monkeypatch.setattr(http, "_sleep", lambda s: None)

    def build(*replies):
        client = SalesforceClient(SETTINGS)
        org = FakeOrg(replies)
        adapter = ScriptedAdapter(responder=org)
        client.session.mount("https://", adapter)
        return client, org, adapter

    return build


def test_request_limit_exceeded_is_raised_without_retrying(org_client):
    client, _, adapter = org_client(
        (403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}])
    )
    with pytest.raises(RequestLimitExceeded) as info:
        client.request("GET", "limits")
    assert info.value.code == "REQUEST_LIMIT_EXCEEDED" and not info.value.retryable
    assert len([r for r in adapter.requests if "/services/data/" in r.url]) == 1


def test_invalid_session_triggers_one_relogin(org_client):
    client, org, adapter = org_client(
        (401, [{"errorCode": "INVALID_SESSION_ID", "message": "expired"}]), (200, {"ok": True})
    )
    assert client.request("GET", "sobjects").status_code == 200
    data_calls = [r for r in adapter.requests if "/services/data/" in r.url]
    assert [r.headers["Authorization"] for r in data_calls] == ["Bearer tok1", "Bearer tok2"]
    assert org.tokens == 2


def test_query_pages_follow_next_records_url_and_track_api_usage(org_client):
    def first(request):
        assert urlsplit(request.url).path == "/services/data/v62.0/queryAll"
        assert parse_qs(urlsplit(request.url).query)["q"] == ["SELECT Id FROM Contact"]
        return make_response(
            request,
            200,
            {
                "done": False,
                "records": [{"Id": "1"}],
                "nextRecordsUrl": "/services/data/v62.0/query/01g-2000",
            },
        )

    def second(request):
        assert request.url == INSTANCE + "/services/data/v62.0/query/01g-2000"
        return make_response(
            request,
            200,
            {"done": True, "records": [{"Id": "2"}]},
            {"Sforce-Limit-Info": "api-usage=42/15000"},
        )

    client, _, _ = org_client(first, second)
    pages = list(client.query_pages("SELECT Id FROM Contact", include_deleted=True))
    assert pages == [[{"Id": "1"}], [{"Id": "2"}]]
    assert client.api_usage == (42, 15000)


def test_refused_token_request_names_the_error_code_not_the_secret(org_client):
    client = SalesforceClient(
        SalesforceSettings(
            client_id="c", client_secret="very-secret-value", login_url="https://login.sf.test"
        )
    )
    client.session.mount(
        "https://",
        ScriptedAdapter(
            responder=lambda r: make_response(r, 400, {"error": "invalid_client", "error_description": "bad"})
        ),
    )
    with pytest.raises(ApiError) as info:
        client.request("GET", "sobjects")
    assert info.value.status == 400 and "invalid_client" in str(info.value)
    assert "very-secret-value" not in str(info.value)
