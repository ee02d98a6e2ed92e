"""Connection settings of the Graph and Salesforce clients, read from the environment.

Secrets only ever come from the environment; ``repr`` of a settings object hides them so they never reach logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class SettingsError(ValueError):
    """A required setting is missing or malformed (the message names the variable, never its value)."""


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required")
    return value


def _optional(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"environment variable {name} must be a number") from exc
    if value <= 0:
        raise SettingsError(f"environment variable {name} must be positive")
    return value


def _csv(environ: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _shared(environ: Mapping[str, str]) -> dict:
    return {
        "ca_bundle": environ.get("IDLINK_CA_BUNDLE", "").strip() or None,
        "timeout_s": _float(environ, "IDLINK_HTTP_TIMEOUT_S", 30.0),
        "retry_max_s": _float(environ, "IDLINK_RETRY_MAX_S", 120.0),
    }


@dataclass(frozen=True)
class GraphSettings:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    authority_host: str = "https://login.microsoftonline.com"
    graph_base_url: str = "https://graph.microsoft.com"
    extensions_app_id: str = ""
    custom_attributes: tuple[str, ...] = ("CrmSyncConsent", "CrmContactId")
    consent_attribute: str = "CrmSyncConsent"
    contact_id_attribute: str = "CrmContactId"
    ca_bundle: str | None = None
    timeout_s: float = 30.0
    retry_max_s: float = 120.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GraphSettings:
        authority_host = _optional(environ, "B2C_AUTHORITY_HOST", cls.authority_host).rstrip("/")
        if not authority_host.startswith("https://"):
            raise SettingsError("environment variable B2C_AUTHORITY_HOST must be an https URL")
        return cls(
            tenant_id=_required(environ, "B2C_TENANT_ID"),
            client_id=_required(environ, "B2C_CLIENT_ID"),
            client_secret=_required(environ, "B2C_CLIENT_SECRET"),
            authority_host=authority_host,
            graph_base_url=_optional(environ, "GRAPH_BASE_URL", cls.graph_base_url).rstrip("/"),
            extensions_app_id=_optional(environ, "B2C_EXTENSIONS_APP_ID", ""),
            custom_attributes=_csv(environ, "B2C_CUSTOM_ATTRIBUTES", cls.custom_attributes),
            consent_attribute=_optional(environ, "B2C_CONSENT_ATTRIBUTE", cls.consent_attribute),
            contact_id_attribute=_optional(environ, "B2C_CONTACT_ID_ATTRIBUTE", cls.contact_id_attribute),
            **_shared(environ),
        )

    def extension_attribute(self, name: str) -> str:
        """Graph property name of a B2C custom attribute, e.g. ``extension_<appid>_CrmContactId``."""
        if not self.extensions_app_id:
            raise SettingsError("B2C_EXTENSIONS_APP_ID is required to address custom attributes")
        return f"extension_{self.extensions_app_id.replace('-', '')}_{name}"


@dataclass(frozen=True)
class SalesforceSettings:
    client_id: str
    client_secret: str = field(repr=False)
    login_url: str = "https://login.salesforce.com"
    api_version: str = "62.0"
    external_id_field: str = "External_User_Id__c"
    extra_contact_fields: tuple[str, ...] = ()
    ca_bundle: str | None = None
    timeout_s: float = 30.0
    retry_max_s: float = 120.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SalesforceSettings:
        return cls(
            client_id=_required(environ, "SALESFORCE_CLIENT_ID"),
            client_secret=_required(environ, "SALESFORCE_CLIENT_SECRET"),
            login_url=_optional(environ, "SALESFORCE_LOGIN_URL", cls.login_url).rstrip("/"),
            api_version=_optional(environ, "SALESFORCE_API_VERSION", cls.api_version).lstrip("vV"),
            external_id_field=_optional(environ, "SALESFORCE_EXTERNAL_ID_FIELD", cls.external_id_field),
            extra_contact_fields=_csv(environ, "SALESFORCE_CONTACT_FIELDS", ()),
            **_shared(environ),
        )
