"""The event gateway's ASGI application: Akamai webhook listener, B2C API connector and a health check.

Each route is mounted only when its settings are present, so one deployment can serve either side.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.akamai_listener import AkamaiWebhookEndpoint
from gateway.b2c_connector import B2CConnectorEndpoint
from gateway.crm_contacts import ContactDirectory, SalesforceContactDirectory
from gateway.inbox import Inbox, resolve_inbox_path
from gateway.security_events import SetVerifier
from gateway.settings import ConnectorSettings, WebhookSettings

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/akamai"
CONNECTOR_PATH = "/connectors/b2c/signup"


def _salesforce_directory(budget_s: float, environ: Mapping[str, str]) -> ContactDirectory | None:
    if not (environ.get("SALESFORCE_CLIENT_ID") and environ.get("SALESFORCE_CLIENT_SECRET")):
        log.warning("Salesforce is not configured: sign-ups are stored for the asynchronous path only")
        return None
    return SalesforceContactDirectory.from_env(budget_s, environ)


def create_app(
    *,
    inbox: Inbox | None = None,
    webhook: WebhookSettings | None = None,
    connector: ConnectorSettings | None = None,
    directory: ContactDirectory | None = None,
    verifier: SetVerifier | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Starlette:
    """Build the app; anything not passed in is read from ``environ``."""
    inbox = inbox or Inbox(resolve_inbox_path(environ))  # type: ignore[arg-type]
    routes = []
    if verifier is None and webhook is None and environ.get("AKAMAI_WEBHOOK_JWKS_URL"):
        webhook = WebhookSettings.from_env(environ)
    if verifier is None and webhook is not None:
        verifier = SetVerifier(webhook)
    if verifier is not None:
        routes.append(Route(WEBHOOK_PATH, AkamaiWebhookEndpoint(verifier, inbox).handle, methods=["POST"]))
    connector_endpoint = None
    if connector is None and environ.get("CONNECTOR_USERNAME"):
        connector = ConnectorSettings.from_env(environ)
    if connector is not None:
        if directory is None:
            directory = _salesforce_directory(connector.budget_s, environ)
        connector_endpoint = B2CConnectorEndpoint(connector, inbox, directory)
        routes.append(Route(CONNECTOR_PATH, connector_endpoint.handle, methods=["POST"]))

    async def healthz(request: Request) -> JSONResponse:
        try:
            stats = inbox.stats()
        except Exception as exc:  # noqa: BLE001 - the inbox file is unusable: say so, the balancer takes us out
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "webhook": verifier is not None,
                             "connector": connector_endpoint is not None,
                             "inbox": {"pending": stats["pending"], "total": stats["total"]}})

    routes.append(Route("/healthz", healthz, methods=["GET"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        if connector_endpoint is not None:
            connector_endpoint.close()
        inbox.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.inbox = inbox
    app.state.verifier = verifier
    return app
