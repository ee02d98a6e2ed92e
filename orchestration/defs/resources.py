"""Dagster resources: where the warehouse and the inbox live and how to reach each outside system.

They are built once, at the edge, from the typed settings (``settings.load_settings``): plain values appear as
resource configuration in the UI; every secret stays a ``dg.EnvVar`` (Dagster shows its name, never its value, and
resolves it when a run starts). ``.settings()`` hands the plain settings objects to ``clients/``, ``ingestion/``
and ``reverse_etl/``, which know nothing of Dagster.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_dlt import DagsterDltResource
from dbt.version import __version__ as dbt_version
from packaging import version
from pydantic import Field

from inbox import Inbox
from reverse_etl import FieldMapping, load_field_mapping
from settings import (
    AkamaiSettings,
    DataverseSettings,
    FieldMappingSettings,
    GraphSettings,
    HttpSettings,
    PrivacySettings,
    PublishSettings,
    RetentionSettings,
    SalesforceSettings,
    ScimSettings,
    Settings,
    load_settings,
)
from warehouse import Connection, Warehouse

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse shared by dlt, dbt, the reverse-ETL writers and publishing: the DuckDB file at
    ``warehouse_path``, or the Postgres database at ``warehouse_url`` (a secret: an EnvVar). Connections are
    opened per use, never held between runs or at import time.

    Every step that writes holds ``exclusive(scope)`` for its whole run (``warehouse.scopes``). DuckDB admits one
    writing process per file: such steps also run in pool `warehouse` (limit 1 in deploy/dagster.yaml), and the
    lock beside the file keeps an instance without that limit (a fresh DAGSTER_HOME) from starting two at once.
    On Postgres only steps of the same scope wait for each other, so the pool's limit can be raised
    (deploy/dagster.postgres.yaml)."""

    warehouse_path: str
    warehouse_url: str = Field(default="", repr=False)  # may carry a password: never in repr or logs

    @property
    def warehouse(self) -> Warehouse:
        path = Path(self.warehouse_path)
        return Warehouse(path if path.is_absolute() else REPO_ROOT / path, self.warehouse_url or None)

    @property
    def path(self) -> str:
        """The DuckDB file (on Postgres: where the local working files go, beside it)."""
        return str(self.warehouse.path)

    def exclusive(self, scope: str, log: logging.Logger | dg.DagsterLogManager | None = None
                  ) -> contextlib.AbstractContextManager[None]:
        return self.warehouse.exclusive(scope, log)

    def connect(self, read_only: bool = False) -> Connection:
        return self.warehouse.connect(read_only)


class InboxResource(dg.ConfigurableResource):
    """The event inbox the gateway writes and the sensors and reverse-ETL assets read."""

    path: str

    @contextlib.contextmanager
    def open(self) -> Iterator[Inbox]:
        inbox = Inbox(self.path)
        try:
            yield inbox
        finally:
            inbox.close()


class HttpTuning(dg.ConfigurableResource):
    """Shared HTTP settings mixed into every API resource."""

    ca_bundle: str | None = None
    http_timeout_s: float = HttpSettings.timeout_s
    retry_max_s: float = HttpSettings.retry_max_s

    def _http(self) -> dict:
        return {"ca_bundle": self.ca_bundle or None, "timeout_s": self.http_timeout_s,
                "retry_max_s": self.retry_max_s}


class GraphResource(HttpTuning):
    """Azure AD B2C / Entra External ID through Microsoft Graph (client credentials)."""

    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = Field(default="", repr=False)  # a secret: never in repr or logs
    authority_host: str = GraphSettings.authority_host
    graph_base_url: str = GraphSettings.graph_base_url
    extensions_app_id: str = ""
    custom_attributes: list[str] = Field(default_factory=lambda: list(GraphSettings.custom_attributes))
    consent_attribute: str = GraphSettings.consent_attribute
    contact_id_attribute: str = GraphSettings.contact_id_attribute

    @property
    def configured(self) -> bool:
        return bool(self.tenant_id and self.client_id and self.client_secret)

    def settings(self) -> GraphSettings:
        return GraphSettings(
            tenant_id=self.tenant_id, client_id=self.client_id, client_secret=self.client_secret,
            authority_host=self.authority_host, graph_base_url=self.graph_base_url,
            extensions_app_id=self.extensions_app_id, custom_attributes=tuple(self.custom_attributes),
            consent_attribute=self.consent_attribute, contact_id_attribute=self.contact_id_attribute,
            **self._http())


