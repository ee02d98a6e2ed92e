"""Typed settings of every component, one frozen dataclass each; defaults come from the registry.

Secrets are left out of ``repr`` so a settings object can be logged or shown in an error without leaking them.
Components receive these objects; they never read the environment themselves.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from settings.registry import VARIABLES


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable, never its value."""


def _default(name: str) -> str:
    return VARIABLES[name].default


def _number(name: str) -> float:
    return float(VARIABLES[name].default)


def _list(name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in VARIABLES[name].default.split(",") if part.strip())


@dataclass(frozen=True)
class HttpSettings:
    """What every API client shares."""

    ca_bundle: str | None = None
    timeout_s: float = _number("IDLINK_HTTP_TIMEOUT_S")
    retry_max_s: float = _number("IDLINK_RETRY_MAX_S")


@dataclass(frozen=True)
class GraphSettings:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    authority_host: str = _default("B2C_AUTHORITY_HOST")
    graph_base_url: str = _default("GRAPH_BASE_URL")
    extensions_app_id: str = ""
    custom_attributes: tuple[str, ...] = _list("B2C_CUSTOM_ATTRIBUTES")
    consent_attribute: str = _default("B2C_CONSENT_ATTRIBUTE")
    contact_id_attribute: str = _default("B2C_CONTACT_ID_ATTRIBUTE")
    client_id_attribute: str = _default("B2C_CLIENT_ID_ATTRIBUTE")
    ca_bundle: str | None = None
    timeout_s: float = _number("IDLINK_HTTP_TIMEOUT_S")
    retry_max_s: float = _number("IDLINK_RETRY_MAX_S")

    def extension_attribute(self, name: str) -> str:
        """Graph property name of a B2C custom attribute, e.g. ``extension_<appid>_CrmContactId``."""
        if not self.extensions_app_id:
            raise SettingsError("B2C_EXTENSIONS_APP_ID is required to address custom attributes")
        return f"extension_{self.extensions_app_id.replace('-', '')}_{name}"


@dataclass(frozen=True)
class SalesforceSettings:
    client_id: str
    client_secret: str = field(repr=False)
    login_url: str = _default("SALESFORCE_LOGIN_URL")
    api_version: str = _default("SALESFORCE_API_VERSION")
    external_id_field: str = _default("SALESFORCE_EXTERNAL_ID_FIELD")
    extra_contact_fields: tuple[str, ...] = ()
    ca_bundle: str | None = None
    timeout_s: float = _number("IDLINK_HTTP_TIMEOUT_S")
    retry_max_s: float = _number("IDLINK_RETRY_MAX_S")


