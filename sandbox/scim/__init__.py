"""Simulated SCIM 2.0 directory (RFC 7643 / RFC 7644), as Okta, Entra provisioning or Auth0 would expose one.

Under ``/scim/v2`` (``SCIM_BASE_URL``), every call with ``Authorization: Bearer <SCIM_TOKEN>``:

``GET  /ServiceProviderConfig``  ``filter.supported`` (runtime setting ``scim_filter_supported``) and
                                 ``filter.maxResults`` (``MAX_RESULTS``)
``GET  /Users``                  ``startIndex`` (1-based), ``count`` (capped at ``MAX_RESULTS``; 0 = only
                                 ``totalResults``), ``filter`` (see ``sandbox/scim/filter.py``; 501 while filtering
                                 is switched off, 400 ``invalidFilter`` when not understood), ``attributes`` ->
                                 ``ListResponse`` in creation order
``GET  /Users/{id}``             the user, or 404
``POST /Users``                  create (409 ``uniqueness`` for a taken ``userName``)
``PUT  /Users/{id}``             replace; ``PATCH /Users/{id}`` (``PatchOp``: add / replace / remove); ``DELETE``

The server keeps ``id`` and ``meta`` (``created``, ``lastModified`` with microseconds, ``location``,
``version``); errors are ``{"schemas": [Error], "status": "<code>", "scimType"?, "detail"}``. Records live in
``ctx.state["scim"]["users"]`` in their SCIM shape; ``load_users`` seeds native resources (id and meta filled in
when missing). Deleted users simply disappear, as in every SCIM server: SCIM has no tombstones.
"""
from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.context import SandboxContext, gc_paused
from sandbox.scim.filter import FilterError, compile_filter

PREFIX = "/scim/v2"
SYSTEM = "scim"
TOKEN = "sandbox-scim-token"
MAX_RESULTS = 500
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEDIA_TYPE = "application/scim+json"
_READ_ONLY = frozenset({"id", "meta"})
_RUNTIME = "scim.query_cache"


def env(ctx: SandboxContext) -> dict[str, str]:
    return {"SCIM_BASE_URL": f"{ctx.config.base_url}{PREFIX}", "SCIM_TOKEN": TOKEN}


def timestamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _users(ctx: SandboxContext) -> dict[str, dict]:
    return ctx.state.setdefault(SYSTEM, {}).setdefault("users", {})


def _stamp(ctx: SandboxContext, user: dict, created: str | None = None) -> dict:
    meta = user.get("meta") if isinstance(user.get("meta"), dict) else {}
    version = int(str(meta.get("version", 'W/"0"')).strip('W/"') or 0) + 1
    now = timestamp()
    user["meta"] = {"resourceType": "User", "created": created or meta.get("created") or now, "lastModified": now,
                    "location": f"{ctx.config.base_url}{PREFIX}/Users/{user['id']}", "version": f'W/"{version}"'}
    return user


def load_users(ctx: SandboxContext, users: Iterable[dict[str, Any]]) -> int:
    """Seed native SCIM User resources as they are (their ``meta`` kept; id and meta filled in when missing)."""
    store = _users(ctx)
    loaded = 0
    with gc_paused(), ctx.lock:
        for user in users:
            record = dict(user)
            record.setdefault("schemas", [CORE_USER])
            record["id"] = str(record.get("id") or uuid.uuid4().hex)
            if not isinstance(record.get("meta"), dict) or not record["meta"].get("lastModified"):
                _stamp(ctx, record)
            store[record["id"]] = record
            loaded += 1
        _changed(ctx)
    return loaded


def _changed(ctx: SandboxContext) -> None:
    ctx.runtime.pop(_RUNTIME, None)  # filtered id lists are valid until the next write


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _error(status: int, detail: str, scim_type: str | None = None) -> Response:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if status == 401 else None
    return _json(body, status, headers)