class SalesforceResource(HttpTuning):
    """Salesforce through a connected app (client-credentials flow against a configurable login host)."""

    client_id: str = ""
    client_secret: str = Field(default="", repr=False)  # a secret: never in repr or logs
    login_url: str = SalesforceSettings.login_url
    api_version: str = SalesforceSettings.api_version
    external_id_field: str = SalesforceSettings.external_id_field
    extra_contact_fields: list[str] = Field(default_factory=list)

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def settings(self) -> SalesforceSettings:
        return SalesforceSettings(
            client_id=self.client_id, client_secret=self.client_secret, login_url=self.login_url,
            api_version=self.api_version, external_id_field=self.external_id_field,
            extra_contact_fields=tuple(self.extra_contact_fields), **self._http())


class AkamaiResource(HttpTuning):
    """Akamai Identity Cloud Entity API (optional second identity provider)."""

    base_url: str = ""
    client_id: str = ""
    client_secret: str = Field(default="", repr=False)  # a secret: never in repr or logs
    entity_type: str = AkamaiSettings.entity_type

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.client_id and self.client_secret)

    def settings(self) -> AkamaiSettings:
        return AkamaiSettings(base_url=self.base_url, client_id=self.client_id, client_secret=self.client_secret,
                              entity_type=self.entity_type, **self._http())


class FieldMappingResource(dg.ConfigurableResource):
    """Which entry of the reverse-ETL field mapping file applies."""

    path: str
    customer: str = FieldMappingSettings.customer
    environment: str = FieldMappingSettings.environment

    def mapping(self) -> FieldMapping:
        """Every client's entry of the configured customer and environment (each identity is written through
        the entry of the client it registered through)."""
        return load_field_mapping(self.path, self.customer, self.environment)


class IngestTuningResource(dg.ConfigurableResource):
    """How the dlt loads run: worker processes normalising large loads (None = usable CPUs), dlt progress logs."""

    workers: int | None = None
    dlt_progress: bool = False


class PublishingResource(dg.ConfigurableResource):
    """Where each role's published database goes (``publishing``); the salt of the keyed hashes is a secret."""

    analyst_db_path: str
    compliance_db_path: str
    steward_db_path: str = ""
    hash_salt: str = ""

    def settings(self) -> PublishSettings:
        return PublishSettings(
            analyst_db_path=_absolute(self.analyst_db_path), compliance_db_path=_absolute(self.compliance_db_path),
            steward_db_path=_absolute(self.steward_db_path) if self.steward_db_path else None,
            hash_salt=self.hash_salt or None)


