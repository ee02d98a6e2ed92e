"""Every environment variable idlink reads, in one place: name, default, whether it is a secret, and what it does.

The typed settings (``settings.model``) take their defaults from here, ``settings.load`` parses the environment
against it, and a test holds the table in docs/architecture.md and the lines of .env.example to it. A variable
that is not in this registry is not configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """How a value is read; a malformed value is refused with the variable's name, never its value."""

    TEXT = "text"
    URL = "an http(s) URL"
    HTTPS_URL = "an https URL"
    PATH = "a path"
    POSITIVE_NUMBER = "a positive number"
    POSITIVE_INT = "a positive integer"
    COUNT = "an integer >= 0"
    FLAG = "true or false"
    LIST = "a comma-separated list"
    POSTGRES_URL = "a postgresql:// URL"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as it would be written in the environment; "" = none
    description: str
    used_by: str
    kind: Kind = Kind.TEXT
    secret: bool = False
    # what the docs say when there is no default value to write down (e.g. "system trust store")
    when_unset: str = ""

    @property
    def documented_default(self) -> str:
        if self.default:
            return f"`{self.default}`"
        return self.when_unset or "–"


def _vars(*variables: Variable) -> dict[str, Variable]:
    return {v.name: v for v in variables}


_WAREHOUSE = "every stage"
_CLIENTS = "every API client"
_B2C = "B2C ingestion and writer, fast lane"
_SALESFORCE = "Salesforce ingestion and writer, gateway"
_AKAMAI = "Akamai ingestion and writer, fast lane"
_DYNAMICS = "Dynamics ingestion and writer"
_SCIM = "SCIM ingestion"
# idlink's SCIM extension schema: where a directory keeps the consent and the carried CRM id by default
IDLINK_SCIM_EXTENSION = "urn:ietf:params:scim:schemas:extension:idlink:2.0:User"
_GATEWAY = "gateway"
_FAST_LANE = "fast lane"
_MAKE_DEV = "`make dev`"
_DBT = "dbt (`dbt_project/profiles.yml`)"
_PUBLISHING = "publishing"
_PRIVACY = "erasure and retention"

