"""The event gateway's ASGI application: Akamai webhook listener, B2C API connector, health and readiness.

``/readyz`` answers 200 only when the inbox can store an event now (the writer takes the write lock within a
second), else 503, so a load balancer stops sending while another process holds the lock or the disk fails;
``/healthz`` says the same with the inbox's counts.

Each route is mounted only when its settings are present, so one deployment can serve either side. The settings
are read by the command line (``python -m gateway serve``) or, for uvicorn's worker processes, by
``app_from_environment``; the app itself never reads the environment.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.akamai_listener import AkamaiWebhookEndpoint
from gateway.b2c_connector import B2CConnectorEndpoint
from gateway.crm_contacts import ContactDirectory, LinkTableLookup, SalesforceContactDirectory
from gateway.security_events import SetVerifier
from inbox import Inbox
from reverse_etl import mapping_for
from settings import ConnectorSettings, Settings, WebhookSettings, load_settings
from warehouse import Warehouse

log = logging.getLogger(__name__)

READINESS_TIMEOUT_S = 1.0
WEBHOOK_PATH = "/webhooks/akamai"
CONNECTOR_PATH = "/connectors/b2c/signup"


def _salesforce_directory(settings: Settings, connector: ConnectorSettings, inbox: Inbox) -> ContactDirectory | None:
    if settings.salesforce is None:
        log.warning("Salesforce is not configured: sign-ups are stored for the asynchronous path only")
        return None
    links = LinkTableLookup(Warehouse.from_settings(settings)) if settings.connector_warehouse_lookup else None
    return SalesforceContactDirectory.within_budget(settings.salesforce, connector.budget_s,
                                                    mapping_for(settings.field_mapping),
                                                    connector.password.encode(), links, audit=inbox.record_audit)


def create_app(
    settings: Settings | None = None,
    *,
    inbox: Inbox | None = None,
    webhook: WebhookSettings | None = None,
    connector: ConnectorSettings | None = None,
    directory: ContactDirectory | None = None,
    verifier: SetVerifier | None = None,
) -> Starlette:
    """Build the app from ``settings``; parts passed in explicitly (tests) take their place. Without settings,
    ``inbox`` is required and only the parts passed in are served."""
    if settings is None and inbox is None:
        raise ValueError("create_app needs settings or an inbox")
    inbox = inbox or Inbox(settings.inbox_path)
    routes = []
    if verifier is None and webhook is None and settings is not None:
        webhook = settings.webhook
    if verifier is None and webhook is not None:
        verifier = SetVerifier(webhook)
    if verifier is not None:
        routes.append(Route(WEBHOOK_PATH, AkamaiWebhookEndpoint(verifier, inbox).handle, methods=["POST"]))
    connector_endpoint = None
    if connector is None and settings is not None:
        connector = settings.connector
    if connector is not None:
        if directory is None and settings is not None:
            directory = _salesforce_directory(settings, connector, inbox)
        connector_endpoint = B2CConnectorEndpoint(connector, inbox, directory)
        routes.append(Route(CONNECTOR_PATH, connector_endpoint.handle, methods=["POST"]))

    async def inbox_ready() -> bool:
        return await asyncio.to_thread(inbox.ready, READINESS_TIMEOUT_S)

    async def readyz(request: Request) -> JSONResponse:
        if await inbox_ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "unavailable", "inbox": "cannot store now"}, status_code=503)

    async def healthz(request: Request) -> JSONResponse:
        try:
            stats = inbox.stats()
        except Exception as exc:  # noqa: BLE001 - the inbox file is unusable: say so, the balancer takes us out
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
        ready = await inbox_ready()
        return JSONResponse({"status": "ok" if ready else "unavailable", "inbox_can_store": ready,
                             "webhook": verifier is not None, "connector": connector_endpoint is not None,
                             "inbox": {"pending": stats["pending"], "total": stats["total"]}},
                            status_code=200 if ready else 503)

    routes.append(Route("/healthz", healthz, methods=["GET"]))
    routes.append(Route("/readyz", readyz, methods=["GET"]))

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


def app_from_environment() -> Starlette:
    """The app with settings read from the environment: the factory uvicorn's worker processes call."""
    return create_app(load_settings())
