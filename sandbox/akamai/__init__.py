"""Simulated Akamai Identity Cloud tenant: the Capture-style Entity API and the Webhooks v3 sender.

Entity API (under ``/akamai``; ``AKAMAI_BASE_URL`` = ``<sandbox>/akamai``), form-encoded POST (GET with a
query string works too), HTTP Basic ``client_id:client_secret`` (or ``client_id``/``client_secret`` form
fields), every answer JSON with ``"stat": "ok"`` or
``{"stat": "error", "code": <int>, "error": <name>, "error_description": <text>, "request_id": …}``:

``/entity.find``    ``type_name``, ``filter`` (see ``sandbox/akamai/query_filter.py``; e.g. ``id > 100``,
                    ``uuid = '…'``, ``lastUpdated >= '2024-01-01 00:00:00 +0000'``), ``attributes`` (JSON list
                    of attribute paths), ``sort_on`` (JSON list, ``-`` prefix = descending, default ``["id"]``),
                    ``max_results`` (1..1000, default 100), ``show_total_count`` ->
                    ``{"stat":"ok","result_count":n,"results":[…]}`` (+ ``total_count``). Page large scans by
                    keyset: ``sort_on=["id"]`` and ``filter=id > <last id>``.
``/entity``         ``uuid`` or ``id``, optional ``attributes`` -> ``{"stat":"ok","result":{…}}``
``/entity.create``  ``attributes`` (JSON object) -> ``{"stat":"ok","id":n,"uuid":"…"}``
``/entity.update``  ``uuid`` or ``id``, ``attributes`` (JSON object, deep-merged) -> ``{"stat":"ok"}``
``/entity.delete``  ``uuid`` or ``id`` -> ``{"stat":"ok"}``

Errors: 100 ``missing_argument``, 200 ``invalid_argument`` (bad JSON, bad filter, max_results out of
range, read-only attribute), 222 ``entity_type_does_not_exist``, 223 ``attribute_does_not_exist``,
310 ``record_not_found``, 402 ``invalid_client_credentials`` (HTTP 401). ``id`` (integer, ascending),
``uuid``, ``created`` and ``lastUpdated`` (``YYYY-MM-DD HH:MM:SS.ffffff +0000``) are maintained by the server.

Webhooks v3 — the format the event gateway verifies
--------------------------------------------------
Every create, update and delete made through the Entity API (not the seeding of the sandbox) is delivered as
one HTTP POST to ``SandboxConfig.webhook_url``:

* headers ``Content-Type: application/secevent+jwt``; the body is the compact JWS, nothing else.
* JOSE header ``{"alg": "RS256", "kid": "<40 hex>", "typ": "secevent+jwt"}``; ``kid`` names a key in the
  JWKS at ``AKAMAI_WEBHOOK_JWKS_URL`` = ``<sandbox>/akamai/webhooks/jwks`` (``{"keys": [{"kty": "RSA",
  "n", "e", "kid", "use": "sig", "alg": "RS256"}]}``: the current key first, then the previous one after a
  rotation, so tokens signed just before a rotation still verify).
* claims::

    {"iss": "Akamai Identity Cloud",              # AKAMAI_WEBHOOK_ISSUER
     "aud": "<webhook_url>",                       # AKAMAI_WEBHOOK_AUDIENCE (the subscription endpoint)
     "iat": 1732340000, "toe": 1732340000,         # issued at / time of event (epoch seconds)
     "jti": "<uuid4, unique per event; redeliveries repeat it>",
     "txn": "<uuid4>",
     "events": {"entityUpdated": {                 # exactly one key: entityCreated|entityUpdated|entityDeleted
         "captureApplicationId": "<app id>", "captureClientId": "<client id>",
         "entityType": "user",                     # the entity type (type_name)
         "globalSub": "capture-v1://<host>/<app id>/user/<uuid>",
         "sub": "<entity uuid>",                   # the user the event is about
         "id": "<uuid4 event id>"}}}

  Why this shape: it is the shape Identity Cloud's Webhooks v3 sends (bare event names as keys of
  ``events``, the subject inside the event object rather than a top-level ``sub``), so a gateway built
  against the sandbox verifies real deliveries unchanged. The token carries no profile data: receivers
  fetch the entity by ``sub`` (that is also how Identity Cloud intends SETs to be used).
* any non-2xx answer, timeout or connection error is redelivered with the same token (same ``jti``: the
  receiver deduplicates on it) after 0.5 s, 1 s, 2 s, … capped at 30 s, up to 12 attempts (settable by
  ``SANDBOX_AKAMAI_WEBHOOK_{FIRST_RETRY_S,MAX_RETRY_S,MAX_ATTEMPTS,TIMEOUT_S}`` or the config route below).

Admin routes: ``GET /__sandbox/akamai/webhooks`` (counts, policy, every delivery with attempts and last
status; uuids and jtis only), ``POST /__sandbox/akamai/webhooks/config`` (JSON: ``url``, ``first_retry_s``,
``max_retry_s``, ``max_attempts``, ``timeout_s``), ``POST /__sandbox/akamai/webhooks/redeliver`` (requeue
failed deliveries), ``POST /__sandbox/akamai/rotate-key`` (``?keep_previous=false`` publishes only the new
key) -> ``{"kid": "<new kid>"}``.
"""
from __future__ import annotations

