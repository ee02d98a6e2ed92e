"""Fixtures of the SCIM tests: an in-process simulated directory served over plain HTTP on loopback."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.middleware import Middleware

from sandbox import scim as sandbox_scim
from sandbox.context import SandboxConfig, SandboxContext
from sandbox.faults import FaultInjectionMiddleware
from sandbox.server import RequestStatsMiddleware
from sandbox.synthetic import generate
from settings import ScimSettings
from tests.akamai.support import serve


@pytest.fixture
def ctx() -> SandboxContext:
    return SandboxContext(config=SandboxConfig(base_url="http://127.0.0.1"))


@pytest.fixture
def seeded(ctx: SandboxContext) -> list[dict]:
    """About 40 synthetic SCIM users (native resources) in the directory; returns the stored records."""
    users = generate(40, seed=5, scim_share=1.0).scim_users
    for day, user in enumerate(users, start=1):  # one modification a day: a cursor splits them cleanly
        user["meta"]["lastModified"] = f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}T12:00:00Z"
    sandbox_scim.load_users(ctx, users)
    return list(ctx.state["scim"]["users"].values())


@pytest.fixture
def directory_url(ctx: SandboxContext) -> Iterator[str]:
    routes = sandbox_scim.routes(ctx)
    middleware = [Middleware(RequestStatsMiddleware, ctx=ctx, routes=routes),
                  Middleware(FaultInjectionMiddleware, ctx=ctx)]
    with serve(routes, middleware) as url:
        ctx.config.base_url = url
        yield f"{url}{sandbox_scim.PREFIX}"


@pytest.fixture
def settings(directory_url: str) -> ScimSettings:
    return ScimSettings(base_url=directory_url, token=sandbox_scim.TOKEN, page_size=10, timeout_s=5, retry_max_s=5)
