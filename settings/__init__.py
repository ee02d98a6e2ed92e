"""idlink's one configuration layer (the bottom layer: it imports nothing else of idlink).

Every variable is declared once in ``settings.registry``; ``load_settings(environ)`` reads them into typed,
validated ``Settings`` at an edge (the Dagster definitions, the gateway and reverse-ETL command lines, the demo, a
benchmark) and the edge passes the parts down. Nothing below an edge reads the environment.
``python -m settings check`` validates the current environment; ``python -m settings docs`` prints the table of
docs/architecture.md.
"""

from settings.load import REPO_ROOT, load_settings
from settings.model import (
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
from settings.registry import VARIABLES, Variable

__all__ = [
    "REPO_ROOT",
    "VARIABLES",
    "AkamaiSettings",
    "ConnectorSettings",
    "DataverseSettings",
    "FastLaneSettings",
    "FieldMappingSettings",
    "GraphSettings",
    "HttpSettings",
    "IngestSettings",
    "PrivacySettings",
    "PublishSettings",
    "RetentionSettings",
    "SalesforceSettings",
    "ScimSettings",
    "Settings",
    "SettingsError",
    "Variable",
    "WebhookSettings",
    "load_settings",
]