VARIABLES: dict[str, Variable] = _vars(
    # -- the warehouse and shared HTTP settings
    Variable("WAREHOUSE_PATH", "data/warehouse.duckdb",
             "the DuckDB file shared by dlt, dbt and the reverse-ETL writers (relative paths are taken against "
             "the repository root); with `WAREHOUSE_URL`, its folder keeps only local working files (dlt "
             "pipeline state, dbt artifacts)", _WAREHOUSE, Kind.PATH),
    Variable("WAREHOUSE_URL", "", "a Postgres warehouse instead of the DuckDB file "
             "(`postgresql://user:password@host:5432/idlink`): dlt, dbt, the reverse-ETL state and locks, "
             "publishing and the link summaries all use it; several runs and readers may work at once",
             _WAREHOUSE, Kind.POSTGRES_URL, secret=True, when_unset="– (the DuckDB file at `WAREHOUSE_PATH`)"),
    Variable("IDLINK_CA_BUNDLE", "", "extra CA bundle file trusted by every HTTPS client (corporate proxies, "
             "the sandbox)", _CLIENTS, when_unset="system trust store"),
    Variable("IDLINK_HTTP_TIMEOUT_S", "30", "time limit of one HTTP request, seconds", _CLIENTS,
             Kind.POSITIVE_NUMBER),
    Variable("IDLINK_RETRY_MAX_S", "120", "total retry time of one call, seconds", _CLIENTS, Kind.POSITIVE_NUMBER),
    # -- Azure AD B2C / Entra External ID
    Variable("B2C_TENANT_ID", "", "tenant of the app registration; B2C is configured when this, "
             "`B2C_CLIENT_ID` and `B2C_CLIENT_SECRET` are set", _B2C, when_unset="– (B2C off)"),
    Variable("B2C_CLIENT_ID", "", "client id of the app registration (client credentials)", _B2C),
    Variable("B2C_CLIENT_SECRET", "", "client secret of the app registration", _B2C, secret=True),
    Variable("B2C_AUTHORITY_HOST", "https://login.microsoftonline.com",
             "token authority host (msal; instance discovery is off for other hosts)", _B2C, Kind.HTTPS_URL),
    Variable("GRAPH_BASE_URL", "https://graph.microsoft.com", "Microsoft Graph; the client appends `/v1.0`", _B2C,
             Kind.URL),
    Variable("B2C_EXTENSIONS_APP_ID", "", "client id of the b2c-extensions-app (dashes allowed), for "
             "`extension_<id>_<Name>` attributes", _B2C),
    Variable("B2C_CUSTOM_ATTRIBUTES", "CrmSyncConsent,CrmSyncConsentAt,CrmSyncConsentExpiresAt,MarketingConsent,"
             "MarketingConsentAt,MarketingConsentExpiresAt,CrmContactId", "custom attributes read from users (each "
             "consent purpose's answer, time given and expiry: dbt var `consent_purposes`)", _B2C, Kind.LIST),
    Variable("B2C_CONSENT_ATTRIBUTE", "CrmSyncConsent", "the boolean consent attribute", _B2C),
    Variable("B2C_CONTACT_ID_ATTRIBUTE", "CrmContactId", "the attribute the CRM contact id is written to", _B2C),
    Variable("B2C_CLIENT_ID_ATTRIBUTE", "SignUpClientId", "the attribute holding the client id of the application "
             "a user signed up through (the sign-up connector returns it as a claim; read when it is one of "
             "`B2C_CUSTOM_ATTRIBUTES`): which field-mapping entry applies to the user", _B2C),
    # -- Salesforce
    Variable("SALESFORCE_LOGIN_URL", "https://login.salesforce.com", "OAuth token host (your My Domain URL)",
             _SALESFORCE, Kind.URL),
    Variable("SALESFORCE_CLIENT_ID", "", "consumer key of the connected app; Salesforce is configured when this "
             "and `SALESFORCE_CLIENT_SECRET` are set", _SALESFORCE, when_unset="– (Salesforce off)"),
    Variable("SALESFORCE_CLIENT_SECRET", "", "consumer secret of the connected app", _SALESFORCE, secret=True),
    Variable("SALESFORCE_API_VERSION", "62.0", "REST API version", _SALESFORCE),
    Variable("SALESFORCE_EXTERNAL_ID_FIELD", "External_User_Id__c",
             "external-ID field on Contact that holds the identity id", _SALESFORCE),
    Variable("SALESFORCE_CONTACT_FIELDS", "HasOptedOutOfEmail", "extra Contact fields to ingest, validated "
             "against describe (the fields consent purposes are carried as: dbt var `consent_purposes`)",
             _SALESFORCE, Kind.LIST),
    # -- Dynamics 365 / Dataverse
    Variable("DATAVERSE_URL", "", "the environment URL (`https://<org>.crm.dynamics.com`, also the token's resource); "
             "Dynamics is configured when this, `DATAVERSE_TENANT_ID`, `DATAVERSE_CLIENT_ID` and "
             "`DATAVERSE_CLIENT_SECRET` are set", _DYNAMICS, Kind.HTTPS_URL, when_unset="– (Dynamics off)"),
    Variable("DATAVERSE_TENANT_ID", "", "Entra tenant of the environment's app registration", _DYNAMICS),
    Variable("DATAVERSE_CLIENT_ID", "", "client id of the app registration (an application user of the "
             "environment)", _DYNAMICS),
    Variable("DATAVERSE_CLIENT_SECRET", "", "client secret of the app registration", _DYNAMICS, secret=True),
    Variable("DATAVERSE_AUTHORITY_HOST", "https://login.microsoftonline.com", "token authority host (msal; instance "
             "discovery is off for other hosts)", _DYNAMICS, Kind.HTTPS_URL),
    Variable("DATAVERSE_API_VERSION", "9.2", "Web API version", _DYNAMICS),
    Variable("DATAVERSE_EXTERNAL_ID_FIELD", "idlink_identityid", "contact column that holds the identity id; an "
             "active alternate key must consist of it alone", _DYNAMICS),
    Variable("DATAVERSE_CONTACT_FIELDS", "", "extra contact columns to ingest, checked against the table's metadata",
             _DYNAMICS, Kind.LIST),
    Variable("DATAVERSE_PAGE_SIZE", "5000", "`Prefer: odata.maxpagesize` of reads (at most 5000)", _DYNAMICS,
             Kind.POSITIVE_INT),
    Variable("DATAVERSE_BATCH_SIZE", "1000", "change sets per `$batch` of the writer (at most 1000)", _DYNAMICS,
             Kind.POSITIVE_INT),
    Variable("DATAVERSE_MAX_CONCURRENT", "8", "requests in flight at once (service protection refuses more than 52)",
             _DYNAMICS, Kind.POSITIVE_INT),
    Variable("DATAVERSE_REQUESTS_PER_5_MIN", "6000", "requests per 5-minute window (service protection's default); "
             "a 429 also pauses every request for its `Retry-After`", _DYNAMICS, Kind.POSITIVE_INT),
    # -- a SCIM 2.0 directory
    Variable("SCIM_BASE_URL", "", "the directory's SCIM endpoint (`https://<host>/scim/v2`; plain http only to a "
             "loopback host); SCIM is configured when this and `SCIM_TOKEN` are set", _SCIM, Kind.URL,
             when_unset="– (SCIM off)"),
    Variable("SCIM_TOKEN", "", "bearer token of the directory", _SCIM, secret=True),
    Variable("SCIM_PAGE_SIZE", "200", "`count` per `/Users` page (lowered to the server's `filter.maxResults`)",
             _SCIM, Kind.POSITIVE_INT),
    Variable("SCIM_CONSENT_ATTRIBUTE", f"{IDLINK_SCIM_EXTENSION}:crmSyncConsent", "SCIM attribute path of the "
             "CRM-sync consent", _SCIM),
    Variable("SCIM_CONTACT_ID_ATTRIBUTE", f"{IDLINK_SCIM_EXTENSION}:crmContactId", "SCIM attribute path of the CRM "
             "contact id a user carries", _SCIM),
    Variable("SCIM_CLIENT_ID_ATTRIBUTE", f"{IDLINK_SCIM_EXTENSION}:clientId", "SCIM attribute path of the client id "
             "of the application a user was provisioned for: which field-mapping entry applies to the user", _SCIM),
    # -- reverse-ETL field mapping
    Variable("IDLINK_FIELD_MAPPING", "config/field_mapping.json", "which remote field each value is written to "
             "(customer > environment > client id)", "reverse ETL, fast lane", Kind.PATH),
    Variable("IDLINK_CUSTOMER", "default", "customer entry of the field mapping", "reverse ETL, fast lane"),
    Variable("IDLINK_ENVIRONMENT", "dev", "environment entry of the field mapping", "reverse ETL, fast lane"),
    # -- Akamai Identity Cloud and its webhooks
    Variable("AKAMAI_BASE_URL", "", "Entity API base URL; Akamai is configured when this, `AKAMAI_CLIENT_ID` and "
             "`AKAMAI_CLIENT_SECRET` are set", _AKAMAI, Kind.URL, when_unset="– (Akamai off)"),
    Variable("AKAMAI_CLIENT_ID", "", "API client with `entity` access", _AKAMAI),
    Variable("AKAMAI_CLIENT_SECRET", "", "secret of the API client", _AKAMAI, secret=True),
    Variable("AKAMAI_ENTITY_TYPE", "user", "entity type of the identities", _AKAMAI),
    Variable("AKAMAI_WEBHOOK_JWKS_URL", "", "JWKS that signs the webhook SETs; the listener is mounted when this, "
             "the issuer and the audience are set", _GATEWAY, Kind.URL, when_unset="– (listener off)"),
    Variable("AKAMAI_WEBHOOK_ISSUER", "", "expected `iss` of the SETs", _GATEWAY),
    Variable("AKAMAI_WEBHOOK_AUDIENCE", "", "expected `aud` of the SETs (the subscription endpoint)", _GATEWAY),
    Variable("GATEWAY_SET_MAX_AGE_S", "90000", "oldest accepted SET, seconds (Akamai redelivers for up to a day)",
             _GATEWAY, Kind.POSITIVE_NUMBER),
    Variable("GATEWAY_CLOCK_SKEW_S", "30", "clock skew allowed when checking SET times, seconds", _GATEWAY,
             Kind.POSITIVE_NUMBER),
    Variable("GATEWAY_MAX_BODY_BYTES", "65536", "largest accepted request body", _GATEWAY, Kind.POSITIVE_INT),
    # -- event gateway and B2C API connector
    Variable("GATEWAY_INBOX_PATH", "data/inbox.sqlite3", "the durable event inbox the gateway writes and the "
             "sensors read (relative paths against the repository root)", "gateway, fast lane, sensors",
             Kind.PATH),
    Variable("CONNECTOR_USERNAME", "", "basic-auth user of the B2C API connector; the connector is mounted when "
             "this and `CONNECTOR_PASSWORD` are set", _GATEWAY, when_unset="– (connector off)"),
    Variable("CONNECTOR_PASSWORD", "", "basic-auth password of the B2C API connector", _GATEWAY, secret=True),
    Variable("CONNECTOR_BUDGET_S", "2", "the connector answers `Continue` within this time even when the CRM is "
             "slow or down, seconds", _GATEWAY, Kind.POSITIVE_NUMBER),
    Variable("CONNECTOR_WAREHOUSE_LOOKUP", "false", "also look the identity up in the link table (needs the "
             "warehouse not locked by a writer)", _GATEWAY, Kind.FLAG),
    # -- fast lane
    Variable("FAST_LANE_CREATE_CONTACTS", "true", "create a contact when the CRM has none with the identity's "
             "email (false: only link)", _FAST_LANE, Kind.FLAG),
    Variable("FAST_LANE_WORKERS", "4", "identities linked at the same time", _FAST_LANE, Kind.POSITIVE_INT),
    Variable("FAST_LANE_POLL_S", "0.2", "inbox polling interval, seconds", _FAST_LANE, Kind.POSITIVE_NUMBER),
    Variable("FAST_LANE_CALL_BUDGET_S", "10", "time limit of one API call including retries, seconds",
             _FAST_LANE, Kind.POSITIVE_NUMBER),
    # -- ingestion tuning
    Variable("IDLINK_INGEST_WORKERS", "", "processes that normalise large loads (0 = in-process only)",
             "ingestion", Kind.COUNT, when_unset="usable CPU count"),
    Variable("IDLINK_DLT_PROGRESS", "false", "log dlt's load progress", "ingestion", Kind.FLAG),
    # -- the published databases analysts, stewards and compliance read (a copy per run; never the warehouse)
    Variable("ANALYST_DB_PATH", "", "the read-only analyst database published after every linking run (schema "
             "`links`: links, review queue, masked or keyed personal fields only), replaced atomically",
             _PUBLISHING, Kind.PATH, when_unset="`analyst.duckdb` beside the warehouse (`data/analyst.duckdb`)"),
    Variable("COMPLIANCE_DB_PATH", "", "the published audit-only database of the compliance role (schema `audit`: "
             "every write to an outside system, keys only)", _PUBLISHING, Kind.PATH,
             when_unset="`compliance.duckdb` beside the warehouse"),
    Variable("STEWARD_DB_PATH", "", "the published steward database (schemas `links` and `personal`: personal "
             "fields in full), created readable by its owner only (mode 0600)", _PUBLISHING, Kind.PATH,
             when_unset="– (none: personal fields stay in the warehouse)"),
    Variable("ANALYST_HASH_SALT", "", "secret salt of the keyed hashes (`email_key`, `phone_key`) analysts join "
             "on; set it so keys stay the same from one publication to the next", _PUBLISHING, secret=True,
             when_unset="– (a new random salt per publication)"),
    # -- erasure (python -m privacy erase) and retention
    Variable("ERASURE_CRM_POLICY", "anonymise", "what erasing a person does to their CRM contacts: `delete` them, "
             "`anonymise` them (personal fields overwritten), or `clear_external_id` (only unlinked: the CRM and "
             "idlink's copy of it keep the contact)", _PRIVACY),
    Variable("IDLINK_ERASE_DELETED", "false", "erase every identity its provider deleted at the next run (else its "
             "tombstone is kept for the tombstone retention)", _PRIVACY, Kind.FLAG),
    Variable("RETENTION_TOMBSTONE_DAYS", "30", "days a deleted identity or contact (its tombstone, with its last "
             "known data) stays in the raw tables", _PRIVACY, Kind.POSITIVE_INT),
    Variable("RETENTION_SNAPSHOT_DAYS", "365", "days an ended version of a link or a consent stays in the history "
             "snapshots", _PRIVACY, Kind.POSITIVE_INT),
    Variable("RETENTION_SYNC_LOG_DAYS", "365", "days a row of the sync log (the audit trail of writes) is kept",
             _PRIVACY, Kind.POSITIVE_INT),
    Variable("RETENTION_DEAD_LETTER_DAYS", "90", "days a dead letter is kept after its last failure", _PRIVACY,
             Kind.POSITIVE_INT),
    Variable("RETENTION_INBOX_DAYS", "30", "days a handed-on inbox event (and an imported fast-lane audit row, a "
             "recorded run failure) is kept", _PRIVACY, Kind.POSITIVE_INT),
    # -- alerts
    Variable("IDLINK_ALERT_WEBHOOK_URL", "", "run-failure alerts: POST of `{job, run_id, error_type}` (no personal "
             "data); often carries a token", "run-failure sensor", Kind.URL, secret=True,
             when_unset="– (no alerts)"),
    # -- deployment: read by make, Dagster and dbt rather than by idlink's Python code
    Variable("DAGSTER_HOME", "data/dagster_home", "Dagster instance directory of `make dev` / `make demo`",
             "make, Dagster", Kind.PATH),
    Variable("DAGSTER_POSTGRES_URL", "", "Dagster instance storage in Postgres instead of SQLite", "make, Dagster",
             Kind.URL, secret=True, when_unset="– (SQLite)"),
    Variable("DBT_TARGET", "duckdb", "dbt target: `duckdb` or `postgres`", _DBT),
    Variable("DBT_DUCKDB_MEMORY_LIMIT", "1500MB", "DuckDB memory limit of dbt builds", _DBT),
    Variable("DBT_DUCKDB_THREADS", "2", "DuckDB threads of dbt builds", _DBT, Kind.POSITIVE_INT),
    Variable("DBT_POSTGRES_HOST", "localhost", "Postgres host of the `postgres` target", _DBT),
    Variable("DBT_POSTGRES_PORT", "5432", "Postgres port of the `postgres` target", _DBT, Kind.POSITIVE_INT),
    Variable("DBT_POSTGRES_USER", "postgres", "Postgres user of the `postgres` target", _DBT),
    Variable("DBT_POSTGRES_PASSWORD", "", "Postgres password of the `postgres` target", _DBT, secret=True),
    Variable("DBT_POSTGRES_DBNAME", "idlink", "Postgres database of the `postgres` target", _DBT),
    Variable("FAST_LANE", "1", "`0` starts no fast-lane worker", _MAKE_DEV),
    Variable("GATEWAY_PORT", "8787", "port of the event gateway", _MAKE_DEV, Kind.POSITIVE_INT),
    Variable("DAGSTER_PORT", "3000", "port of the Dagster UI", _MAKE_DEV, Kind.POSITIVE_INT),
    Variable("SANDBOX_SIZE", "1000", "synthetic people in the sandbox", _MAKE_DEV, Kind.COUNT),
    Variable("SANDBOX_PORT", "0", "port of the sandbox (0 = any free)", _MAKE_DEV, Kind.COUNT),
    Variable("IDLINK_DEV_DIR", "data/dev", "the dev stack's state (warehouse, inbox, Dagster instance), emptied at "
             "each start with the fresh sandbox", _MAKE_DEV, Kind.PATH),
)


def docs_table() -> str:
    """The table of docs/architecture.md, as Markdown."""
    lines = ["| variable | default | secret | used by | what it sets |", "|---|---|---|---|---|"]
    for v in VARIABLES.values():
        lines.append(f"| `{v.name}` | {v.documented_default} | {'yes' if v.secret else ''} | {v.used_by} | "
                     f"{v.description} |")
    return "\n".join(lines) + "\n"
