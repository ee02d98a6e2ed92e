"""App-only tokens from the Microsoft identity platform (msal, client credentials), shared by every client of a
Microsoft API (Graph, Dataverse).

msal insists on an https authority; instance discovery and authority validation stay on for Microsoft's own
hosts and are turned off for any other (a sovereign or test authority), which msal would otherwise refuse.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import msal
import requests

from clients.http import ApiError

MICROSOFT_AUTHORITY_HOSTS = (
    ".microsoftonline.com",
    ".microsoftonline.us",
    ".chinacloudapi.cn",
    ".ciamlogin.com",
    ".b2clogin.com",
)


def confidential_client(authority_host: str, tenant_id: str, client_id: str, client_secret: str,
                        session: requests.Session, timeout_s: float) -> msal.ConfidentialClientApplication:
    """An msal app for ``<authority_host>/<tenant_id>``; msal fetches the authority's metadata when built."""
    host = urlsplit(authority_host).hostname or ""
    microsoft = host.endswith(MICROSOFT_AUTHORITY_HOSTS)
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=client_secret,
        authority=f"{authority_host.rstrip('/')}/{tenant_id}",
        instance_discovery=microsoft,
        validate_authority=microsoft,
        http_client=session,
        timeout=timeout_s,
    )


def app_token(app: msal.ConfidentialClientApplication, scopes: list[str]) -> str:
    """An access token for ``scopes`` (``<resource>/.default``); msal serves it from its cache until shortly
    before expiry. Transport trouble is a retryable ``ApiError``, a refusal a permanent one."""
    try:
        result = app.acquire_token_for_client(scopes=scopes)
    except Exception as exc:  # noqa: BLE001 - msal surfaces transport and discovery errors in many types
        raise ApiError(
            f"token request to the identity platform failed: {type(exc).__name__}: {str(exc)[:200]}",
            code=type(exc).__name__,
            retryable=True,
        ) from None
    if "access_token" not in result:
        raise ApiError(f"token request refused: {result.get('error', 'unknown_error')}",
                       code=result.get("error"), retryable=False)
    return result["access_token"]
