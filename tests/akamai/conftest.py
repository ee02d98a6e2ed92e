"""Fixtures of the Akamai tests: an in-process simulated tenant, served over HTTP when a test needs a socket."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from sandbox import akamai as sandbox_akamai
from sandbox.context import SandboxConfig, SandboxContext
from sandbox.faults import FaultInjectionMiddleware
from tests.akamai.support import WebhookReceiver, fake_entities, serve

CLIENT_ID = SandboxConfig.client_id
CLIENT_SECRET = SandboxConfig.client_secret


@pytest.fixture(autouse=True)
def fast_webhook_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_AKAMAI_WEBHOOK_FIRST_RETRY_S", "0.05")
    monkeypatch.setenv("SANDBOX_AKAMAI_WEBHOOK_MAX_RETRY_S", "0.2")
    monkeypatch.setenv("SANDBOX_AKAMAI_WEBHOOK_MAX_ATTEMPTS", "5")


@pytest.fixture
def ctx() -> Iterator[SandboxContext]:
    context = SandboxContext(config=SandboxConfig(base_url="http://127.0.0.1"))
    yield context
    sandbox_akamai.tenant(context).sender.close()


@pytest.fixture
def seeded(ctx: SandboxContext) -> list[dict]:
    entities = fake_entities(25)
    sandbox_akamai.load_entities(ctx, entities)
    return ctx.state["akamai"]["users"]


@pytest.fixture
def api(ctx: SandboxContext) -> TestClient:
    client = TestClient(Starlette(routes=sandbox_akamai.routes(ctx)))
    client.auth = (CLIENT_ID, CLIENT_SECRET)
    return client


@pytest.fixture
def receiver(ctx: SandboxContext) -> Iterator[WebhookReceiver]:
    """A webhook listener the tenant delivers to."""
    listener = WebhookReceiver()
    with serve(listener.routes()) as url:
        listener.url = ctx.config.webhook_url = f"{url}/webhooks/akamai"
        yield listener


@pytest.fixture
def tenant_url(ctx: SandboxContext) -> Iterator[str]:
    """The tenant's routes served over HTTP with the sandbox's fault injection; yields the base URL."""
    with serve(sandbox_akamai.routes(ctx), [Middleware(FaultInjectionMiddleware, ctx=ctx)]) as url:
        ctx.config.base_url = url
        yield url