def _absolute(path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else REPO_ROOT / path


class PrivacyResource(dg.ConfigurableResource):
    """How erasure treats the CRM (ERASURE_CRM_POLICY) and identities their provider deleted, and how many days
    each kind of record is kept (RETENTION_*)."""

    crm_policy: str = PrivacySettings.crm_policy
    erase_deleted: bool = False
    tombstone_days: int = RetentionSettings.tombstone_days
    snapshot_days: int = RetentionSettings.snapshot_days
    sync_log_days: int = RetentionSettings.sync_log_days
    dead_letter_days: int = RetentionSettings.dead_letter_days
    inbox_days: int = RetentionSettings.inbox_days

    def retention(self) -> RetentionSettings:
        return RetentionSettings(tombstone_days=self.tombstone_days, snapshot_days=self.snapshot_days,
                                 sync_log_days=self.sync_log_days, dead_letter_days=self.dead_letter_days,
                                 inbox_days=self.inbox_days)


class AlertResource(dg.ConfigurableResource):
    """Where run-failure alerts are posted (nothing when unset)."""

    webhook_url: str = Field(default="", repr=False)  # may carry a token: never in repr or logs
    ca_bundle: str | None = None


class ScimResource(HttpTuning):
    """A SCIM 2.0 directory (optional identity provider) read with a bearer token."""

    base_url: str = ""
    token: str = ""
    page_size: int = ScimSettings.page_size
    consent_attribute: str = ScimSettings.consent_attribute
    contact_id_attribute: str = ScimSettings.contact_id_attribute

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.token)

    def settings(self) -> ScimSettings:
        return ScimSettings(base_url=self.base_url, token=self.token, page_size=self.page_size,
                            consent_attribute=self.consent_attribute, contact_id_attribute=self.contact_id_attribute,
                            **self._http())


class DataverseResource(HttpTuning):
    """Dynamics 365 / Dataverse through an app registration (client credentials; optional second CRM)."""

    url: str = ""
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    authority_host: str = DataverseSettings.authority_host
    api_version: str = DataverseSettings.api_version
    external_id_field: str = DataverseSettings.external_id_field
    extra_contact_fields: list[str] = Field(default_factory=list)
    page_size: int = DataverseSettings.page_size
    batch_size: int = DataverseSettings.batch_size
    max_concurrent: int = DataverseSettings.max_concurrent
    requests_per_window: int = DataverseSettings.requests_per_window

    @property
    def configured(self) -> bool:
        return bool(self.url and self.tenant_id and self.client_id and self.client_secret)

    def settings(self) -> DataverseSettings:
        return DataverseSettings(
            url=self.url, tenant_id=self.tenant_id, client_id=self.client_id, client_secret=self.client_secret,
            authority_host=self.authority_host, api_version=self.api_version,
            external_id_field=self.external_id_field, extra_contact_fields=tuple(self.extra_contact_fields),
            page_size=self.page_size, batch_size=self.batch_size, max_concurrent=self.max_concurrent,
            requests_per_window=self.requests_per_window, **self._http())


def configured_crms(salesforce: SalesforceResource, dynamics: DataverseResource) -> list[str]:
    """The CRMs idlink links and writes to: the configured ones (Salesforce when none is, as it always was)."""
    crms = [name for name, resource in (("salesforce", salesforce), ("dynamics", dynamics)) if resource.configured]
    return crms or ["salesforce"]


class LinkingDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource without the ``dbt --version`` subprocess it starts once per run (2-4 s on a
    small worker, every targeted run): the dbt it runs is the dbt-core installed beside this interpreter
    (``make setup``), whose version is known without asking."""

    @cached_property
    def _cli_version(self):  # overrides dagster-dbt's (pinned <0.30); tests check it is still consulted
        return version.Version(dbt_version)


def _dbt_executable() -> str:
    """The dbt installed beside this interpreter, so runs work without the virtualenv on PATH."""
    for candidate in (Path(sys.executable).parent / "dbt", Path(sys.prefix) / "bin" / "dbt"):
        if candidate.exists():
            return str(candidate)
    return "dbt"


def _secret(name: str, value: str | None) -> str | dg.EnvVar:
    """A secret as an EnvVar (Dagster resolves it at run time and never shows it); "" when it is not set."""
    return dg.EnvVar(name) if value else ""


def _http(http: HttpSettings) -> dict:
    return {"ca_bundle": http.ca_bundle, "http_timeout_s": http.timeout_s, "retry_max_s": http.retry_max_s}


def build_resources(settings: Settings) -> dict:
    """Every resource, from settings read once at the edge; secrets stay EnvVars."""
    graph, salesforce, akamai = settings.graph, settings.salesforce, settings.akamai
    scim, dynamics = settings.scim, settings.dynamics
    http = _http(settings.http)
    return {
        "warehouse": WarehouseResource(warehouse_path=str(settings.warehouse_path),
                                       warehouse_url=_secret("WAREHOUSE_URL", settings.warehouse_url)),
        "inbox": InboxResource(path=str(settings.inbox_path)),
        "field_mapping": FieldMappingResource(path=str(settings.field_mapping.path),
                                              customer=settings.field_mapping.customer,
                                              environment=settings.field_mapping.environment),
        "graph": GraphResource(**http) if graph is None else GraphResource(
            tenant_id=graph.tenant_id, client_id=graph.client_id,
            client_secret=_secret("B2C_CLIENT_SECRET", graph.client_secret),
            authority_host=graph.authority_host, graph_base_url=graph.graph_base_url,
            extensions_app_id=graph.extensions_app_id, custom_attributes=list(graph.custom_attributes),
            consent_attribute=graph.consent_attribute, contact_id_attribute=graph.contact_id_attribute, **http),
        "salesforce": SalesforceResource(**http) if salesforce is None else SalesforceResource(
            client_id=salesforce.client_id,
            client_secret=_secret("SALESFORCE_CLIENT_SECRET", salesforce.client_secret),
            login_url=salesforce.login_url, api_version=salesforce.api_version,
            external_id_field=salesforce.external_id_field,
            extra_contact_fields=list(salesforce.extra_contact_fields), **http),
        "akamai": AkamaiResource(**http) if akamai is None else AkamaiResource(
            base_url=akamai.base_url, client_id=akamai.client_id,
            client_secret=_secret("AKAMAI_CLIENT_SECRET", akamai.client_secret), entity_type=akamai.entity_type,
            **http),
        "scim": ScimResource(**http) if scim is None else ScimResource(
            base_url=scim.base_url, token=_secret("SCIM_TOKEN", scim.token), page_size=scim.page_size,
            consent_attribute=scim.consent_attribute, contact_id_attribute=scim.contact_id_attribute, **http),
        "dynamics": DataverseResource(**http) if dynamics is None else DataverseResource(
            url=dynamics.url, tenant_id=dynamics.tenant_id, client_id=dynamics.client_id,
            client_secret=_secret("DATAVERSE_CLIENT_SECRET", dynamics.client_secret),
            authority_host=dynamics.authority_host, api_version=dynamics.api_version,
            external_id_field=dynamics.external_id_field, extra_contact_fields=list(dynamics.extra_contact_fields),
            page_size=dynamics.page_size, batch_size=dynamics.batch_size, max_concurrent=dynamics.max_concurrent,
            requests_per_window=dynamics.requests_per_window, **http),
        "ingest_tuning": IngestTuningResource(workers=settings.ingest.workers,
                                              dlt_progress=settings.ingest.dlt_progress),
        "publishing": PublishingResource(
            analyst_db_path=str(settings.publish.analyst_db_path),
            compliance_db_path=str(settings.publish.compliance_db_path),
            steward_db_path=str(settings.publish.steward_db_path or ""),
            hash_salt=_secret("ANALYST_HASH_SALT", settings.publish.hash_salt)),
        "privacy": PrivacyResource(crm_policy=settings.privacy.crm_policy,
                                   erase_deleted=settings.privacy.erase_deleted,
                                   **dataclasses.asdict(settings.retention)),
        "alerts": AlertResource(webhook_url=_secret("IDLINK_ALERT_WEBHOOK_URL", settings.alert_webhook_url),
                                ca_bundle=settings.http.ca_bundle),
        "dbt": LinkingDbtCliResource(
            project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=_dbt_executable()
        ),
        "dlt": DagsterDltResource(),
    }


@dg.definitions
def resources() -> dg.Definitions:
    """The Dagster edge: the environment is read here, once per load of the code location."""
    return dg.Definitions(resources=build_resources(load_settings()))