@dataclass(frozen=True)
class AkamaiSettings:
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    entity_type: str = _default("AKAMAI_ENTITY_TYPE")
    consent_attribute_path: str = "consents.crmSync.granted"
    contact_id_attribute: str = "crmContactId"
    ca_bundle: str | None = None
    timeout_s: float = _number("IDLINK_HTTP_TIMEOUT_S")
    retry_max_s: float = _number("IDLINK_RETRY_MAX_S")


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): traffic that never leaves the machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_secure_base_url(url: str) -> bool:
    """https, or plain http to a loopback host (test servers that speak no TLS); never http across a network,
    where a bearer token or client secret would travel in clear."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


@dataclass(frozen=True)
class ScimSettings:
    """A SCIM 2.0 directory (RFC 7643/7644) read as an identity source with a bearer token."""

    base_url: str
    token: str = field(repr=False)
    page_size: int = int(_default("SCIM_PAGE_SIZE"))  # lowered to the server's filter.maxResults when smaller
    # SCIM attribute paths (``<schema URN>:<attribute>`` for an extension) of the consent and the carried CRM id
    consent_attribute: str = _default("SCIM_CONSENT_ATTRIBUTE")
    contact_id_attribute: str = _default("SCIM_CONTACT_ID_ATTRIBUTE")
    client_id_attribute: str = _default("SCIM_CLIENT_ID_ATTRIBUTE")
    ca_bundle: str | None = None
    timeout_s: float = _number("IDLINK_HTTP_TIMEOUT_S")
    retry_max_s: float = _number("IDLINK_RETRY_MAX_S")

    def __post_init__(self) -> None:
        if not is_secure_base_url(self.base_url):
            raise SettingsError("SCIM_BASE_URL must be an https URL (plain http only to a loopback host)")


@dataclass(frozen=True)
class DataverseSettings:
    """Dynamics 365 / Dataverse Web API (OData v4) through an app registration (client credentials)."""

    url: str  # the environment URL, e.g. https://contoso.crm.dynamics.com (the token's resource)
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    authority_host: str = _default("DATAVERSE_AUTHORITY_HOST")
    api_version: str = _default("DATAVERSE_API_VERSION")
    external_id_field: str = _default("DATAVERSE_EXTERNAL_ID_FIELD")
    extra_contact_fields: tuple[str, ...] = ()
    page_size: int = int(_default("DATAVERSE_PAGE_SIZE"))
    batch_size: int = int(_default("DATAVERSE_BATCH_SIZE"))
    max_concurrent: int = int(_default("DATAVERSE_MAX_CONCURRENT"))
    requests_per_window: int = int(_default("DATAVERSE_REQUESTS_PER_5_MIN"))
    ca_bundle: str | None = None
    timeout_s: float = _number("IDLINK_HTTP_TIMEOUT_S")
    retry_max_s: float = _number("IDLINK_RETRY_MAX_S")

    def __post_init__(self) -> None:
        if not self.url.startswith("https://"):
            raise SettingsError("DATAVERSE_URL must be an https URL")
        if not self.authority_host.startswith("https://"):
            raise SettingsError("DATAVERSE_AUTHORITY_HOST must be an https URL")
        if not 1 <= self.batch_size <= 1000:
            raise SettingsError("DATAVERSE_BATCH_SIZE must be between 1 and 1000")
        if not 1 <= self.page_size <= 5000:
            raise SettingsError("DATAVERSE_PAGE_SIZE must be between 1 and 5000")


@dataclass(frozen=True)
class WebhookSettings:
    """How Akamai Security Event Tokens are verified."""

    jwks_url: str
    issuer: str
    audience: str
    ca_bundle: str | None = None
    # Oldest accepted iat. The sender redelivers the same signed token for up to 24 h, so a shorter window would
    # turn late retries into lost events; replays inside it are caught by the jti.
    max_age_s: float = _number("GATEWAY_SET_MAX_AGE_S")
    clock_skew_s: float = _number("GATEWAY_CLOCK_SKEW_S")
    max_body_bytes: int = int(_default("GATEWAY_MAX_BODY_BYTES"))
    jwks_cache_s: float = 3600.0
    jwks_min_refresh_s: float = 10.0  # an unknown kid refreshes the key set at most this often
    http_timeout_s: float = 5.0


@dataclass(frozen=True)
class ConnectorSettings:
    """The B2C sign-up API connector."""

    username: str
    password: str = field(repr=False)
    budget_s: float = _number("CONNECTOR_BUDGET_S")  # CRM work during a sign-up; B2C itself waits at most 30 s
    consent_attribute: str = _default("B2C_CONSENT_ATTRIBUTE")
    contact_id_attribute: str = _default("B2C_CONTACT_ID_ATTRIBUTE")
    client_id_attribute: str = _default("B2C_CLIENT_ID_ATTRIBUTE")
    max_body_bytes: int = int(_default("GATEWAY_MAX_BODY_BYTES"))


@dataclass(frozen=True)
class FastLaneSettings:
    create_contacts: bool = True  # off: only link to contacts that exist, leave creation to the batch sync
    poll_interval_s: float = _number("FAST_LANE_POLL_S")
    batch_limit: int = 200
    workers: int = int(_default("FAST_LANE_WORKERS"))
    # a call that is still failing after this long is left to the batch path instead of holding up others
    call_budget_s: float = _number("FAST_LANE_CALL_BUDGET_S")


@dataclass(frozen=True)
class FieldMappingSettings:
    """Which entry of the reverse-ETL field mapping file applies."""

    path: Path
    customer: str = _default("IDLINK_CUSTOMER")
    environment: str = _default("IDLINK_ENVIRONMENT")


@dataclass(frozen=True)
class IngestSettings:
    workers: int | None = None  # processes normalising large loads; None = the usable CPU count, 0 = none
    dlt_progress: bool = False


@dataclass(frozen=True)
class PublishSettings:
    """Where each role's published database goes, and the salt of the keyed hashes in them."""

    analyst_db_path: Path
    compliance_db_path: Path
    steward_db_path: Path | None = None  # None: no steward file is published
    hash_salt: str | None = field(default=None, repr=False)  # None: a new random salt per publication


ERASURE_CRM_POLICIES = ("delete", "anonymise", "clear_external_id")


@dataclass(frozen=True)
class PrivacySettings:
    """How erasure treats the CRM and provider deletions."""

    crm_policy: str = _default("ERASURE_CRM_POLICY")  # one of ERASURE_CRM_POLICIES
    erase_deleted: bool = False


@dataclass(frozen=True)
class RetentionSettings:
    """Days each kind of record is kept (privacy.retention)."""

    tombstone_days: int = int(_default("RETENTION_TOMBSTONE_DAYS"))
    snapshot_days: int = int(_default("RETENTION_SNAPSHOT_DAYS"))
    sync_log_days: int = int(_default("RETENTION_SYNC_LOG_DAYS"))
    dead_letter_days: int = int(_default("RETENTION_DEAD_LETTER_DAYS"))
    inbox_days: int = int(_default("RETENTION_INBOX_DAYS"))


@dataclass(frozen=True)
class Settings:
    """Everything idlink is configured with, read once at an edge (``settings.load_settings``).

    A system's section is None when it is not configured (none of its required variables set).
    """

    warehouse_path: Path  # the DuckDB file; with warehouse_url, the folder of local working files
    inbox_path: Path
    field_mapping: FieldMappingSettings
    publish: PublishSettings
    privacy: PrivacySettings = PrivacySettings()
    retention: RetentionSettings = RetentionSettings()
    http: HttpSettings = HttpSettings()
    graph: GraphSettings | None = None
    salesforce: SalesforceSettings | None = None
    akamai: AkamaiSettings | None = None
    dynamics: DataverseSettings | None = None
    scim: ScimSettings | None = None
    webhook: WebhookSettings | None = None
    connector: ConnectorSettings | None = None
    connector_warehouse_lookup: bool = False
    fast_lane: FastLaneSettings = FastLaneSettings()
    ingest: IngestSettings = IngestSettings()
    alert_webhook_url: str | None = field(default=None, repr=False)
    # a Postgres warehouse (libpq URL, may carry a password) instead of the DuckDB file at warehouse_path
    warehouse_url: str | None = field(default=None, repr=False)