import base64
import binascii
import bisect
import copy
import itertools
import json
import secrets
import threading
import uuid as uuidlib
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from sandbox.akamai.query_filter import FilterError, compile_filter, lower_id_bound
from sandbox.akamai.webhooks import ISSUER, DeliveryPolicy, SigningKeys, WebhookSender
from sandbox.context import SandboxContext, gc_paused

PREFIX = "/akamai"
SYSTEM = "akamai"
ENTITY_TYPE = "user"
STATE_KEY = "users"
MAX_RESULTS = 1000
DEFAULT_RESULTS = 100
APPLICATION_ID = "idlinksandboxapp0000000000"
READ_ONLY = frozenset({"id", "uuid", "created", "lastUpdated"})
# Top-level attributes of the simulated user schema; seeding may add more (the schema grows with the data).
SCHEMA = {
    "id", "uuid", "created", "lastUpdated", "email", "emailVerified", "givenName", "familyName",
    "middleName", "displayName", "birthday", "gender", "mobileNumber", "phoneNumber", "primaryAddress",
    "consents", "crmContactId", "lastLogin", "clients",
}


def now_timestamp() -> str:
    """Identity Cloud's timestamp format."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f +0000")


class ApiFailure(Exception):
    def __init__(self, http_status: int, code: int, error: str, description: str,
                 argument_name: str | None = None) -> None:
        super().__init__(description)
        self.http_status, self.code, self.error, self.description = http_status, code, error, description
        self.argument_name = argument_name

    def response(self) -> JSONResponse:
        body = {"stat": "error", "code": self.code, "error": self.error,
                "error_description": self.description, "request_id": secrets.token_hex(8)}
        if self.argument_name:
            body["argument_name"] = self.argument_name
        return JSONResponse(body, status_code=self.http_status)


def _missing(name: str) -> ApiFailure:
    return ApiFailure(400, 100, "missing_argument", f"missing required argument {name}", name)


def _invalid(name: str, why: str) -> ApiFailure:
    return ApiFailure(400, 200, "invalid_argument", f"{name} was not valid: {why}", name)


def deep_merge(target: dict, changes: dict) -> None:
    """Objects merge attribute by attribute; anything else (scalars, lists, null) replaces."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def project(entity: dict, paths: list[str] | None) -> dict:
    """The entity reduced to ``paths`` (dotted paths build nested objects); everything when None."""
    if paths is None:
        return copy.deepcopy(entity)
    out: dict = {}
    for path in paths:
        parts = path.split(".")
        value: Any = entity
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = copy.deepcopy(value)
    return out


