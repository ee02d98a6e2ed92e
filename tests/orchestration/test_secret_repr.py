"""Secrets never show in the repr of the settings or of the Dagster resources, declared or resolved in a run
(a resolved resource holds the secret's value, and Dagster, a debugger or a log line may print it)."""
from __future__ import annotations

import dagster as dg

from orchestration.defs.resources import build_resources
from settings import load_settings

SECRETS = {"B2C_CLIENT_SECRET": "b2c-secret-value", "SALESFORCE_CLIENT_SECRET": "sf-secret-value",
           "AKAMAI_CLIENT_SECRET": "akamai-secret-value", "CONNECTOR_PASSWORD": "connector-secret-value",
           "IDLINK_ALERT_WEBHOOK_URL": "https://alerts.example.test/hook-secret-value"}
ENVIRONMENT = {"B2C_TENANT_ID": "t", "B2C_CLIENT_ID": "c", "SALESFORCE_CLIENT_ID": "s", "AKAMAI_BASE_URL":
               "https://akamai.example.test", "AKAMAI_CLIENT_ID": "a", "CONNECTOR_USERNAME": "u", **SECRETS}


def shown(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value.split("/")[-1] in text]


def test_settings_and_resolved_resources_never_show_a_secret(monkeypatch):
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert shown(repr(settings) + str(settings)) == []
    resources = build_resources(settings)
    assert shown(" ".join(repr(r) for r in resources.values())) == []
    keys = ("graph", "salesforce", "akamai", "alerts")
    with dg.build_resources({key: resources[key] for key in keys}) as resolved:
        texts = [repr(getattr(resolved, key)) + str(getattr(resolved, key)) for key in keys]
        assert resolved.graph.settings().client_secret == SECRETS["B2C_CLIENT_SECRET"]  # still usable
    assert shown(" ".join(texts)) == []
