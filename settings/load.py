"""Reading the environment into typed settings: the one place in idlink's code that parses variables.

Every problem is collected and reported in one ``SettingsError`` that names each variable and what is wrong with
it, never the value (it may be a secret).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from settings.model import (
    ERASURE_CRM_POLICIES,
    AkamaiSettings,
    ConnectorSettings,
    DataverseSettings,
    FastLaneSettings,
    FieldMappingSettings,
    GraphSettings,
    HttpSettings,
    IngestSettings,
    PrivacySettings,
    PublishSettings,
    RetentionSettings,
    SalesforceSettings,
    ScimSettings,
    Settings,
    SettingsError,
    WebhookSettings,
)
from settings.registry import VARIABLES, Kind

REPO_ROOT = Path(__file__).resolve().parent.parent

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

T = TypeVar("T")


def _parse(kind: Kind, raw: str) -> Any:
    """The typed value of ``raw`` (already stripped, not empty); ValueError when it is not of ``kind``."""
    if kind is Kind.HTTPS_URL and not raw.startswith("https://"):
        raise ValueError(kind.value)
    if kind is Kind.URL and not raw.startswith(("https://", "http://")):
        raise ValueError(kind.value)
    if kind in (Kind.URL, Kind.HTTPS_URL):
        return raw.rstrip("/")
    if kind is Kind.POSTGRES_URL:
        if not raw.startswith(("postgresql://", "postgres://")):
            raise ValueError(kind.value)
        return raw
    if kind is Kind.POSITIVE_NUMBER:
        value = float(raw)  # ValueError for text
        if not value > 0:
            raise ValueError(kind.value)
        return value
    if kind in (Kind.POSITIVE_INT, Kind.COUNT):
        value = int(raw)
        if value < (1 if kind is Kind.POSITIVE_INT else 0):
            raise ValueError(kind.value)
        return value
    if kind is Kind.FLAG:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError(kind.value)
    if kind is Kind.LIST:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind is Kind.PATH:
        path = Path(raw).expanduser()
        return path if path.is_absolute() else REPO_ROOT / path
    return raw


class _Reader:
    """Reads variables of the registry from one environment, collecting every problem."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def is_set(self, name: str) -> bool:
        return bool(self.environ.get(name, "").strip())

    def get(self, name: str) -> Any:
        """The typed value, else the registry default (typed), else None."""
        variable = VARIABLES[name]
        raw = self.environ.get(name, "").strip() or variable.default
        if not raw:
            return None
        try:
            return _parse(variable.kind, raw)
        except ValueError:  # int() and float() name the value in their message: only the kind is said
            self.problems.append(f"{name} must be {variable.kind.value}")
            return None

    def section(self, required: tuple[str, ...], build: Callable[[], T]) -> T | None:
        """A system's settings when any of its required variables is set (all of them must be), else None."""
        present = [name for name in required if self.is_set(name)]
        if not present:
            return None
        missing = [name for name in required if name not in present]
        if missing:
            self.problems.extend(f"{name} is required when {present[0]} is set" for name in missing)
            return None
        return build()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """All settings from ``environ`` (default: the process environment). Raises SettingsError naming every
    missing or malformed variable."""
    r = _Reader(os.environ if environ is None else environ)
    http = HttpSettings(ca_bundle=_text(r.get("IDLINK_CA_BUNDLE")), timeout_s=r.get("IDLINK_HTTP_TIMEOUT_S"),
                        retry_max_s=r.get("IDLINK_RETRY_MAX_S"))
    shared = {"ca_bundle": http.ca_bundle, "timeout_s": http.timeout_s, "retry_max_s": http.retry_max_s}
    graph = r.section(("B2C_TENANT_ID", "B2C_CLIENT_ID", "B2C_CLIENT_SECRET"), lambda: GraphSettings(
        tenant_id=r.get("B2C_TENANT_ID"), client_id=r.get("B2C_CLIENT_ID"),
        client_secret=r.get("B2C_CLIENT_SECRET"), authority_host=r.get("B2C_AUTHORITY_HOST"),
        graph_base_url=r.get("GRAPH_BASE_URL"), extensions_app_id=r.get("B2C_EXTENSIONS_APP_ID") or "",
        custom_attributes=r.get("B2C_CUSTOM_ATTRIBUTES"), consent_attribute=r.get("B2C_CONSENT_ATTRIBUTE"),
        contact_id_attribute=r.get("B2C_CONTACT_ID_ATTRIBUTE"), client_id_attribute=r.get("B2C_CLIENT_ID_ATTRIBUTE"),
        **shared))
    salesforce = r.section(("SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"), lambda: SalesforceSettings(
        client_id=r.get("SALESFORCE_CLIENT_ID"), client_secret=r.get("SALESFORCE_CLIENT_SECRET"),
        login_url=r.get("SALESFORCE_LOGIN_URL"), api_version=r.get("SALESFORCE_API_VERSION").lstrip("vV"),
        external_id_field=r.get("SALESFORCE_EXTERNAL_ID_FIELD"),
        extra_contact_fields=r.get("SALESFORCE_CONTACT_FIELDS") or (), **shared))
    akamai = r.section(("AKAMAI_BASE_URL", "AKAMAI_CLIENT_ID", "AKAMAI_CLIENT_SECRET"), lambda: AkamaiSettings(
        base_url=r.get("AKAMAI_BASE_URL"), client_id=r.get("AKAMAI_CLIENT_ID"),
        client_secret=r.get("AKAMAI_CLIENT_SECRET"), entity_type=r.get("AKAMAI_ENTITY_TYPE"), **shared))
    dynamics = r.section(("DATAVERSE_URL", "DATAVERSE_TENANT_ID", "DATAVERSE_CLIENT_ID", "DATAVERSE_CLIENT_SECRET"),
                         lambda: _checked(r, lambda: DataverseSettings(
        url=r.get("DATAVERSE_URL"), tenant_id=r.get("DATAVERSE_TENANT_ID"), client_id=r.get("DATAVERSE_CLIENT_ID"),
        client_secret=r.get("DATAVERSE_CLIENT_SECRET"), authority_host=r.get("DATAVERSE_AUTHORITY_HOST"),
        api_version=r.get("DATAVERSE_API_VERSION").lstrip("vV"),
        external_id_field=r.get("DATAVERSE_EXTERNAL_ID_FIELD"),
        extra_contact_fields=r.get("DATAVERSE_CONTACT_FIELDS") or (), page_size=r.get("DATAVERSE_PAGE_SIZE"),
        batch_size=r.get("DATAVERSE_BATCH_SIZE"), max_concurrent=r.get("DATAVERSE_MAX_CONCURRENT"),
        requests_per_window=r.get("DATAVERSE_REQUESTS_PER_5_MIN"), **shared)))
    scim = r.section(("SCIM_BASE_URL", "SCIM_TOKEN"), lambda: _checked(r, lambda: ScimSettings(
        base_url=r.get("SCIM_BASE_URL"), token=r.get("SCIM_TOKEN"), page_size=r.get("SCIM_PAGE_SIZE"),
        consent_attribute=r.get("SCIM_CONSENT_ATTRIBUTE"), contact_id_attribute=r.get("SCIM_CONTACT_ID_ATTRIBUTE"),
        client_id_attribute=r.get("SCIM_CLIENT_ID_ATTRIBUTE"), **shared)))
    webhook = r.section(("AKAMAI_WEBHOOK_JWKS_URL", "AKAMAI_WEBHOOK_ISSUER", "AKAMAI_WEBHOOK_AUDIENCE"),
                        lambda: WebhookSettings(
        jwks_url=r.get("AKAMAI_WEBHOOK_JWKS_URL"), issuer=r.get("AKAMAI_WEBHOOK_ISSUER"),
        audience=r.get("AKAMAI_WEBHOOK_AUDIENCE"), ca_bundle=http.ca_bundle,
        max_age_s=r.get("GATEWAY_SET_MAX_AGE_S"), clock_skew_s=r.get("GATEWAY_CLOCK_SKEW_S"),
        max_body_bytes=r.get("GATEWAY_MAX_BODY_BYTES")))
    connector = r.section(("CONNECTOR_USERNAME", "CONNECTOR_PASSWORD"), lambda: ConnectorSettings(
        username=r.get("CONNECTOR_USERNAME"), password=r.get("CONNECTOR_PASSWORD"),
        budget_s=r.get("CONNECTOR_BUDGET_S"), consent_attribute=r.get("B2C_CONSENT_ATTRIBUTE"),
        contact_id_attribute=r.get("B2C_CONTACT_ID_ATTRIBUTE"), client_id_attribute=r.get("B2C_CLIENT_ID_ATTRIBUTE"),
        max_body_bytes=r.get("GATEWAY_MAX_BODY_BYTES")))
    warehouse_path = r.get("WAREHOUSE_PATH")
    settings = Settings(
        warehouse_path=warehouse_path,
        warehouse_url=r.get("WAREHOUSE_URL"),
        inbox_path=r.get("GATEWAY_INBOX_PATH"),
        field_mapping=FieldMappingSettings(path=r.get("IDLINK_FIELD_MAPPING"), customer=r.get("IDLINK_CUSTOMER"),
                                           environment=r.get("IDLINK_ENVIRONMENT")),
        # beside the warehouse unless set: each warehouse (a test's, a benchmark's) publishes its own
        publish=PublishSettings(analyst_db_path=r.get("ANALYST_DB_PATH") or _beside(warehouse_path, "analyst"),
                                compliance_db_path=r.get("COMPLIANCE_DB_PATH") or _beside(warehouse_path,
                                                                                          "compliance"),
                                steward_db_path=r.get("STEWARD_DB_PATH"), hash_salt=r.get("ANALYST_HASH_SALT")),
        privacy=PrivacySettings(crm_policy=r.get("ERASURE_CRM_POLICY"), erase_deleted=r.get("IDLINK_ERASE_DELETED")),
        retention=RetentionSettings(tombstone_days=r.get("RETENTION_TOMBSTONE_DAYS"),
                                    snapshot_days=r.get("RETENTION_SNAPSHOT_DAYS"),
                                    sync_log_days=r.get("RETENTION_SYNC_LOG_DAYS"),
                                    dead_letter_days=r.get("RETENTION_DEAD_LETTER_DAYS"),
                                    inbox_days=r.get("RETENTION_INBOX_DAYS")),
        http=http, graph=graph, salesforce=salesforce, akamai=akamai, dynamics=dynamics, scim=scim,
        webhook=webhook, connector=connector,
        connector_warehouse_lookup=r.get("CONNECTOR_WAREHOUSE_LOOKUP"),
        fast_lane=FastLaneSettings(create_contacts=r.get("FAST_LANE_CREATE_CONTACTS"),
                                   poll_interval_s=r.get("FAST_LANE_POLL_S"), workers=r.get("FAST_LANE_WORKERS"),
                                   call_budget_s=r.get("FAST_LANE_CALL_BUDGET_S")),
        ingest=IngestSettings(workers=r.get("IDLINK_INGEST_WORKERS"), dlt_progress=r.get("IDLINK_DLT_PROGRESS")),
        alert_webhook_url=r.get("IDLINK_ALERT_WEBHOOK_URL"),
    )
    if settings.privacy.crm_policy not in ERASURE_CRM_POLICIES:
        r.problems.append(f"ERASURE_CRM_POLICY must be one of {', '.join(ERASURE_CRM_POLICIES)}")
    if r.problems:
        raise SettingsError("; ".join(r.problems))
    return settings


def _checked(reader: _Reader, build: Callable[[], T]) -> T | None:
    """A section whose own checks (``__post_init__``) failed adds its problem to the others instead of raising."""
    named = len(reader.problems)
    try:
        return build()
    except SettingsError as exc:
        reader.problems.append(str(exc))
        return None
    except (AttributeError, TypeError, ValueError):
        if len(reader.problems) > named:  # a malformed variable is named already; its value was None
            return None
        raise


def _beside(warehouse_path: Path | None, name: str) -> Path | None:
    return None if warehouse_path is None else warehouse_path.with_name(f"{name}.duckdb")


def _text(value: Path | str | None) -> str | None:
    return None if value is None else str(value)
