"""Simulated Dynamics 365 / Dataverse environment: the Web API (OData v4) for the ``contact`` table.

``DATAVERSE_URL`` = ``<sandbox>/dynamics``; the API root is ``/dynamics/api/data/v9.2``. Every call needs a
bearer token the simulated identity platform issued for that URL (scope ``<DATAVERSE_URL>/.default``).

``GET  EntityDefinitions(LogicalName='contact')``  columns (``IsValidForCreate`` / ``…ForUpdate``) and the
                                                   alternate key ``idlink_identityid_key`` on ``idlink_identityid``
``GET  contacts``            ``$select``; ``Prefer: odata.maxpagesize=N`` (≤ 5000) pages by ``@odata.nextLink``
                             (``$skiptoken``, primary-key order); with ``Prefer: odata.track-changes`` the last page
                             carries ``@odata.deltaLink``; ``$filter``/``$top``/``$orderby`` are refused with it.
``GET  <deltaLink>``         records changed since (``versionnumber``) and ``{"@odata.context": "…/$deletedEntity",
                             "id", "reason": "deleted"}`` for records deleted since; a token the server does not
                             know answers 410
``GET|PATCH|DELETE contacts(<guid>)`` or ``contacts(idlink_identityid='<value>')``: PATCH is an upsert;
                             ``If-Match: *`` makes it update-only (404 when absent), ``If-None-Match: *``
                             create-only (412 when present); ``Prefer: return=representation`` answers 201 / 200
                             with the ``$select``-ed columns, otherwise 204 with ``OData-EntityId``
``POST Merge``               the ``Merge`` action: ``{"Target": {"contactid"}, "Subordinate": {"contactid"},
                             "UpdateContent": {...}, "PerformParentingChecks": false}`` deactivates the subordinate
                             (``statecode`` 1, ``merged`` true, ``masterid`` = the target), the target takes the
                             update content; 204
``POST $batch``              multipart/mixed of requests and change sets (≤ 1000 requests), executed in order;
                             ``Prefer: odata.continue-on-error`` goes on after a failure

Service protection: more than ``dataverse_max_concurrent`` requests at once, or more than
``dataverse_requests_per_window`` in ``dataverse_window_s`` seconds, answer 429 with ``Retry-After`` and the
Web API's error codes (a ``$batch`` counts as one request); ``dataverse_execution_ms`` is how long each request
is worked on (runtime settings of the admin routes). Errors are ``{"error": {"code": "0x…", "message"}}``.
Records live in ``ctx.state["dynamics"]["contacts"]`` in the Web API's shape; ``load_contacts`` seeds them.
"""
from __future__ import annotations

import asyncio
import bisect
import random
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox import tokens
from sandbox.context import SandboxContext
from sandbox.dataverse import batch
from sandbox.dataverse.schema import (
    COLUMNS,
    DOES_NOT_EXIST,
    ENTITY_SET,
    EXTERNAL_ID_FIELD,
    LOOKUP_PROPERTIES,
    PRIMARY_ID,
    UNKNOWN_PROPERTY,
    WriteRefused,
    check_write,
    definition,
)
from sandbox.dataverse.store import ContactStore, load_contacts, store_of

__all__ = ["env", "load_contacts", "routes"]

PREFIX = "/dynamics"
API_VERSION = "9.2"
API = f"{PREFIX}/api/data/v{API_VERSION}"
MAX_PAGE_SIZE = 5000
MAX_BATCH = 1000
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
            404: "Not Found", 410: "Gone", 412: "Precondition Failed", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}
_DELTA_SESSIONS = "dataverse.delta_sessions"


def environment_url(ctx: SandboxContext) -> str:
    return f"{ctx.config.base_url}{PREFIX}"


def env(ctx: SandboxContext) -> dict[str, str]:
    config = ctx.config
    return {"DATAVERSE_URL": environment_url(ctx), "DATAVERSE_TENANT_ID": config.tenant_id,
            "DATAVERSE_CLIENT_ID": config.client_id, "DATAVERSE_CLIENT_SECRET": config.client_secret,
            "DATAVERSE_AUTHORITY_HOST": config.base_url, "DATAVERSE_API_VERSION": API_VERSION,
            "DATAVERSE_EXTERNAL_ID_FIELD": EXTERNAL_ID_FIELD}


