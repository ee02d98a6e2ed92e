"""Settings are read from the environment and never reveal secrets."""

from __future__ import annotations

import pytest

from clients.settings import GraphSettings, SalesforceSettings, SettingsError

GRAPH_ENV = {
    "B2C_TENANT_ID": "tenant.onmicrosoft.com",
    "B2C_CLIENT_ID": "cid",
    "B2C_CLIENT_SECRET": "s3cret",
    "B2C_EXTENSIONS_APP_ID": "b2c0e5a1-5e1d-4c2b-9a7f-3c1d2e4f5a6b",
    "B2C_CUSTOM_ATTRIBUTES": "CrmSyncConsent, CrmContactId,LoyaltyTier",
    "IDLINK_CA_BUNDLE": "/tmp/ca.pem",
    "IDLINK_HTTP_TIMEOUT_S": "3",
    "IDLINK_RETRY_MAX_S": "9",
}


def test_graph_settings_come_from_the_environment():
    settings = GraphSettings.from_env(GRAPH_ENV)
    assert settings.tenant_id == "tenant.onmicrosoft.com"
    assert settings.custom_attributes == ("CrmSyncConsent", "CrmContactId", "LoyaltyTier")
    assert settings.authority_host == "https://login.microsoftonline.com"
    assert (settings.ca_bundle, settings.timeout_s, settings.retry_max_s) == ("/tmp/ca.pem", 3.0, 9.0)


def test_extension_attribute_drops_the_dashes_of_the_app_id():
    settings = GraphSettings.from_env(GRAPH_ENV)
    assert (
        settings.extension_attribute("CrmContactId")
        == "extension_b2c0e5a15e1d4c2b9a7f3c1d2e4f5a6b_CrmContactId"
    )


def test_missing_required_variable_is_named_in_the_error():
    env = dict(GRAPH_ENV)
    del env["B2C_CLIENT_SECRET"]
    with pytest.raises(SettingsError, match="B2C_CLIENT_SECRET"):
        GraphSettings.from_env(env)


def test_authority_host_must_be_https():
    with pytest.raises(SettingsError, match="B2C_AUTHORITY_HOST"):
        GraphSettings.from_env({**GRAPH_ENV, "B2C_AUTHORITY_HOST": "http://127.0.0.1:9"})


def test_repr_hides_secrets():
    assert "s3cret" not in repr(GraphSettings.from_env(GRAPH_ENV))
    sf = SalesforceSettings.from_env({"SALESFORCE_CLIENT_ID": "c", "SALESFORCE_CLIENT_SECRET": "s3cret"})
    assert "s3cret" not in repr(sf)


def test_salesforce_settings_defaults_and_extra_fields():
    sf = SalesforceSettings.from_env(
        {
            "SALESFORCE_CLIENT_ID": "c",
            "SALESFORCE_CLIENT_SECRET": "s",
            "SALESFORCE_CONTACT_FIELDS": "Title, Department",
            "SALESFORCE_API_VERSION": "v61.0",
        }
    )
    assert sf.login_url == "https://login.salesforce.com"
    assert sf.api_version == "61.0"
    assert sf.external_id_field == "External_User_Id__c"
    assert sf.extra_contact_fields == ("Title", "Department")


def test_non_numeric_timeout_is_rejected():
    with pytest.raises(SettingsError, match="IDLINK_HTTP_TIMEOUT_S"):
        SalesforceSettings.from_env(
            {"SALESFORCE_CLIENT_ID": "c", "SALESFORCE_CLIENT_SECRET": "s", "IDLINK_HTTP_TIMEOUT_S": "fast"}
        )
