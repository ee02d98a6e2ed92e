"""Admin routes of the sandbox (``/__sandbox/*``): what tests and benchmarks use to observe and steer it.

- ``GET  /__sandbox/health``       — ``{"status": "ok"}``
- ``GET  /__sandbox/stats``        — requests by ``"METHOD /route/template"``, records returned by route, faults
- ``GET  /__sandbox/state``        — every system's records in native shape, ``?system=b2c`` for one system
- ``POST /__sandbox/config``       — change ``fault_rate``, ``latency_ms``, ``daily_api_limit``, ``slow_fault_s``,
                                     ``fault_kinds``, ``token_lifetime_s``, ``duplicate_rule``, ``scim_filter_supported``, ``dataverse_*`` at runtime
- ``POST /__sandbox/reset-stats``  — zero the counters

Admin routes are never faulted, delayed or counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox import wire_json
from sandbox.context import SandboxContext
from sandbox.faults import FAULT_KINDS


def _json(payload: Any, status: int = 200) -> Response:
    return Response(wire_json.dumps_ascii(payload), status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _non_negative_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError("must be a non-negative number")
    return float(value)


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a non-negative integer")
    return value


def _rate(value: Any) -> float:
    rate = _non_negative_number(value)
    if rate > 1:
        raise ValueError("must be between 0 and 1")
    return rate


def _fault_kinds(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or any(kind not in FAULT_KINDS for kind in value):
        raise ValueError(f"must be a list drawn from {list(FAULT_KINDS)}")
    return tuple(value)


def _flag(value: Any) -> bool:
    if value is not True and value is not False:
        raise ValueError("must be true or false")
    return value


def _duplicate_rule(value: Any) -> str:
    if value not in ("off", "block"):
        raise ValueError("must be 'off' or 'block'")
    return value


# Settings that may change while the sandbox runs, with their validators.
RUNTIME_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "fault_rate": _rate,
    "latency_ms": _non_negative_number,
    "daily_api_limit": _non_negative_int,
    "slow_fault_s": _non_negative_number,
    "fault_kinds": _fault_kinds,
    "token_lifetime_s": _non_negative_int,
    "duplicate_rule": _duplicate_rule,
    "scim_filter_supported": _flag,
    "dataverse_max_concurrent": _non_negative_int,
    "dataverse_requests_per_window": _non_negative_int,
    "dataverse_window_s": _non_negative_number,
    "dataverse_execution_ms": _non_negative_number,
}


def dump_state(ctx: SandboxContext, system: str | None = None) -> dict[str, Any]:
    """``{system: {collection: [records]}}``; collections keyed by id are dumped as their values."""
    with ctx.lock:
        systems = {system: ctx.state.get(system, {})} if system else ctx.state
        return {
            name: {
                collection: list(records.values()) if isinstance(records, dict) else records
                for collection, records in collections.items()
            }
            for name, collections in systems.items()
        }


def public_config(ctx: SandboxContext) -> dict[str, Any]:
    config = ctx.config
    return {name: getattr(config, name) for name in RUNTIME_SETTINGS} | {"base_url": config.base_url}


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    async def health(request: Request) -> Response:
        return _json({"status": "ok"})

    async def stats(request: Request) -> Response:
        return _json(ctx.stats())

    async def state(request: Request) -> Response:
        return _json(dump_state(ctx, request.query_params.get("system") or None))

    async def configure(request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, "body must be a JSON object")
        if not isinstance(changes, dict):
            return _error(400, "body must be a JSON object")
        unknown = sorted(set(changes) - set(RUNTIME_SETTINGS))
        if unknown:
            return _error(400, f"unknown settings {unknown}; allowed: {sorted(RUNTIME_SETTINGS)}")
        validated = {}
        for name, value in changes.items():
            try:
                validated[name] = RUNTIME_SETTINGS[name](value)
            except ValueError as exc:
                return _error(400, f"{name} {exc}")
        with ctx.lock:
            for name, value in validated.items():
                setattr(ctx.config, name, value)
        return _json(public_config(ctx))

    async def reset_stats(request: Request) -> Response:
        ctx.reset_stats()
        return _json(ctx.stats())

    return [
        Route("/__sandbox/health", health, methods=["GET"]),
        Route("/__sandbox/stats", stats, methods=["GET"]),
        Route("/__sandbox/state", state, methods=["GET"]),
        Route("/__sandbox/config", configure, methods=["POST"]),
        Route("/__sandbox/reset-stats", reset_stats, methods=["POST"]),
    ]
