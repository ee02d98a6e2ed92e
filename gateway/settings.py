"""Gateway configuration, read from the environment only (secrets never come from files or arguments)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.inbox import resolve_inbox_path


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number") from exc


@dataclass(frozen=True)
class WebhookSettings:
    """How Akamai Security Event Tokens are verified."""

    jwks_url: str
    issuer: str
    audience: str
    ca_bundle: str | None = None
    # Oldest accepted iat. The sender redelivers the same signed token for up to 24 h, so a shorter window would
    # turn late retries into lost events; replays inside it are caught by the jti.
    max_age_s: float = 25 * 3600.0
    clock_skew_s: float = 30.0
    max_body_bytes: int = 64 * 1024
    jwks_cache_s: float = 3600.0
    jwks_min_refresh_s: float = 10.0  # an unknown kid refreshes the key set at most this often
    http_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WebhookSettings:
        missing = [n for n in ("AKAMAI_WEBHOOK_JWKS_URL", "AKAMAI_WEBHOOK_ISSUER", "AKAMAI_WEBHOOK_AUDIENCE")
                   if not environ.get(n)]
        if missing:
            raise ValueError(f"missing webhook settings: {', '.join(missing)}")
        return cls(
            jwks_url=environ["AKAMAI_WEBHOOK_JWKS_URL"],
            issuer=environ["AKAMAI_WEBHOOK_ISSUER"],
            audience=environ["AKAMAI_WEBHOOK_AUDIENCE"],
            ca_bundle=environ.get("IDLINK_CA_BUNDLE") or None,
            max_age_s=_float(environ, "GATEWAY_SET_MAX_AGE_S", 25 * 3600.0),
            clock_skew_s=_float(environ, "GATEWAY_CLOCK_SKEW_S", 30.0),
            max_body_bytes=int(_float(environ, "GATEWAY_MAX_BODY_BYTES", 64 * 1024)),
        )


@dataclass(frozen=True)
class ConnectorSettings:
    """The B2C sign-up API connector."""

    username: str
    password: str
    budget_s: float = 2.0  # hard limit for CRM work during a sign-up; B2C itself waits at most 30 s
    consent_attribute: str = "CrmSyncConsent"
    contact_id_attribute: str = "CrmContactId"
    max_body_bytes: int = 64 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ConnectorSettings:
        if not environ.get("CONNECTOR_USERNAME") or not environ.get("CONNECTOR_PASSWORD"):
            raise ValueError("missing connector settings: CONNECTOR_USERNAME, CONNECTOR_PASSWORD")
        return cls(
            username=environ["CONNECTOR_USERNAME"],
            password=environ["CONNECTOR_PASSWORD"],
            budget_s=_float(environ, "CONNECTOR_BUDGET_S", 2.0),
            consent_attribute=environ.get("B2C_CONSENT_ATTRIBUTE") or "CrmSyncConsent",
            contact_id_attribute=environ.get("B2C_CONTACT_ID_ATTRIBUTE") or "CrmContactId",
        )


def inbox_path(environ: Mapping[str, str] = os.environ) -> Path:
    return resolve_inbox_path(environ)  # type: ignore[arg-type]