def _authorized(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token.strip() == TOKEN


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise FilterError("startIndex and count must be integers") from None


def _project(user: dict, attributes: list[str]) -> dict:
    """Only the asked attributes (plus ``schemas`` and ``id``, always returned)."""
    if not attributes:
        return user
    kept = {"schemas": user.get("schemas"), "id": user["id"]}
    for path in attributes:
        top = path.split(".")[0]
        if path.lower().startswith("urn:"):
            top = path.rpartition(":")[0] if path.rpartition(":")[0] in user else path
        for key, value in user.items():
            if key.lower() == top.lower():
                kept[key] = value
    return kept


def _matching_ids(ctx: SandboxContext, filter_text: str | None) -> list[str]:
    store = _users(ctx)
    if not filter_text:
        return list(store)
    cache = ctx.runtime.setdefault(_RUNTIME, {})
    if filter_text not in cache:
        predicate = compile_filter(filter_text)
        cache[filter_text] = [user_id for user_id, user in store.items() if predicate(user)]
    return cache[filter_text]


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            if not _authorized(request):
                return _error(401, "Authorization failure. The authorization header is invalid or missing.")
            return await handler(request)
        return endpoint

    async def service_provider_config(request: Request) -> Response:
        return _json({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": True}, "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": ctx.config.scim_filter_supported, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": False}, "sort": {"supported": False}, "etag": {"supported": False},
            "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token",
                                       "description": "Authentication with a bearer token", "primary": True}],
            "meta": {"resourceType": "ServiceProviderConfig",
                     "location": f"{ctx.config.base_url}{PREFIX}/ServiceProviderConfig"},
        })

    async def list_users(request: Request) -> Response:
        params = request.query_params
        filter_text = params.get("filter")
        if filter_text and not ctx.config.scim_filter_supported:
            return _error(501, "Filtering is not supported by this service provider.")
        try:
            start = max(1, _int(params.get("startIndex"), 1))
            count = min(max(0, _int(params.get("count"), MAX_RESULTS)), MAX_RESULTS)
            with ctx.lock:
                ids = _matching_ids(ctx, filter_text)
                store = _users(ctx)
                attributes = [a.strip() for a in (params.get("attributes") or "").split(",") if a.strip()]
                page = [_project(store[i], attributes) for i in ids[start - 1:start - 1 + count] if i in store]
                total = len(ids)
        except FilterError as exc:
            return _error(400, f"The specified filter syntax was invalid: {exc}", "invalidFilter")
        ctx.count_records(f"GET {PREFIX}/Users", len(page))
        return _json({"schemas": [LIST_RESPONSE], "totalResults": total, "startIndex": start,
                      "itemsPerPage": len(page), "Resources": page})

    async def get_user(request: Request) -> Response:
        with ctx.lock:
            user = _users(ctx).get(request.path_params["user_id"])
            user = copy.deepcopy(user) if user is not None else None
        if user is None:
            return _error(404, f"Resource {request.path_params['user_id']} not found")
        ctx.count_records(f"GET {PREFIX}/Users/{{id}}", 1)
        return _json(user)

    async def _body(request: Request) -> dict | Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, "The request body is not valid JSON.", "invalidSyntax")
        return body if isinstance(body, dict) else _error(400, "The request body must be an object.",
                                                           "invalidSyntax")

    def _taken(user_name: Any, own_id: str | None) -> bool:
        wanted = str(user_name or "").lower()
        return any(str(u.get("userName") or "").lower() == wanted and u["id"] != own_id
                   for u in _users(ctx).values())

    async def create_user(request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        if not body.get("userName"):
            return _error(400, "userName is required.", "invalidValue")
        with ctx.lock:
            if _taken(body["userName"], None):
                return _error(409, "userName is already taken.", "uniqueness")
            user = {k: v for k, v in body.items() if k not in _READ_ONLY}
            user["id"] = uuid.uuid4().hex
            _users(ctx)[user["id"]] = _stamp(ctx, user)
            _changed(ctx)
            created = copy.deepcopy(user)
        return _json(created, 201, {"Location": created["meta"]["location"]})

    async def replace_user(request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        user_id = request.path_params["user_id"]
        with ctx.lock:
            current = _users(ctx).get(user_id)
            if current is None:
                return _error(404, f"Resource {user_id} not found")
            if _taken(body.get("userName"), user_id):
                return _error(409, "userName is already taken.", "uniqueness")
            user = {k: v for k, v in body.items() if k not in _READ_ONLY}
            user["id"], user["meta"] = user_id, current["meta"]
            _users(ctx)[user_id] = _stamp(ctx, user)
            _changed(ctx)
            replaced = copy.deepcopy(user)
        return _json(replaced)

    async def patch_user(request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        if PATCH_OP not in (body.get("schemas") or []) or not isinstance(body.get("Operations"), list):
            return _error(400, "A PatchOp with Operations is required.", "invalidSyntax")
        user_id = request.path_params["user_id"]
        with ctx.lock:
            current = _users(ctx).get(user_id)
            if current is None:
                return _error(404, f"Resource {user_id} not found")
            user = copy.deepcopy(current)
            try:
                for operation in body["Operations"]:
                    _apply(user, operation)
            except ValueError as exc:
                return _error(400, str(exc), "invalidPath")
            _users(ctx)[user_id] = _stamp(ctx, user)
            _changed(ctx)
            patched = copy.deepcopy(user)
        return _json(patched)

    async def delete_user(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        with ctx.lock:
            if _users(ctx).pop(user_id, None) is None:
                return _error(404, f"Resource {user_id} not found")
            _changed(ctx)
        return Response(status_code=204)

    return [
        Route(f"{PREFIX}/ServiceProviderConfig", guarded(service_provider_config), methods=["GET"]),
        Route(f"{PREFIX}/Users", guarded(list_users), methods=["GET"]),
        Route(f"{PREFIX}/Users", guarded(create_user), methods=["POST"]),
        Route(f"{PREFIX}/Users/{{user_id}}", guarded(get_user), methods=["GET"]),
        Route(f"{PREFIX}/Users/{{user_id}}", guarded(replace_user), methods=["PUT"]),
        Route(f"{PREFIX}/Users/{{user_id}}", guarded(patch_user), methods=["PATCH"]),
        Route(f"{PREFIX}/Users/{{user_id}}", guarded(delete_user), methods=["DELETE"]),
    ]


def _apply(user: dict, operation: Any) -> None:
    """One PatchOp operation with a simple path (``attr``, ``attr.sub`` or ``<schema URN>:attr``) or none."""
    if not isinstance(operation, dict):
        raise ValueError("each operation must be an object")  # noqa: TRY004 - answered as a SCIM 400
    op = str(operation.get("op", "")).lower()
    path = operation.get("path")
    value = operation.get("value")
    if op not in ("add", "replace", "remove"):
        raise ValueError(f"unknown op {op!r}")
    if not path:
        if op == "remove" or not isinstance(value, dict):
            raise ValueError("an operation without a path needs an object value")
        for key, item in value.items():
            if key not in _READ_ONLY:
                user[key] = item
        return
    container, key = user, str(path)
    if key.lower().startswith("urn:"):
        schema, _, key = key.rpartition(":")
        container = user.setdefault(schema, {})
    parts = key.split(".")
    for part in parts[:-1]:
        container = container.setdefault(part, {})
        if not isinstance(container, dict):
            raise ValueError(f"path {path!r} does not name an attribute")  # noqa: TRY004 - a SCIM 400
    if parts[0] in _READ_ONLY:
        raise ValueError(f"{parts[0]} is read-only")
    if op == "remove":
        container.pop(parts[-1], None)
    else:
        container[parts[-1]] = value
