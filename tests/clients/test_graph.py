"""Behaviour of the Graph client: auth refresh, paging, $batch ordering."""

from __future__ import annotations

import random
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from clients import http
from clients.graph import GraphClient
from clients.http import ApiError
from settings import GraphSettings
from tests.clients.fakes import ScriptedAdapter, make_response

SETTINGS = GraphSettings(
    tenant_id="t",
    client_id="c",
    client_secret="s",
    graph_base_url="https://graph.test",
    authority_host="https://login.test",
    retry_max_s=5,
)


class FakeMsal:
    def __init__(self) -> None:
        self.issued = 0

    def acquire_token_for_client(self, scopes):
        self.issued += 1
        return {"access_token": f"token-{self.issued}", "expires_in": 3600}

    def remove_tokens_for_client(self):
        pass


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(http, "_sleep", lambda s: None)
    graph = GraphClient(SETTINGS)
    graph._app = FakeMsal()
    return graph


def mount(graph: GraphClient, responder) -> ScriptedAdapter:
    adapter = ScriptedAdapter(responder=responder)
    graph.session.mount("https://", adapter)
    return adapter


def test_requests_are_relative_to_v1_and_carry_the_bearer_token(client):
    adapter = mount(client, lambda r: make_response(r, 200, {"id": "u1"}))
    client.request("GET", "users/u1")
    assert adapter.requests[0].url == "https://graph.test/v1.0/users/u1"
    assert adapter.requests[0].headers["Authorization"] == "Bearer token-1"


def test_a_401_refreshes_the_token_once(client):
    replies = iter([401, 200])
    adapter = mount(client, lambda r: make_response(r, next(replies), {}))
    assert client.request("GET", "users").status_code == 200
    assert [r.headers["Authorization"] for r in adapter.requests] == ["Bearer token-1", "Bearer token-2"]


def test_user_pages_follow_the_next_link(client):
    def responder(request):
        query = parse_qs(urlsplit(request.url).query)
        if "$skiptoken" in query:
            return make_response(request, 200, {"value": [{"id": "u3"}]})
        assert query["$top"] == ["999"] and query["$select"] == ["id,mail"]
        return make_response(
            request,
            200,
            {
                "value": [{"id": "u1"}, {"id": "u2"}],
                "@odata.nextLink": "https://graph.test/v1.0/users?$skiptoken=x",
            },
        )

    mount(client, responder)
    pages = list(client.iter_user_pages(["id", "mail"]))
    assert [[u["id"] for u in page] for page in pages] == [["u1", "u2"], ["u3"]]


def test_get_user_answers_none_for_a_deleted_user(client):
    mount(client, lambda r: make_response(r, 404, {"error": {"code": "Request_ResourceNotFound"}}))
    assert client.get_user("gone", ["id"]) is None


def test_batch_answers_are_ordered_like_the_requests(client):
    def responder(request):
        sub = orjson.loads(request.body)["requests"]
        answers = [{"id": r["id"], "status": 200, "body": {"id": r["url"].split("/")[-1]}} for r in sub]
        random.Random(3).shuffle(answers)
        return make_response(request, 200, {"responses": answers})

    adapter = mount(client, responder)
    requests = [{"id": str(i), "method": "GET", "url": f"/users/u{i}"} for i in range(20)]
    answers = client.batch(requests)
    assert [a["id"] for a in answers] == [str(i) for i in range(20)]
    assert [a["body"]["id"] for a in answers] == [f"u{i}" for i in range(20)]
    assert adapter.requests[0].url == "https://graph.test/v1.0/$batch"


def test_batch_refuses_more_than_twenty_requests(client):
    with pytest.raises(ValueError, match="at most 20"):
        client.batch([{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)])


def test_failed_page_raises_with_the_route(client):
    mount(
        client,
        lambda r: make_response(
            r, 403, {"error": {"code": "Authorization_RequestDenied", "message": "denied"}}
        ),
    )
    with pytest.raises(ApiError) as info:
        list(client.iter_user_pages(["id"]))
    assert info.value.status == 403 and "/v1.0/users" in str(info.value)
