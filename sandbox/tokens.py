"""Access tokens of the simulated Microsoft identity platform, kept in the core because more than one system
needs them: ``sandbox.microsoft`` issues them (client credentials) and every API the platform protects (Graph,
Dataverse) verifies them, without the system packages importing each other.

An API registers the resource URI its tokens are issued for with ``protect``; the platform issues tokens only
for registered resources.
"""
from __future__ import annotations

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.context import SandboxContext

KEY_ID = "idlink-sandbox-signing-key"
_SIGNING_KEY = "tokens.signing_key"
_RESOURCES = "tokens.resources"


def signing_key(ctx: SandboxContext) -> rsa.RSAPrivateKey:
    with ctx.lock:
        key = ctx.runtime.get(_SIGNING_KEY)
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            ctx.runtime[_SIGNING_KEY] = key
        return key


def protect(ctx: SandboxContext, resource: str) -> None:
    """Let the identity platform issue tokens for ``resource`` (an API's application ID URI)."""
    with ctx.lock:
        ctx.runtime.setdefault(_RESOURCES, set()).add(resource.rstrip("/"))


def protected_resources(ctx: SandboxContext) -> set[str]:
    with ctx.lock:
        return set(ctx.runtime.get(_RESOURCES, ()))


def sign(ctx: SandboxContext, claims: dict) -> str:
    return jwt.encode(claims, signing_key(ctx), algorithm="RS256", headers={"kid": KEY_ID})


def verify(ctx: SandboxContext, token: str, audiences: set[str]) -> str | None:
    """None when ``token`` is a valid, unexpired token for one of ``audiences``; else why it is refused."""
    try:
        jwt.decode(token, signing_key(ctx).public_key(), algorithms=["RS256"], audience=sorted(audiences),
                   options={"require": ["exp", "aud"]})
    except jwt.ExpiredSignatureError:
        return "Lifetime validation failed, the token is expired."
    except jwt.InvalidTokenError:
        return "Access token validation failure. Invalid audience or signature."
    return None