class AkamaiTenant:
    """One simulated tenant bound to a sandbox context: the user records, the signing keys, the sender."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        records = ctx.state.setdefault(SYSTEM, {}).setdefault(STATE_KEY, [])
        records.sort(key=lambda e: e["id"])
        self.records: list[dict] = records  # ordered by id: keyset pages start by bisection
        self.by_uuid: dict[str, dict] = {e["uuid"]: e for e in records}
        self.schema = set(SCHEMA)
        self._ids = itertools.count(max((e["id"] for e in records), default=0) + 1)
        self.keys = SigningKeys()
        self.webhook_url_override: str | None = None
        capture_host = urlsplit(ctx.config.base_url).netloc or "127.0.0.1"
        self.sender = WebhookSender(
            self.keys,
            url_source=lambda: self.webhook_url_override if self.webhook_url_override is not None
            else ctx.config.webhook_url,
            audience_source=self.audience,
            application_id=APPLICATION_ID,
            client_id=ctx.config.client_id,
            capture_host=capture_host,
            policy=DeliveryPolicy.from_env(),
        )
        ctx.listeners.append(self._on_change)

    def audience(self) -> str:
        url = self.webhook_url_override if self.webhook_url_override is not None else self.ctx.config.webhook_url
        return url or "urn:idlink:sandbox:akamai-webhooks"

    def _on_change(self, system: str, event: str, record: dict) -> None:
        if system == SYSTEM:
            self.sender.publish(event, ENTITY_TYPE, record["uuid"])

    # -- records (callers hold ctx.lock) -------------------------------------------------------------

    def add(self, entity: dict) -> dict:
        entity = copy.deepcopy(entity)
        entity.setdefault("uuid", str(uuidlib.uuid4()))
        if entity["uuid"] in self.by_uuid:
            raise ApiFailure(400, 361, "unique_violation", "uuid already exists", "uuid")
        stamp = now_timestamp()
        entity.setdefault("created", stamp)
        entity.setdefault("lastUpdated", entity["created"])
        if not isinstance(entity.get("id"), int) or entity["id"] <= (self.records[-1]["id"] if self.records else 0):
            entity["id"] = next(self._ids)
        else:
            self._ids = itertools.count(entity["id"] + 1)
        self.schema.update(entity)
        self.records.append(entity)
        self.by_uuid[entity["uuid"]] = entity
        return entity

    def find_one(self, params: dict[str, str]) -> dict:
        if params.get("uuid"):
            entity = self.by_uuid.get(params["uuid"])
        elif params.get("id"):
            try:
                wanted = int(params["id"])
            except ValueError:
                raise _invalid("id", "not an integer") from None
            index = bisect.bisect_left(self.records, wanted, key=lambda e: e["id"])
            entity = self.records[index] if index < len(self.records) and self.records[index]["id"] == wanted \
                else None
        else:
            raise _missing("uuid")
        if entity is None:
            raise ApiFailure(404, 310, "record_not_found", "no entity matches the given key")
        return entity

    def remove(self, entity: dict) -> None:
        index = bisect.bisect_left(self.records, entity["id"], key=lambda e: e["id"])
        del self.records[index]
        del self.by_uuid[entity["uuid"]]


_TENANTS: dict[int, AkamaiTenant] = {}
_TENANTS_LOCK = threading.Lock()


def tenant(ctx: SandboxContext) -> AkamaiTenant:
    """The tenant of ``ctx``, created on first use (routes, seeding and env may come in any order)."""
    with _TENANTS_LOCK:
        found = _TENANTS.get(id(ctx))
        if found is None or found.ctx is not ctx:
            found = AkamaiTenant(ctx)
            _TENANTS[id(ctx)] = found
            key = id(ctx)
            weakref.finalize(ctx, _forget, key, found)
        return found


def _forget(key: int, found: AkamaiTenant) -> None:
    found.sender.close()
    with _TENANTS_LOCK:
        if _TENANTS.get(key) is found:
            del _TENANTS[key]


# -- request plumbing -------------------------------------------------------------------------------------

async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", errors="replace")
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


def _authenticate(request: Request, params: dict[str, str], ctx: SandboxContext) -> None:
    client_id, secret = params.get("client_id"), params.get("client_secret")
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = secret = None
    if not (client_id and secrets.compare_digest(client_id, ctx.config.client_id)
            and secret is not None and secrets.compare_digest(secret, ctx.config.client_secret)):
        raise ApiFailure(401, 402, "invalid_client_credentials", "client_id or client_secret is not valid")


def _json_param(params: dict[str, str], name: str, kind: type, required: bool = False) -> Any:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _missing(name)
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise _invalid(name, "not valid JSON") from None
    if not isinstance(value, kind):
        raise _invalid(name, f"expected a JSON {'object' if kind is dict else 'array'}")
    return value


def _check_type(params: dict[str, str]) -> None:
    type_name = params.get("type_name")
    if not type_name:
        raise _missing("type_name")
    if type_name != ENTITY_TYPE:
        raise ApiFailure(400, 222, "entity_type_does_not_exist", "the entity type does not exist", "type_name")


def _attribute_paths(t: AkamaiTenant, params: dict[str, str]) -> list[str] | None:
    paths = _json_param(params, "attributes", list)
    if paths is None:
        return None
    for path in paths:
        if not isinstance(path, str) or path.split(".")[0] not in t.schema:
            raise ApiFailure(400, 223, "attribute_does_not_exist", "an attribute in attributes does not exist",
                             "attributes")
    return paths


def _writable(t: AkamaiTenant, attributes: dict) -> dict:
    for name in attributes:
        if name in READ_ONLY:
            raise _invalid("attributes", f"{name} is read-only")
        if name not in t.schema:
            raise ApiFailure(400, 223, "attribute_does_not_exist", f"attribute {name} does not exist",
                             "attributes")
    return attributes


def _sort_key(spec: list) -> list[tuple[str, bool]]:
    keys = []
    for item in spec:
        if not isinstance(item, str) or not item.lstrip("-"):
            raise _invalid("sort_on", "expected attribute names")
        keys.append((item.lstrip("-"), item.startswith("-")))
    return keys


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    """The Entity API, the JWKS and the webhook admin routes of this context's tenant."""
    t = tenant(ctx)

    def endpoint(handler):
        async def run(request: Request) -> JSONResponse:
            try:
                params = await _params(request)
                _authenticate(request, params, ctx)
                _check_type(params)
                return JSONResponse({"stat": "ok", **handler(params)})
            except ApiFailure as failure:
                return failure.response()
        return run

    def find(params: dict[str, str]) -> dict:
        paths = _attribute_paths(t, params)
        try:
            predicate = compile_filter(params.get("filter"))
        except FilterError as exc:
            raise _invalid("filter", str(exc)) from None
        try:
            limit = int(params.get("max_results") or DEFAULT_RESULTS)
        except ValueError:
            raise _invalid("max_results", "not an integer") from None
        if not 1 <= limit <= MAX_RESULTS:
            raise _invalid("max_results", f"must be between 1 and {MAX_RESULTS}")
        sort = _sort_key(_json_param(params, "sort_on", list) or ["id"])
        want_total = params.get("show_total_count", "").lower() in ("true", "1")
        with ctx.lock:
            if sort == [("id", False)]:
                # keyset scans: start after the id bound and stop once the page is full
                bound = lower_id_bound(params.get("filter"))
                start = 0 if bound is None else bisect.bisect_right(t.records, bound, key=lambda e: e["id"])
                matched = []
                for entity in itertools.islice(t.records, start, None):
                    if predicate(entity):
                        matched.append(entity)
                        if len(matched) == limit and not want_total:
                            break
            else:
                matched = [e for e in t.records if predicate(e)]
                for name, descending in reversed(sort):
                    matched.sort(key=lambda e, n=name: _sortable(e, n), reverse=descending)
            total = len(matched)
            results = [project(e, paths) for e in matched[:limit]]
        ctx.count_records(f"{PREFIX}/entity.find", len(results))
        body: dict[str, Any] = {"result_count": len(results), "results": results}
        if want_total:
            body["total_count"] = total
        return body

    def get(params: dict[str, str]) -> dict:
        paths = _attribute_paths(t, params)
        with ctx.lock:
            result = project(t.find_one(params), paths)
        ctx.count_records(f"{PREFIX}/entity", 1)
        return {"result": result}

    def create(params: dict[str, str]) -> dict:
        attributes = _writable(t, _json_param(params, "attributes", dict, required=True))
        with ctx.lock:
            entity = t.add(attributes)
            snapshot = copy.deepcopy(entity)
        ctx.emit(SYSTEM, "entityCreated", snapshot)
        return {"id": snapshot["id"], "uuid": snapshot["uuid"]}

    def update(params: dict[str, str]) -> dict:
        attributes = _writable(t, _json_param(params, "attributes", dict, required=True))
        with ctx.lock:
            entity = t.find_one(params)
            deep_merge(entity, attributes)
            entity["lastUpdated"] = now_timestamp()
            snapshot = copy.deepcopy(entity)
        ctx.emit(SYSTEM, "entityUpdated", snapshot)
        return {}

    def delete(params: dict[str, str]) -> dict:
        with ctx.lock:
            entity = t.find_one(params)
            t.remove(entity)
        ctx.emit(SYSTEM, "entityDeleted", entity)
        return {}

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(t.keys.jwks(), headers={"Cache-Control": "max-age=300"})

    async def webhooks(request: Request) -> JSONResponse:
        return JSONResponse(t.sender.snapshot())

    async def webhook_config(request: Request) -> JSONResponse:
        try:
            changes = await request.json()
        except ValueError:
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        if not isinstance(changes, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        if "url" in changes:
            t.webhook_url_override = changes.pop("url") or ""
        policy = t.sender.policy
        for name, value in changes.items():
            if not hasattr(policy, name):
                return JSONResponse({"error": f"unknown setting {name}"}, status_code=400)
            try:
                setattr(policy, name, type(getattr(policy, name))(value))
            except (TypeError, ValueError):
                return JSONResponse({"error": f"setting {name} must be a number"}, status_code=400)
        return JSONResponse(t.sender.snapshot()["policy"] | {"url_configured": bool(t.sender.url())})

    async def redeliver(request: Request) -> JSONResponse:
        return JSONResponse({"requeued": t.sender.redeliver_failed()})

    async def rotate(request: Request) -> JSONResponse:
        keep = request.query_params.get("keep_previous", "true").lower() != "false"
        return JSONResponse({"kid": t.keys.rotate(keep_previous=keep)})

    methods = ["GET", "POST"]
    return [
        Route(f"{PREFIX}/entity.find", endpoint(find), methods=methods),
        Route(f"{PREFIX}/entity", endpoint(get), methods=methods),
        Route(f"{PREFIX}/entity.create", endpoint(create), methods=["POST"]),
        Route(f"{PREFIX}/entity.update", endpoint(update), methods=["POST"]),
        Route(f"{PREFIX}/entity.delete", endpoint(delete), methods=["POST"]),
        Route(f"{PREFIX}/webhooks/jwks", jwks, methods=["GET"]),
        Route("/__sandbox/akamai/webhooks", webhooks, methods=["GET"]),
        Route("/__sandbox/akamai/webhooks/config", webhook_config, methods=["POST"]),
        Route("/__sandbox/akamai/webhooks/redeliver", redeliver, methods=["POST"]),
        Route("/__sandbox/akamai/rotate-key", rotate, methods=["POST"]),
    ]


def _sortable(entity: dict, name: str) -> tuple:
    value: Any = entity
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    # nulls sort first; mixed types never raise
    return (value is not None, str(type(value).__name__), value if value is not None else 0)


def load_entities(ctx: SandboxContext, entities: Iterable[dict]) -> int:
    """Seed the tenant with entities in Identity Cloud's shape (no webhooks); returns how many were added.

    Entities without an integer ``id`` get the next one; missing ``uuid``/``created``/``lastUpdated`` are filled.
    Same rules as ``AkamaiTenant.add``, in one pass fit for a million seed records: entities are copied as JSON
    (not with ``copy.deepcopy``) and input already in id order is not sorted again.
    """
    t = tenant(ctx)
    batch = list(entities)
    for entity in batch:
        if not isinstance(entity, dict):
            raise TypeError("every Akamai seed record must be a JSON object")
    # ids are kept when they ascend; seeding in id order keeps every given id
    if not _in_id_order(batch):
        batch.sort(
            key=lambda e: (not isinstance(e.get("id"), int), e.get("id") if isinstance(e.get("id"), int) else 0)
        )
    with ctx.lock, gc_paused():
        records, by_uuid, schema = t.records, t.by_uuid, t.schema
        for entity in batch:
            entity = _copy_json(entity)
            if "uuid" not in entity:
                entity["uuid"] = str(uuidlib.uuid4())
            if entity["uuid"] in by_uuid:
                raise ApiFailure(400, 361, "unique_violation", "uuid already exists", "uuid")
            if "created" not in entity:
                entity["created"] = now_timestamp()
            if "lastUpdated" not in entity:
                entity["lastUpdated"] = entity["created"]
            given = entity.get("id")
            if not isinstance(given, int) or given <= (records[-1]["id"] if records else 0):
                entity["id"] = next(t._ids)
            else:
                t._ids = itertools.count(given + 1)
            schema.update(entity)
            records.append(entity)
            by_uuid[entity["uuid"]] = entity
    return len(batch)


def _in_id_order(batch: list[dict]) -> bool:
    """True when sorting by (has no integer id, id) would leave ``batch`` as it is (the sort is stable)."""
    previous = None
    for entity in batch:
        given = entity.get("id")
        if not isinstance(given, int):
            return False
        if previous is not None and given < previous:
            return False
        previous = given
    return True


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars); anything else goes through ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        out = value.copy()  # scalars are shared as they are; only containers need copies of their own
        for k, v in value.items():
            if type(v) not in _ATOMS:
                out[k] = _copy_json(v)
        return out
    if kind is list:
        return [v if type(v) in _ATOMS else _copy_json(v) for v in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


def env(ctx: SandboxContext) -> dict[str, str]:
    """Environment variables that point the Akamai client and the webhook listener at this tenant."""
    base = ctx.config.base_url.rstrip("/")
    return {
        "AKAMAI_BASE_URL": f"{base}{PREFIX}",
        "AKAMAI_CLIENT_ID": ctx.config.client_id,
        "AKAMAI_CLIENT_SECRET": ctx.config.client_secret,
        "AKAMAI_ENTITY_TYPE": ENTITY_TYPE,
        "AKAMAI_WEBHOOK_JWKS_URL": f"{base}{PREFIX}/webhooks/jwks",
        "AKAMAI_WEBHOOK_ISSUER": ISSUER,
        "AKAMAI_WEBHOOK_AUDIENCE": tenant(ctx).audience(),
    }
