"""Behaviour of the SCIM client: where it may connect, how it pages /Users, what it reads from the server."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from clients import http
from clients.http import ApiError
from clients.scim import ScimClient, ServiceProvider, attribute_value
from settings import ScimSettings, SettingsError, load_settings
from tests.clients.fakes import scripted_session

BASE = "https://directory.test/scim/v2"


def client_with(script: list) -> tuple[ScimClient, list]:
    session, adapter = scripted_session(script)
    return ScimClient(ScimSettings(base_url=BASE, token="t0k3n", retry_max_s=1), session), adapter.requests


def page(ids: list[str], start: int, total: int) -> tuple[int, dict]:
    return 200, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": total,
                 "startIndex": start, "itemsPerPage": len(ids), "Resources": [{"id": i} for i in ids]}


@pytest.mark.parametrize("url", ["https://directory.example.com/scim/v2", "http://127.0.0.1:8080/v2",
                                 "http://localhost:8080/v2", "http://[::1]:8080/v2", "http://127.3.4.5/v2"])
def test_https_anywhere_and_plain_http_to_loopback_are_accepted(url):
    assert ScimSettings(base_url=url, token="t").base_url == url


@pytest.mark.parametrize("url", ["http://directory.example.com/scim/v2", "http://10.0.0.8/v2",
                                 "http://localhost.example.com/v2", "ftp://127.0.0.1/v2", "directory/v2"])
def test_plain_http_to_any_other_host_is_refused_naming_the_variable(url):
    with pytest.raises(SettingsError, match="SCIM_BASE_URL") as info:
        ScimSettings(base_url=url, token="secret-token")
    assert "secret-token" not in str(info.value)


def test_settings_come_from_scim_base_url_and_scim_token_and_hide_the_token():
    settings = load_settings({"SCIM_BASE_URL": f"{BASE}/", "SCIM_TOKEN": "s3cr3t", "SCIM_PAGE_SIZE": "50"}).scim
    assert (settings.base_url, settings.page_size) == (BASE, 50)
    assert "s3cr3t" not in repr(settings)
    with pytest.raises(SettingsError, match="SCIM_TOKEN"):
        load_settings({"SCIM_BASE_URL": BASE})
    with pytest.raises(SettingsError, match="SCIM_BASE_URL"):
        load_settings({"SCIM_BASE_URL": "http://directory.example.com/v2", "SCIM_TOKEN": "t"})
    assert load_settings({}).scim is None


def test_every_request_carries_the_bearer_token_and_asks_for_scim_json():
    client, requests = client_with([page(["a"], 1, 1)])
    list(client.user_pages(10))
    assert requests[0].headers["Authorization"] == "Bearer t0k3n"
    assert requests[0].headers["Accept"] == "application/scim+json"


def test_users_are_paged_by_start_index_until_the_total_is_reached():
    client, requests = client_with([page(["a", "b"], 1, 5), page(["c", "d"], 3, 5), page(["e"], 5, 5)])
    pages = list(client.user_pages(2, filter='meta.lastModified gt "2024-01-01T00:00:00Z"'))
    assert [[r["id"] for r in p.resources] for p in pages] == [["a", "b"], ["c", "d"], ["e"]]
    queries = [parse_qs(urlsplit(r.url).query) for r in requests]
    assert [q["startIndex"] for q in queries] == [["1"], ["3"], ["5"]]
    assert queries[0]["filter"] == ['meta.lastModified gt "2024-01-01T00:00:00Z"']


def test_a_server_that_sends_fewer_than_asked_is_paged_on_from_what_it_sent():
    client, requests = client_with([page(["a", "b"], 1, 3), page(["c"], 3, 3)])
    pages = list(client.user_pages(100))
    assert sum(len(p.resources) for p in pages) == 3
    assert parse_qs(urlsplit(requests[1].url).query)["startIndex"] == ["3"]


def test_an_empty_page_ends_the_scan_even_when_the_total_says_more():
    client, _ = client_with([page(["a"], 1, 10), page([], 2, 10)])
    assert [len(p.resources) for p in client.user_pages(1)] == [1, 0]


def test_a_scim_error_becomes_an_api_error_with_its_scim_type(monkeypatch):
    monkeypatch.setattr(http, "_sleep", lambda s: None)
    client, _ = client_with([(400, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
                                    "scimType": "invalidFilter", "detail": "bad filter"})])
    with pytest.raises(ApiError) as info:
        list(client.user_pages(10, filter="nonsense"))
    assert (info.value.status, info.value.code) == (400, "invalidFilter")


def test_a_missing_user_is_none_not_an_error():
    client, requests = client_with([(404, {"status": "404", "detail": "not found"})])
    assert client.get_user("a/b") is None
    assert urlsplit(requests[0].url).path.endswith("/Users/a%2Fb")  # an id never escapes its path segment


def test_the_service_provider_config_says_whether_filtering_is_supported():
    assert ServiceProvider.from_config({"filter": {"supported": True, "maxResults": 200}}) == \
        ServiceProvider(filter_supported=True, max_results=200)
    assert ServiceProvider.from_config({"patch": {"supported": True}}) == ServiceProvider()
    client, _ = client_with([(404, None)])
    assert client.service_provider() == ServiceProvider()  # no endpoint: nothing is assumed supported
    assert client.page_size(ServiceProvider(True, 100)) == 100


def test_attribute_paths_reach_core_sub_attributes_and_extension_attributes():
    user = {"name": {"givenName": "Ann"},
            "urn:ietf:params:scim:schemas:extension:idlink:2.0:User": {"crmSyncConsent": True}}
    assert attribute_value(user, "name.givenName") == "Ann"
    assert attribute_value(user, "urn:ietf:params:scim:schemas:extension:idlink:2.0:User:crmSyncConsent") is True
    assert attribute_value(user, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department") is None
