"""The sandbox HTTPS server: every simulated system's routes in one Starlette app, served by uvicorn.

Each module in :data:`SYSTEM_MODULES` exposes ``routes(ctx)`` and may expose ``env(ctx) -> dict[str, str]``
(the variables that point real clients at it). The env file is written only once the socket listens, so its
appearance is the readiness signal.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match

from sandbox.context import SandboxContext
from sandbox.faults import FaultInjectionMiddleware, is_admin_path
from sandbox.tls import TlsFiles

# One package per simulated system (plus the admin routes), in routing order.
SYSTEM_MODULES = [
    "sandbox.microsoft",
    "sandbox.salesforce",
    "sandbox.akamai",
    "sandbox.scim",
    "sandbox.dataverse",
    "sandbox.admin",
]
RETRY_MAX_S = 60


def load_system_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in SYSTEM_MODULES]


class RequestStatsMiddleware:
    """Counts every non-admin request under ``"METHOD /route/template"`` (templates keep ids out of the stats)."""

    def __init__(self, app: Any, ctx: SandboxContext, routes: list[BaseRoute]) -> None:
        self.app = app
        self.ctx = ctx
        self.routes = routes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or is_admin_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            key = f"{scope['method']} {self._template(scope)}"
            with self.ctx.lock:
                self.ctx.requests_by_route[key] += 1

    def _template(self, scope: dict) -> str:
        route = scope.get("route")  # set by the router; absent when a fault answered before routing
        if route is None:
            partial = None
            for candidate in self.routes:
                match, _ = candidate.matches(scope)
                if match is Match.FULL:
                    route = candidate
                    break
                if match is Match.PARTIAL and partial is None:
                    partial = candidate
            route = route or partial
        return getattr(route, "path", None) or "(unmatched)"


def build_app(ctx: SandboxContext) -> Starlette:
    routes: list[BaseRoute] = []
    for module in load_system_modules():
        routes.extend(module.routes(ctx))
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestStatsMiddleware, ctx=ctx, routes=routes),
            Middleware(FaultInjectionMiddleware, ctx=ctx),
        ],
    )


def env_vars(ctx: SandboxContext, tls: TlsFiles) -> dict[str, str]:
    """Everything that points the pipeline at this sandbox, plus the sandbox's own admin base and CA bundle."""
    config = ctx.config
    values = {
        "IDLINK_CA_BUNDLE": str(tls.ca_bundle),
        "SANDBOX_CA_BUNDLE": str(tls.ca_bundle),
        "SANDBOX_URL": config.base_url,
        "IDLINK_HTTP_TIMEOUT_S": f"{config.client_timeout_s:g}",
        "IDLINK_RETRY_MAX_S": str(RETRY_MAX_S),
    }
    for module in load_system_modules():
        module_env: Callable[[SandboxContext], dict[str, str]] | None = getattr(module, "env", None)
        if module_env is not None:
            values.update(module_env(ctx))
    return values


def write_env_file(path: str | Path, values: dict[str, str]) -> Path:
    """Write ``KEY=VALUE`` lines atomically: readers see no file or the whole file, never half of it."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    for key, value in values.items():
        if "\n" in value or "=" in key:
            raise ValueError(f"env value for {key} cannot be written as one KEY=VALUE line")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{key}={value}\n" for key, value in values.items())
        os.chmod(tmp, 0o600)  # holds client secrets
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def bind_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    return sock


class _DroppedResponseFilter(logging.Filter):
    """Injected connection drops are deliberate; keep them out of the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


class _SandboxServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self.on_ready()


def _available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def serve(ctx: SandboxContext, *, tls: TlsFiles, sock: socket.socket, env_file: str | Path | None) -> None:
    """Serve until SIGINT/SIGTERM; ``ctx.config.base_url`` must already name ``sock``'s address."""
    app = build_app(ctx)
    config = uvicorn.Config(
        app,
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        http="httptools" if _available("httptools") else "h11",
        loop="uvloop" if _available("uvloop") else "asyncio",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=60,
        timeout_graceful_shutdown=2,  # a stopped sandbox must not wait for clients that hold connections open
        workers=1,
    )
    logging.getLogger("uvicorn.error").addFilter(_DroppedResponseFilter())

    def on_ready() -> None:
        if env_file is not None:
            write_env_file(env_file, env_vars(ctx, tls))
        print(f"sandbox: listening on {ctx.config.base_url}", file=sys.stderr, flush=True)

    _SandboxServer(config, on_ready).run(sockets=[sock])