def _error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


class _Answer(Exception):
    """An error answer, raised from deep inside request handling."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.body, self.headers = status, _error_body(code, message), headers or {}


class ServiceProtection:
    """Per-process request counting of the simulated environment (one client user in the sandbox)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.sent: deque[float] = deque()

    def admit(self, ctx: SandboxContext) -> None:
        config, now = ctx.config, time.monotonic()
        with ctx.lock:
            while self.sent and self.sent[0] <= now - config.dataverse_window_s:
                self.sent.popleft()
            if self.in_flight >= config.dataverse_max_concurrent:
                raise _Answer(429, "0x80072326", f"Number of concurrent requests exceeded the limit of "
                              f"{config.dataverse_max_concurrent}.", {"Retry-After": "1"})
            if len(self.sent) >= config.dataverse_requests_per_window:
                wait = max(1, int(self.sent[0] + config.dataverse_window_s - now) + 1)
                raise _Answer(429, "0x80072322", f"Number of requests exceeded the limit of "
                              f"{config.dataverse_requests_per_window} over time window of "
                              f"{config.dataverse_window_s:g} seconds.", {"Retry-After": str(wait)})
            self.sent.append(now)
            self.in_flight += 1

    def done(self, ctx: SandboxContext) -> None:
        with ctx.lock:
            self.in_flight -= 1


_SELECTABLE = {name for name, c in COLUMNS.items() if c.type not in ("Lookup", "Customer")} | set(LOOKUP_PROPERTIES)


