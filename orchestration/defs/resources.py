"""Dagster resources: where the warehouse lives and how to reach each outside system.

`build_resources` binds every field to an environment variable (`EnvVar`); the resources only turn
them into the plain settings objects that `clients/`, `ingestion/` and `reverse_etl/` use without Dagster.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from dagster_dlt import DagsterDltResource
from dbt.version import __version__ as dbt_version
from packaging import version

from clients.akamai import AkamaiSettings
from clients.settings import GraphSettings, SalesforceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _float(value: str | None, default: float) -> float:
    return float(value) if value else default


class WarehouseResource(dg.ConfigurableResource):
    """The single DuckDB file shared by dlt, dbt and the reverse-ETL writers (one writer at a time: pool
    `warehouse`). Connections are opened per use, never held between runs or at import time."""

    warehouse_path: str = "data/warehouse.duckdb"

    @property
    def path(self) -> str:
        path = Path(self.warehouse_path)
        if not path.is_absolute():
            path = REPO_ROOT / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not Path(self.path).exists():
            raise FileNotFoundError(f"warehouse {self.path} does not exist yet: run ingest_and_link first")
        conn = duckdb.connect(self.path, read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()


class HttpTuning(dg.ConfigurableResource):
    """Shared HTTP settings mixed into every API resource."""

    ca_bundle: str | None = None
    http_timeout_s: str | None = None
    retry_max_s: str | None = None


class GraphResource(HttpTuning):
    """Azure AD B2C / Entra External ID through Microsoft Graph (client credentials)."""

    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    authority_host: str = "https://login.microsoftonline.com"
    graph_base_url: str = "https://graph.microsoft.com"
    extensions_app_id: str = ""
    custom_attributes: str = "CrmSyncConsent,CrmContactId"
    consent_attribute: str = "CrmSyncConsent"
    contact_id_attribute: str = "CrmContactId"

    @property
    def configured(self) -> bool:
        return bool(self.tenant_id and self.client_id and self.client_secret)

    def settings(self) -> GraphSettings:
        return GraphSettings(
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            client_secret=self.client_secret,
            authority_host=self.authority_host,
            graph_base_url=self.graph_base_url,
            extensions_app_id=self.extensions_app_id,
            custom_attributes=_split(self.custom_attributes),
            consent_attribute=self.consent_attribute,
            contact_id_attribute=self.contact_id_attribute,
            ca_bundle=self.ca_bundle or None,
            timeout_s=_float(self.http_timeout_s, 30.0),
            retry_max_s=_float(self.retry_max_s, 120.0),
        )


class SalesforceResource(HttpTuning):
    """Salesforce through a connected app (client-credentials flow against a configurable login host)."""

    client_id: str = ""
    client_secret: str = ""
    login_url: str = "https://login.salesforce.com"
    api_version: str = "62.0"
    external_id_field: str = "External_User_Id__c"
    extra_contact_fields: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def settings(self) -> SalesforceSettings:
        return SalesforceSettings(
            client_id=self.client_id,
            client_secret=self.client_secret,
            login_url=self.login_url,
            api_version=self.api_version,
            external_id_field=self.external_id_field,
            extra_contact_fields=_split(self.extra_contact_fields),
            ca_bundle=self.ca_bundle or None,
            timeout_s=_float(self.http_timeout_s, 30.0),
            retry_max_s=_float(self.retry_max_s, 120.0),
        )


class AkamaiResource(HttpTuning):
    """Akamai Identity Cloud Entity API (optional second identity provider)."""

    base_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    entity_type: str = "user"

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.client_id and self.client_secret)

    def settings(self) -> AkamaiSettings:
        return AkamaiSettings(
            base_url=self.base_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            entity_type=self.entity_type,
            ca_bundle=self.ca_bundle or None,
            timeout_s=_float(self.http_timeout_s, 30.0),
            retry_max_s=_float(self.retry_max_s, 120.0),
        )


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


def _env(name: str, default: str = "") -> str | dg.EnvVar:
    """An EnvVar when the variable is set, else the default: Dagster refuses an EnvVar that is unset."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def _http_tuning() -> dict:
    return {
        "ca_bundle": _env("IDLINK_CA_BUNDLE") or None,
        "http_timeout_s": _env("IDLINK_HTTP_TIMEOUT_S") or None,
        "retry_max_s": _env("IDLINK_RETRY_MAX_S") or None,
    }


def build_resources() -> dict:
    """Resources bound from the environment (secrets stay EnvVars: Dagster never shows their values)."""
    return {
        "warehouse": WarehouseResource(warehouse_path=_env("WAREHOUSE_PATH", "data/warehouse.duckdb")),
        "graph": GraphResource(
            tenant_id=_env("B2C_TENANT_ID"),
            client_id=_env("B2C_CLIENT_ID"),
            client_secret=_env("B2C_CLIENT_SECRET"),
            authority_host=_env("B2C_AUTHORITY_HOST", "https://login.microsoftonline.com"),
            graph_base_url=_env("GRAPH_BASE_URL", "https://graph.microsoft.com"),
            extensions_app_id=_env("B2C_EXTENSIONS_APP_ID"),
            custom_attributes=_env("B2C_CUSTOM_ATTRIBUTES", "CrmSyncConsent,CrmContactId"),
            consent_attribute=_env("B2C_CONSENT_ATTRIBUTE", "CrmSyncConsent"),
            contact_id_attribute=_env("B2C_CONTACT_ID_ATTRIBUTE", "CrmContactId"),
            **_http_tuning(),
        ),
        "salesforce": SalesforceResource(
            client_id=_env("SALESFORCE_CLIENT_ID"),
            client_secret=_env("SALESFORCE_CLIENT_SECRET"),
            login_url=_env("SALESFORCE_LOGIN_URL", "https://login.salesforce.com"),
            api_version=_env("SALESFORCE_API_VERSION", "62.0"),
            external_id_field=_env("SALESFORCE_EXTERNAL_ID_FIELD", "External_User_Id__c"),
            extra_contact_fields=_env("SALESFORCE_CONTACT_FIELDS"),
            **_http_tuning(),
        ),
        "akamai": AkamaiResource(
            base_url=_env("AKAMAI_BASE_URL"),
            client_id=_env("AKAMAI_CLIENT_ID"),
            client_secret=_env("AKAMAI_CLIENT_SECRET"),
            entity_type=_env("AKAMAI_ENTITY_TYPE", "user"),
            **_http_tuning(),
        ),
        "dbt": LinkingDbtCliResource(
            project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=_dbt_executable()
        ),
        "dlt": DagsterDltResource(),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
