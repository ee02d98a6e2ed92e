"""Simulated Microsoft tenant: the identity platform (client-credentials tokens, discovery, JWKS) and Microsoft
Graph ``/users`` as an Azure AD B2C / Entra External ID tenant serves them.

The sandbox server composes it through ``routes(ctx)``, seeds it with ``load_users(ctx, users)`` (Graph user
objects) and writes ``env(ctx)`` into the environment file that points the pipeline at it.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from sandbox.context import SandboxContext
from sandbox.microsoft import graph, identity_platform
from sandbox.microsoft.graph import load_users

__all__ = ["env", "load_users", "routes"]


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    return [*identity_platform.routes(ctx), *graph.routes(ctx)]


def env(ctx: SandboxContext) -> dict[str, str]:
    return {**identity_platform.env(ctx), **graph.env(ctx)}