def _select(params: dict[str, list[str]]) -> list[str]:
    wanted = [s.strip() for s in (params.get("$select") or [""])[0].split(",") if s.strip()]
    for name in wanted:
        if name not in _SELECTABLE:
            raise _Answer(400, UNKNOWN_PROPERTY,
                          f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.contact'.")
    return wanted


def _project(record: dict, select: list[str]) -> dict:
    out: dict[str, Any] = {"@odata.etag": f'W/"{record["versionnumber"]}"'}
    for name in select or [n for n in record if n in _SELECTABLE]:
        out[name] = record.get(name)
    out[PRIMARY_ID] = record[PRIMARY_ID]
    return out


def _target(store: ContactStore, inner: str) -> tuple[str | None, dict | None]:
    """(record id, record) named by the key predicate inside ``contacts(…)``; the id of a new record by key is
    None."""
    if "=" not in inner:
        record_id = inner.strip().lower()
        try:
            uuid.UUID(record_id)
        except ValueError:
            raise _Answer(400, "0x80060888", f"Bad Request - Error in query syntax: {inner!r}") from None
        return record_id, store.records.get(record_id)
    name, _, literal = inner.partition("=")
    if name.strip() != EXTERNAL_ID_FIELD or not (literal.startswith("'") and literal.endswith("'")):
        raise _Answer(400, "0x80060888", "The key used is not defined for the entity 'contact'.")
    record = store.find(literal[1:-1].replace("''", "'"))
    return (record[PRIMARY_ID] if record else None), record


def _key_value(inner: str) -> str | None:
    if "=" not in inner:
        return None
    return inner.partition("=")[2][1:-1].replace("''", "'")


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    resource = environment_url(ctx)
    tokens.protect(ctx, resource)
    protection = ServiceProtection()
    rng = random.Random(ctx.config.seed)
    api_url = f"{ctx.config.base_url}{API}"

    def authenticate(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        refused = "Access token is empty." if scheme.lower() != "bearer" or not token.strip() else \
            tokens.verify(ctx, token.strip(), {resource})
        if refused:
            raise _Answer(401, "0x80040220", refused, {"WWW-Authenticate": "Bearer"})

    def collection(params: dict[str, list[str]], prefer: str) -> tuple[int, dict[str, str], bytes]:
        store = store_of(ctx)
        tracking = "odata.track-changes" in prefer
        page_size = MAX_PAGE_SIZE
        for preference in prefer.split(","):
            name, _, value = preference.strip().partition("=")
            if name == "odata.maxpagesize" and value.isdigit():
                page_size = max(1, min(int(value), MAX_PAGE_SIZE))
        if tracking or "$deltatoken" in params:
            for option in ("$filter", "$orderby", "$expand", "$top"):
                if option in params:
                    raise _Answer(400, "0x80060888", f'The "{option[1:]}" query parameter isn\'t supported when '
                                  "Change Tracking is enabled.")
        select = _select(params)
        select_text = ",".join(select)
        headers = {"Preference-Applied": ", ".join(
            (["odata.track-changes"] if tracking else []) + [f"odata.maxpagesize={page_size}"])}
        skip = (params.get("$skiptoken") or [""])[0]
        delta = (params.get("$deltatoken") or [""])[0]
        base_query = f"$select={select_text}" if select else ""
        with ctx.lock:
            if delta:
                records, gone, version, offset = _delta_page(store, delta, skip)
                body: dict[str, Any] = {"@odata.context": f"{api_url}/$metadata#{ENTITY_SET}({select_text})/$delta"}
                entries = [_project(r, select) for r in records] + [
                    {"@odata.context": f"{api_url}/$metadata#{ENTITY_SET}/$deletedEntity", "id": i,
                     "reason": "deleted"} for i in gone]
                window = entries[offset:offset + page_size]
                if offset + page_size < len(entries):
                    body["@odata.nextLink"] = (f"{api_url}/{ENTITY_SET}?{base_query}&$deltatoken={delta}"
                                               f"&$skiptoken={_session_token(skip, delta)}:{offset + page_size}")
                else:
                    body["@odata.deltaLink"] = f"{api_url}/{ENTITY_SET}?{base_query}&$deltatoken={version}!delta"
                body["value"] = window
                ctx.count_records(f"GET {API}/{ENTITY_SET} (delta)", len(window))
                return 200, headers, orjson.dumps(body)
            version_text, _, last = skip.partition(":") if skip else (str(store.version), "", "")
            start = _after(store, last)
            ids = store.ids[start:start + page_size]
            body = {"@odata.context": f"{api_url}/$metadata#{ENTITY_SET}({select_text})",
                    "value": [_project(store.records[i], select) for i in ids]}
            if start + page_size < len(store.ids):
                body["@odata.nextLink"] = (f"{api_url}/{ENTITY_SET}?{base_query}&$skiptoken="
                                           f"{version_text}:{ids[-1]}")
            elif tracking:
                body["@odata.deltaLink"] = f"{api_url}/{ENTITY_SET}?{base_query}&$deltatoken={version_text}!initial"
        ctx.count_records(f"GET {API}/{ENTITY_SET}", len(ids))
        return 200, headers, orjson.dumps(body)

    def _delta_page(store: ContactStore, delta: str, skip: str) -> tuple[list[dict], list[str], int, int]:
        sessions = ctx.runtime.setdefault(_DELTA_SESSIONS, {})
        if skip:
            session, _, offset = skip.partition(":")
            if session not in sessions:
                raise _Answer(410, "0x80044352", "The delta token is expired or not valid.")
            records, gone, version = sessions[session]
            return records, gone, version, int(offset or 0)
        version_text = delta.partition("!")[0]
        if not version_text.isdigit() or int(version_text) > store.version:
            raise _Answer(410, "0x80044352", "The delta token is expired or not valid.")
        records, gone = store.changes_since(int(version_text))
        if len(sessions) > 64:  # a delta read is paged within minutes; older sessions are abandoned
            sessions.pop(next(iter(sessions)))
        sessions[delta] = (records, gone, store.version)
        return records, gone, store.version, 0

    def _session_token(skip: str, delta: str) -> str:
        return skip.partition(":")[0] if skip else delta

    def record_request(method: str, inner: str, params: dict[str, list[str]], headers: dict[str, str],
                       body: bytes) -> tuple[int, dict[str, str], bytes]:
        store = store_of(ctx)
        select = _select(params)
        with ctx.lock:
            record_id, record = _target(store, inner)
            if method == "GET":
                if record is None:
                    raise _Answer(404, DOES_NOT_EXIST, f"contact With Id = {record_id or inner} Does Not Exist")
                return 200, {}, orjson.dumps(_project(record, select))
            if method == "DELETE":
                if record is None or not store.delete(record[PRIMARY_ID]):
                    raise _Answer(404, DOES_NOT_EXIST, f"contact With Id = {record_id or inner} Does Not Exist")
                return 204, {}, b""
            if method != "PATCH":
                raise _Answer(405, "0x80060888", f"{method} is not allowed on a contact.")
            if headers.get("if-match", "").strip() == "*" and record is None:
                raise _Answer(404, DOES_NOT_EXIST, f"contact With Id = {record_id or inner} Does Not Exist")
            if headers.get("if-none-match", "").strip() == "*" and record is not None:
                raise _Answer(412, "", "A record with matching key values already exists.")
            try:
                values = check_write(orjson.loads(body or b"{}"), creating=record is None)
            except orjson.JSONDecodeError:
                raise _Answer(400, "0x80048d19", "Error identified in Payload provided by the user for Entity "
                              "'contact'.") from None
            except WriteRefused as refused:
                raise _Answer(refused.status, refused.code, refused.message) from None
            if "=" in inner and record is not None:
                values.pop(EXTERNAL_ID_FIELD, None)  # the key that found the record is not updated
            elif "=" in inner:
                values.setdefault(EXTERNAL_ID_FIELD, _key_value(inner))
            try:
                saved, created = store.save(record_id, values)
            except WriteRefused as refused:
                raise _Answer(refused.status, refused.code, refused.message) from None
        entity_id = f"{api_url}/{ENTITY_SET}({saved[PRIMARY_ID]})"
        if "return=representation" in headers.get("prefer", ""):
            return (201 if created else 200), {"OData-EntityId": entity_id, "Preference-Applied":
                                               "return=representation"}, orjson.dumps(_project(saved, select))
        return 204, {"OData-EntityId": entity_id}, b""

    def merge(body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            request = orjson.loads(body or b"{}")
            target_id = str(request["Target"][PRIMARY_ID]).lower()
            subordinate_id = str(request["Subordinate"][PRIMARY_ID]).lower()
            content = check_write(request.get("UpdateContent") or {}, creating=False)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise _Answer(400, "0x80048d19", "Merge needs Target and Subordinate with their contactid.") from None
        except WriteRefused as refused:
            raise _Answer(refused.status, refused.code, refused.message) from None
        store = store_of(ctx)
        with ctx.lock:
            for record_id in (target_id, subordinate_id):
                if record_id not in store.records:
                    raise _Answer(404, DOES_NOT_EXIST, f"contact With Id = {record_id} Does Not Exist")
            if target_id == subordinate_id or store.records[subordinate_id].get("merged"):
                raise _Answer(400, "0x8004d20a", "The subordinate record cannot be merged into this target.")
            store.merge(target_id, subordinate_id, content)
        return 204, {}, b""

    def execute(method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One Web API request (direct or inside a batch); ``url`` is raw (percent-encoded)."""
        parts = urlsplit(url)
        path = parts.path
        if not path.startswith(API + "/"):
            raise _Answer(404, "0x80060888", "Resource not found for the segment.")
        segment = unquote(path[len(API) + 1:])
        params = parse_qs(parts.query, keep_blank_values=True)
        if segment.startswith("EntityDefinitions(") and method == "GET":
            if "LogicalName='contact'" not in segment:
                raise _Answer(404, DOES_NOT_EXIST, "Could not find an entity with the given name.")
            return 200, {}, orjson.dumps({"@odata.context": f"{api_url}/$metadata#EntityDefinitions/$entity",
                                          **definition()})
        if segment == ENTITY_SET and method == "GET":
            return collection(params, headers.get("prefer", ""))
        if segment.startswith(f"{ENTITY_SET}(") and segment.endswith(")"):
            return record_request(method, segment[len(ENTITY_SET) + 1:-1], params, headers, body)
        if segment == "Merge" and method == "POST":
            return merge(body)
        raise _Answer(404, "0x80060888", f"Resource not found for the segment '{segment.split('(')[0]}'.")

    def answer(status: int, headers: dict[str, str], body: bytes) -> Response:
        return Response(body, status_code=status, headers={"OData-Version": "4.0", **headers},
                        media_type="application/json; odata.metadata=minimal" if body else None)

    async def guarded(request: Request, work) -> Response:
        try:
            authenticate(request)
            protection.admit(ctx)
        except _Answer as refusal:
            return answer(refusal.status, refusal.headers, refusal.body)
        try:
            if ctx.config.dataverse_execution_ms > 0:
                await asyncio.sleep(ctx.config.dataverse_execution_ms / 1000)
            return await work()
        except _Answer as refusal:
            return answer(refusal.status, refusal.headers, refusal.body)
        finally:
            protection.done(ctx)

    async def api(request: Request) -> Response:
        async def work() -> Response:
            raw = request.scope.get("raw_path", request.url.path.encode()).decode()
            query = request.url.query
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            return answer(*execute(request.method, raw + (f"?{query}" if query else ""), headers, body))
        return await guarded(request, work)

    async def batch_endpoint(request: Request) -> Response:
        async def work() -> Response:
            try:
                parts = batch.parse(request.headers.get("content-type", ""), await request.body())
            except batch.BatchSyntaxError as exc:
                raise _Answer(400, "0x80048d19", f"The batch request is malformed: {exc}") from None
            if sum(len(p.requests) for p in parts) > MAX_BATCH:
                raise _Answer(400, "0x8006088a", f"The batch contains more than {MAX_BATCH} requests.")
            go_on = "odata.continue-on-error" in request.headers.get("prefer", "")
            answers: list[tuple[bool, list[batch.InnerResponse]]] = []
            failed = False
            for part in parts:
                responses = []
                for inner in part.requests:
                    responses.append(run_inner(inner))
                    if responses[-1].status >= 400:
                        break
                answers.append((part.changeset, responses))
                if responses and responses[-1].status >= 400:
                    failed = True
                    if not go_on:
                        break
            content_type, body = batch.render(answers)
            status = 400 if failed and not go_on else 200
            return Response(body, status_code=status, headers={"OData-Version": "4.0"}, media_type=content_type)
        return await guarded(request, work)

    def run_inner(inner: batch.InnerRequest) -> batch.InnerResponse:
        ctx.count_records(f"$batch {inner.method} {API}/{ENTITY_SET}", 1)
        config = ctx.config
        if config.fault_rate > 0 and inner.method != "GET" and rng.random() < config.fault_rate / 2:
            with ctx.lock:
                ctx.faults["batch_503"] += 1
            status, headers, body = 503, {}, _error_body("0x80040216", "An unexpected error occurred.")
        else:
            try:
                url = inner.path if inner.path.startswith("/") else urlsplit(inner.path)._replace(
                    scheme="", netloc="").geturl()
                status, headers, body = execute(inner.method, url, inner.headers, inner.body)
            except _Answer as refusal:
                status, headers, body = refusal.status, refusal.headers, refusal.body
        if body:
            headers = {"Content-Type": "application/json; odata.metadata=minimal", **headers}
        return batch.InnerResponse(status, _REASONS.get(status, ""), {"OData-Version": "4.0", **headers}, body,
                                   inner.content_id)

    return [
        Route(f"{API}/$batch", batch_endpoint, methods=["POST"]),
        Route(f"{API}/{{rest:path}}", api, methods=["GET", "PATCH", "DELETE", "POST"]),
    ]


def _after(store: ContactStore, last_id: str) -> int:
    """Position of the first id after ``last_id`` (keyset paging: records added or removed meanwhile never
    shift a page)."""
    return bisect.bisect_right(store.ids, last_id) if last_id else 0
