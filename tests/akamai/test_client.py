"""AkamaiClient speaks the Entity API: keyset pages, lookups by uuid, merges, clear errors."""
from __future__ import annotations

import pytest

from clients.akamai import AkamaiClient
from clients.http import ApiError
from sandbox import akamai as sandbox_akamai
from sandbox.context import SandboxConfig
from settings import AkamaiSettings, SettingsError, load_settings


@pytest.fixture
def client(tenant_url) -> AkamaiClient:
    settings = AkamaiSettings(base_url=f"{tenant_url}/akamai", client_id=SandboxConfig.client_id,
                              client_secret=SandboxConfig.client_secret, timeout_s=5, retry_max_s=5)
    with AkamaiClient(settings) as api:
        yield api


def test_settings_come_from_the_environment_and_hide_the_secret():
    settings = load_settings({
        "AKAMAI_BASE_URL": "https://tenant.example/akamai/", "AKAMAI_CLIENT_ID": "cid",
        "AKAMAI_CLIENT_SECRET": "s3cret", "IDLINK_CA_BUNDLE": "/etc/ca.pem", "IDLINK_RETRY_MAX_S": "7",
    }).akamai
    assert (settings.base_url, settings.entity_type, settings.ca_bundle, settings.retry_max_s) == \
        ("https://tenant.example/akamai", "user", "/etc/ca.pem", 7.0)
    assert "s3cret" not in repr(settings)


def test_settings_name_the_missing_variable():
    with pytest.raises(SettingsError, match="AKAMAI_CLIENT_SECRET"):
        load_settings({"AKAMAI_BASE_URL": "https://x", "AKAMAI_CLIENT_ID": "cid"})


def test_find_pages_walks_every_entity_in_keyset_pages(client, seeded):
    pages = list(client.find_pages(["uuid", "email"], page_size=10))
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [e["uuid"] for p in pages for e in p] == [e["uuid"] for e in seeded]
    assert set(pages[0][0]) == {"id", "uuid", "email"}


def test_find_pages_resumes_after_an_id_and_applies_a_filter(client, seeded):
    pages = list(client.find_pages(["uuid"], after_id=20, page_size=2))
    assert [e["id"] for p in pages for e in p] == [21, 22, 23, 24, 25]
    granted = list(client.find_pages(["uuid"], filter="consents.crmSync.granted = true", page_size=1000))
    assert len(granted[0]) == 13


def test_get_entity_returns_none_for_an_unknown_uuid(client, seeded):
    assert client.get_entity(seeded[3]["uuid"])["email"] == seeded[3]["email"]
    assert client.get_entity(seeded[3]["uuid"], ["email"]) == {
        "id": seeded[3]["id"], "uuid": seeded[3]["uuid"], "email": seeded[3]["email"]}
    assert client.get_entity("00000000-0000-0000-0000-000000000000") is None


def test_update_entity_merges_attributes(client, ctx, seeded):
    client.update_entity(seeded[0]["uuid"], {"crmContactId": "003000000000009AAA"})
    assert sandbox_akamai.tenant(ctx).by_uuid[seeded[0]["uuid"]]["crmContactId"] == "003000000000009AAA"


def test_errors_carry_the_error_name_but_not_the_description(client, seeded):
    with pytest.raises(ApiError) as raised:
        client.update_entity("00000000-0000-0000-0000-000000000000", {"crmContactId": "x"})
    assert (raised.value.status, raised.value.code, raised.value.retryable) == (404, "record_not_found", False)


def test_bad_credentials_fail_fast_without_retrying(tenant_url, ctx, seeded):
    settings = AkamaiSettings(base_url=f"{tenant_url}/akamai", client_id="cid", client_secret="wrong")
    with pytest.raises(ApiError) as raised:
        list(AkamaiClient(settings).find_pages(["uuid"]))
    assert (raised.value.status, raised.value.code) == (401, "invalid_client_credentials")
    assert "wrong" not in str(raised.value)


def test_throttling_and_server_errors_are_retried_until_the_scan_completes(tenant_url, ctx, seeded):
    ctx.config.fault_rate, ctx.config.fault_kinds = 0.3, ("429", "500")
    settings = AkamaiSettings(base_url=f"{tenant_url}/akamai", client_id=SandboxConfig.client_id,
                              client_secret=SandboxConfig.client_secret, timeout_s=5, retry_max_s=60)
    pages = list(AkamaiClient(settings).find_pages(["uuid"], page_size=10))
    assert sum(ctx.faults.values()) > 0
    assert [e["uuid"] for p in pages for e in p] == [e["uuid"] for e in seeded]
