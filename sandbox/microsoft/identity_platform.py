"""Microsoft identity platform (v2.0 endpoints) as far as a daemon app needs it: client-credentials tokens.

Routes, per tenant (the configured tenant id, e.g. ``idlinksandbox.onmicrosoft.com``):

- ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` — tenant discovery, fetched by msal when the
  authority is ``https://127.0.0.1:<port>/<tenant>`` and instance discovery is off;
- ``POST /{tenant}/oauth2/v2.0/token`` — ``grant_type=client_credentials`` with client id + secret and a
  ``<resource>/.default`` scope for Microsoft Graph; failures answer in the AADSTS error shape;
- ``GET  /{tenant}/discovery/v2.0/keys`` — the JWKS whose key signs the issued access tokens.

Access tokens are RS256 JWTs that expire after ``config.token_lifetime_s``. :func:`authenticate` is what the
simulated resource APIs use to accept or refuse a bearer token.
"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import jwt
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox import tokens
from sandbox.context import SandboxContext
from sandbox.faults import graph_error_body

GRAPH_RESOURCE = "https://graph.microsoft.com"
# Scopes msal may add to any request; they do not name a resource.
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def authority_url(ctx: SandboxContext) -> str:
    return f"{ctx.config.base_url}/{ctx.config.tenant_id}"


def graph_resources(ctx: SandboxContext) -> set[str]:
    """Resource identifiers accepted for Graph: the public one and the sandbox's own base URL."""
    return {GRAPH_RESOURCE, ctx.config.base_url.rstrip("/")}


def token_resources(ctx: SandboxContext) -> set[str]:
    """Every resource the platform issues tokens for: Graph and the APIs registered with ``tokens.protect``."""
    return graph_resources(ctx) | tokens.protected_resources(ctx)


def _aadsts(status: int, error: str, code: int, description: str) -> Response:
    now = datetime.now(UTC)
    return _json(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code],
            "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
        status=status,
    )


def _unknown_tenant(tenant: str) -> Response:
    return _aadsts(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")


def issue_token(ctx: SandboxContext, audience: str) -> tuple[str, int]:
    """A signed access token for ``audience`` and its lifetime in seconds."""
    now = int(time.time())
    lifetime = int(ctx.config.token_lifetime_s)
    claims = {
        "aud": audience,
        "iss": f"{authority_url(ctx)}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "tid": ctx.config.tenant_id,
        "appid": ctx.config.client_id,
        "azp": ctx.config.client_id,
        "roles": ["User.ReadWrite.All"],
        "jti": str(uuid.uuid4()),
    }
    return tokens.sign(ctx, claims), lifetime


def authenticate(ctx: SandboxContext, request: Request) -> Response | None:
    """None when the request carries a valid Graph access token, else the 401 Graph answers with."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized("Access token is empty.")
    refused = tokens.verify(ctx, token.strip(), graph_resources(ctx))
    return _unauthorized(refused) if refused else None


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded token request body (the only encoding OAuth2 token endpoints accept)."""
    raw = (await request.body()).decode("utf-8", "replace")
    return {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def _unauthorized(message: str) -> Response:
    return Response(
        graph_error_body("InvalidAuthenticationToken", message),
        status_code=401,
        media_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
    )


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    config = ctx.config

    async def openid_configuration(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant != config.tenant_id:
            return _unknown_tenant(tenant)
        base = authority_url(ctx)
        return _json(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "grant_types_supported": ["client_credentials"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU",
            }
        )

    async def keys(request: Request) -> Response:
        if request.path_params["tenant"] != config.tenant_id:
            return _unknown_tenant(request.path_params["tenant"])
        jwk = orjson.loads(jwt.algorithms.RSAAlgorithm.to_jwk(tokens.signing_key(ctx).public_key()))
        jwk.update({"kid": tokens.KEY_ID, "use": "sig", "alg": "RS256"})
        return _json({"keys": [jwk]})

    async def token(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant != config.tenant_id:
            return _unknown_tenant(tenant)
        form = await _form(request)
        grant_type = form.get("grant_type")
        if grant_type != "client_credentials":
            return _aadsts(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if request.headers.get("authorization", "").lower().startswith("basic "):
            raw = base64.b64decode(request.headers["authorization"][6:].strip()).decode("utf-8", "replace")
            client_id, _, client_secret = raw.partition(":")
        if client_id != config.client_id:
            return _aadsts(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        if not client_secret or client_secret != config.client_secret:
            return _aadsts(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent "
                "in the request is the client secret value, not the client secret ID.",
            )
        scopes = [s for s in str(form.get("scope", "")).split() if s not in _RESERVED_SCOPES]
        resources = {s[: -len("/.default")].rstrip("/") for s in scopes if s.endswith("/.default")}
        if len(scopes) != 1 or not resources or not resources <= token_resources(ctx):
            return _aadsts(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have a scope value "
                "with /.default suffixed to the resource identifier (application ID URI).",
            )
        access_token, lifetime = issue_token(ctx, resources.pop())
        return _json(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access_token,
            }
        )

    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", keys, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    ]


def env(ctx: SandboxContext) -> dict[str, str]:
    config = ctx.config
    return {
        "B2C_TENANT_ID": config.tenant_id,
        "B2C_CLIENT_ID": config.client_id,
        "B2C_CLIENT_SECRET": config.client_secret,
        "B2C_AUTHORITY_HOST": config.base_url,
    }
