"""Fault injection: the failures real SaaS APIs produce, so clients prove they retry, time out and stay idempotent.

With probability ``config.fault_rate`` a request to a data route gets one of:

``429``   throttled, ``Retry-After: 1``, in the error shape of the API that was called
``500``   internal server error
``503``   service unavailable
``slow``  answered only after ``config.slow_fault_s`` (longer than the client timeout), then handled normally
``drop``  the connection dies mid-response: headers promise a body that never comes. For writes, half of the
          drops happen *after* the write was applied (counted as ``drop_after_write``), so a client that retries
          must be idempotent.

Token, discovery and JWKS endpoints and the ``/__sandbox`` admin routes are never faulted. ``config.latency_ms``
delays every call except the admin routes. Injected faults are counted by kind in ``ctx.faults``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from sandbox.context import SandboxContext

FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "slow", "drop")
ADMIN_PREFIX = "/__sandbox"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Path fragments of authentication and key-discovery endpoints, which real clients call without retry logic.
_CONTROL_FRAGMENTS = ("/oauth2/", "/oauth/", "/.well-known/", "jwks", "/discovery/", "/common/")


def is_admin_path(path: str) -> bool:
    return path.startswith(ADMIN_PREFIX)


def is_data_path(path: str) -> bool:
    """True for routes that carry records (faultable); False for admin, token, discovery and JWKS routes."""
    if is_admin_path(path) or path.endswith("/token"):
        return False
    lowered = path.lower()
    return not any(fragment in lowered for fragment in _CONTROL_FRAGMENTS)


def error_body(path: str, status: int, message: str) -> bytes:
    """An error payload in the shape of the API that owns ``path``."""
    if path.startswith(("/v1.0", "/beta")):
        code = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(status, "InternalServerError")
        return graph_error_body(code, message)
    if path.startswith("/dynamics/"):
        code = {429: "0x80072322", 503: "0x80040216"}.get(status, "0x80040216")
        return orjson.dumps({"error": {"code": code, "message": message}})
    if path.startswith("/scim/"):
        return orjson.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status),
                             "detail": message})
    if path.startswith("/services/"):
        code = {429: "REQUEST_LIMIT_EXCEEDED", 503: "SERVER_UNAVAILABLE"}.get(status, "UNKNOWN_EXCEPTION")
        return orjson.dumps([{"message": message, "errorCode": code, "fields": []}])
    return orjson.dumps(
        {"stat": "error", "code": status, "error": "server_error", "error_description": message}
    )


def graph_error_body(code: str, message: str) -> bytes:
    return orjson.dumps(graph_error(code, message))


def graph_error(code: str, message: str) -> dict[str, Any]:
    """Microsoft Graph's error envelope."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "request-id": str(uuid.uuid4()),
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            },
        }
    }


_MESSAGES = {
    429: "Too many requests; retry after the interval in Retry-After.",
    500: "An internal server error occurred (injected by the sandbox).",
    503: "The service is temporarily unavailable (injected by the sandbox).",
}


class FaultInjectionMiddleware:
    """Pure ASGI middleware; costs one attribute check per request while fault rate and latency are zero."""

    def __init__(self, app: Any, ctx: SandboxContext) -> None:
        self.app = app
        self.ctx = ctx
        self.rng = random.Random(ctx.config.seed)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        config = self.ctx.config
        if scope["type"] != "http" or (config.fault_rate <= 0 and config.latency_ms <= 0):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if is_admin_path(path):
            await self.app(scope, receive, send)
            return
        if config.latency_ms > 0:
            await asyncio.sleep(config.latency_ms / 1000)
        kind = self.pick_fault(path)
        if kind is None:
            await self.app(scope, receive, send)
        elif kind == "slow":
            self.count(kind)
            await asyncio.sleep(config.slow_fault_s)
            await self.app(scope, receive, send)
        elif kind == "drop":
            await self.drop(scope, receive, send)
        else:
            self.count(kind)
            await self.send_error(send, path, int(kind))

    def pick_fault(self, path: str) -> str | None:
        config = self.ctx.config
        if config.fault_rate <= 0 or not is_data_path(path) or self.rng.random() >= config.fault_rate:
            return None
        kinds = [k for k in FAULT_KINDS if k in config.fault_kinds] if config.fault_kinds else FAULT_KINDS
        return self.rng.choice(kinds) if kinds else None

    def count(self, kind: str) -> None:
        with self.ctx.lock:
            self.ctx.faults[kind] += 1

    async def drop(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["method"] in _WRITE_METHODS and self.rng.random() < 0.5:
            # Apply the write, swallow its answer, then die: the client cannot tell whether it happened.
            async def swallow(message: dict) -> None:
                return None

            await self.app(scope, receive, swallow)
            self.count("drop_after_write")
        else:
            self.count("drop")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"65536")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"value": [', "more_body": True})
        # Returning without the promised body makes the server close the connection under the client.

    @staticmethod
    async def send_error(send: Any, path: str, status: int) -> None:
        body = error_body(path, status, _MESSAGES[status])
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status in (429, 503):
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
