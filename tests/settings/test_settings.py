"""Settings: read once from the environment into typed values, every problem named, secrets never shown."""

from __future__ import annotations

import pytest

from settings import REPO_ROOT, SettingsError, load_settings

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
    settings = load_settings(GRAPH_ENV).graph
    assert settings.tenant_id == "tenant.onmicrosoft.com"
    assert settings.custom_attributes == ("CrmSyncConsent", "CrmContactId", "LoyaltyTier")
    assert settings.authority_host == "https://login.microsoftonline.com"
    assert (settings.ca_bundle, settings.timeout_s, settings.retry_max_s) == ("/tmp/ca.pem", 3.0, 9.0)


def test_extension_attribute_drops_the_dashes_of_the_app_id():
    settings = load_settings(GRAPH_ENV).graph
    assert (
        settings.extension_attribute("CrmContactId")
        == "extension_b2c0e5a15e1d4c2b9a7f3c1d2e4f5a6b_CrmContactId"
    )


def test_missing_required_variable_is_named_in_the_error():
    env = dict(GRAPH_ENV)
    del env["B2C_CLIENT_SECRET"]
    with pytest.raises(SettingsError, match="B2C_CLIENT_SECRET"):
        load_settings(env)


def test_authority_host_must_be_https():
    with pytest.raises(SettingsError, match="B2C_AUTHORITY_HOST"):
        load_settings({**GRAPH_ENV, "B2C_AUTHORITY_HOST": "http://127.0.0.1:9"})


def test_repr_hides_secrets():
    assert "s3cret" not in repr(load_settings(GRAPH_ENV).graph)
    sf = load_settings({"SALESFORCE_CLIENT_ID": "c", "SALESFORCE_CLIENT_SECRET": "s3cret"}).salesforce
    assert "s3cret" not in repr(sf)


def test_salesforce_settings_defaults_and_extra_fields():
    sf = load_settings(
        {
            "SALESFORCE_CLIENT_ID": "c",
            "SALESFORCE_CLIENT_SECRET": "s",
            "SALESFORCE_CONTACT_FIELDS": "Title, Department",
            "SALESFORCE_API_VERSION": "v61.0",
        }
    ).salesforce
    assert sf.login_url == "https://login.salesforce.com"
    assert sf.api_version == "61.0"
    assert sf.external_id_field == "External_User_Id__c"
    assert sf.extra_contact_fields == ("Title", "Department")


def test_non_numeric_timeout_is_rejected():
    with pytest.raises(SettingsError, match="IDLINK_HTTP_TIMEOUT_S"):
        load_settings(
            {"SALESFORCE_CLIENT_ID": "c", "SALESFORCE_CLIENT_SECRET": "s", "IDLINK_HTTP_TIMEOUT_S": "fast"}
        )


def test_every_problem_is_named_in_one_error_that_never_quotes_a_value():
    env = {"B2C_TENANT_ID": "tenant", "IDLINK_HTTP_TIMEOUT_S": "secret-looking-42x", "FAST_LANE_WORKERS": "0",
           "CONNECTOR_WAREHOUSE_LOOKUP": "perhaps"}
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    message = str(raised.value)
    for name in ("B2C_CLIENT_ID", "B2C_CLIENT_SECRET", "IDLINK_HTTP_TIMEOUT_S", "FAST_LANE_WORKERS",
                 "CONNECTOR_WAREHOUSE_LOOKUP"):
        assert name in message
    assert "secret-looking-42x" not in message and "perhaps" not in message


def test_a_system_with_none_of_its_required_variables_is_simply_off():
    settings = load_settings({})
    assert (settings.graph, settings.salesforce, settings.akamai, settings.webhook, settings.connector) == (
        None, None, None, None, None)
    assert settings.fast_lane.create_contacts is True and settings.ingest.workers is None


def test_relative_paths_are_taken_against_the_repository_root_and_absolute_ones_kept(tmp_path):
    settings = load_settings({"WAREHOUSE_PATH": "data/other.duckdb", "GATEWAY_INBOX_PATH": str(tmp_path / "i.db")})
    assert settings.warehouse_path == REPO_ROOT / "data" / "other.duckdb"
    assert settings.inbox_path == tmp_path / "i.db"
    assert settings.field_mapping.path == REPO_ROOT / "config" / "field_mapping.json"


def test_tuning_variables_are_typed():
    settings = load_settings({"FAST_LANE_CREATE_CONTACTS": "false", "FAST_LANE_WORKERS": "2",
                              "IDLINK_INGEST_WORKERS": "0", "CONNECTOR_WAREHOUSE_LOOKUP": "yes"})
    assert (settings.fast_lane.create_contacts, settings.fast_lane.workers) == (False, 2)
    assert settings.ingest.workers == 0 and settings.connector_warehouse_lookup is True


def test_secrets_stay_out_of_the_whole_settings_repr():
    env = {"SALESFORCE_CLIENT_ID": "c", "SALESFORCE_CLIENT_SECRET": "sf-s3cret", "CONNECTOR_USERNAME": "u",
           "CONNECTOR_PASSWORD": "conn-s3cret", "IDLINK_ALERT_WEBHOOK_URL": "https://hooks.example/t0ken"}
    text = repr(load_settings(env))
    assert "sf-s3cret" not in text and "conn-s3cret" not in text and "t0ken" not in text
