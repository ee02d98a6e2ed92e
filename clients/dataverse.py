"""Dynamics 365 / Dataverse Web API (OData v4) client: app-only token via msal, paging by ``@odata.nextLink``,
change tracking (``Prefer: odata.track-changes`` and delta links), table metadata, and ``$batch`` of change sets.

Every HTTP attempt passes a ``RequestGate`` (``clients.throttle``) that keeps the client inside Dataverse's
service protection limits (concurrent requests, requests per 5 minutes) and holds every thread back while a
429's ``Retry-After`` runs. Transport failures, 429 and 5xx are retried by ``clients.http.send`` within the
retry budget; other statuses go back to the caller.
"""
from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import quote

import msal
import orjson
import requests

from clients.http import (
    IDEMPOTENT_METHODS,
    ApiError,
    error_code_and_message,
    new_session,
    send,
    successful_content,
)
from clients.microsoft_identity import app_token, confidential_client
from clients.throttle import GatedAdapter, RequestGate
from settings import DataverseSettings

SERVICE_PROTECTION_WINDOW_S = 300.0
BATCH_LIMIT = 1000  # requests per $batch
ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0", "Accept": "application/json"}
DELETED_ENTITY = "$deletedEntity"
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def odata_string(value: str) -> str:
    """An OData string literal: single-quoted, quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def key_segment(entity_set: str, key: str | None = None, value: str | None = None, *, record_id: str | None = None
                ) -> str:
    """``contacts(<guid>)`` or ``contacts(<key>='<value>')`` with the value percent-encoded, so data can never
    leave its path segment (a quote, slash or ``?`` in an identity id stays part of the key)."""
    if record_id is not None:
        if not _GUID.fullmatch(record_id):
            raise ValueError("a Dataverse record id must be a GUID")
        return f"{entity_set}({record_id})"
    if not key or value is None:
        raise ValueError("an alternate key needs its column and value")
    return f"{entity_set}({key}={quote(odata_string(value), safe=chr(39))})"


def guid_in(text: str | None) -> str | None:
    """The record id in an ``OData-EntityId`` (``…/contacts(<guid>)``), when it names one."""
    match = _GUID.search(text or "")
    return match.group(0).lower() if match else None


def is_deleted_entry(record: Any) -> bool:
    """A change-tracking entry for a record that left the set (``{"@odata.context": "…/$deletedEntity",
    "id": …, "reason": "deleted"|"changed"}``)."""
    return isinstance(record, dict) and str(record.get("@odata.context", "")).endswith(DELETED_ENTITY)


@dataclass(frozen=True)
class Attribute:
    logical_name: str
    attribute_type: str
    valid_for_create: bool
    valid_for_update: bool
    valid_for_read: bool


@dataclass(frozen=True)
class EntityMetadata:
    """What the table's definition says (``EntityDefinitions(LogicalName=…)``), as far as idlink needs it."""

    logical_name: str
    entity_set: str
    primary_id: str
    change_tracking: bool
    attributes: dict[str, Attribute]
    keys: dict[str, tuple[tuple[str, ...], str]]  # key name -> (key columns, index status)

    @classmethod
    def from_definition(cls, body: dict) -> EntityMetadata:
        attributes = {}
        for a in body.get("Attributes") or []:
            name = str(a.get("LogicalName", ""))
            attributes[name] = Attribute(name, str(a.get("AttributeType", "")), a.get("IsValidForCreate") is True,
                                         a.get("IsValidForUpdate") is True, a.get("IsValidForRead") is not False)
        keys = {str(k.get("LogicalName")): (tuple(k.get("KeyAttributes") or ()), str(k.get("EntityKeyIndexStatus")))
                for k in body.get("Keys") or []}
        return cls(str(body.get("LogicalName", "")), str(body.get("EntitySetName", "")),
                   str(body.get("PrimaryIdAttribute", "")), body.get("ChangeTrackingEnabled") is True,
                   attributes, keys)

    def alternate_key_on(self, column: str) -> str | None:
        """The name of an active alternate key made of ``column`` alone, if the table has one."""
        for name, (columns, status) in self.keys.items():
            if [c.lower() for c in columns] == [column.lower()] and status.lower() == "active":
                return name
        return None


@dataclass(frozen=True)
class Page:
    raw: bytes
    records: list[Any]
    next_link: str | None
    delta_link: str | None


@dataclass(frozen=True)
class BatchRequest:
    """One request of a ``$batch``, sent in a change set of its own (so it succeeds or fails alone)."""

    method: str
    path: str  # relative to the API root, e.g. contacts(idlink_identityid='…')
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None

    def error(self) -> tuple[str | None, str]:
        err = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(err, dict):
            return err.get("code") or None, str(err.get("message", ""))[:300]
        return None, f"HTTP {self.status}"


def _headers_and_body(chunk: bytes) -> tuple[dict[str, str], bytes]:
    split = _BLANK_LINE.search(chunk)
    head, body = (chunk[:split.start()], chunk[split.end():]) if split else (chunk, b"")
    headers = {}
    for line in head.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, body


def _boundary(content_type: str) -> str | None:
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    return str(boundary) if boundary else None


def _mime_parts(body: bytes, boundary: str) -> list[bytes]:
    """The parts of a multipart body (between ``--boundary`` lines, up to ``--boundary--``)."""
    parts = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.strip(b"\r\n"))
    return parts


def _http_response(payload: bytes) -> BatchResponse:
    status_line, _, rest = payload.partition(b"\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise ApiError("a $batch part is not an HTTP response", code="invalid_batch_response", retryable=True) \
            from None
    headers, body = _headers_and_body(rest)
    text = body.strip()
    try:
        parsed = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        parsed = None
    return BatchResponse(status, headers, parsed)


def parse_batch_response(content_type: str, body: bytes) -> list[tuple[str | None, BatchResponse]]:
    """``(Content-ID, response)`` of every request answered, change-set responses flattened, in order."""
    boundary = _boundary(content_type)
    if not boundary:
        raise ApiError("the $batch answer is not multipart", code="invalid_batch_response", retryable=True)
    answers: list[tuple[str | None, BatchResponse]] = []
    for part in _mime_parts(body, boundary):
        headers, payload = _headers_and_body(part)
        inner = _boundary(headers.get("content-type", "")) if "multipart" in headers.get("content-type", "") \
            else None
        if inner:
            for sub in _mime_parts(payload, inner):
                sub_headers, sub_payload = _headers_and_body(sub)
                answers.append((sub_headers.get("content-id"), _http_response(sub_payload)))
        else:
            answers.append((headers.get("content-id"), _http_response(payload)))
    return answers


def batch_body(api_root: str, requests_: Sequence[BatchRequest], boundary: str) -> bytes:
    """A multipart/mixed ``$batch`` body: each request in a change set of its own, ``Content-ID`` = position."""
    lines: list[str] = []
    for position, item in enumerate(requests_, start=1):
        changeset = f"changeset_{uuid.uuid4().hex}"
        lines += [f"--{boundary}", f"Content-Type: multipart/mixed; boundary={changeset}", "",
                  f"--{changeset}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                  f"Content-ID: {position}", "", f"{item.method} {api_root}/{item.path} HTTP/1.1"]
        headers = {"Content-Type": "application/json", **item.headers} if item.body is not None else item.headers
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["", orjson.dumps(item.body).decode() if item.body is not None else "", f"--{changeset}--"]
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines).encode()


class DataverseClient:
    def __init__(self, settings: DataverseSettings) -> None:
        self.settings = settings
        self.gate = RequestGate(settings.max_concurrent, settings.requests_per_window, SERVICE_PROTECTION_WINDOW_S)
        self.session = new_session(settings.ca_bundle)
        pool = max(16, settings.max_concurrent)
        self.session.mount("https://", GatedAdapter(self.gate, pool_connections=4, pool_maxsize=pool))
        self.api_root = f"{settings.url.rstrip('/')}/api/data/v{settings.api_version}"
        self._scope = [f"{settings.url.rstrip('/')}/.default"]
        self._app: msal.ConfidentialClientApplication | None = None
        self._token_lock = threading.Lock()
        self._calls = 0
        self._calls_lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        return self._calls

    # -- authentication -------------------------------------------------------------------------------------
    def token(self) -> str:
        with self._token_lock:
            if self._app is None:  # msal fetches the authority's metadata when built
                s = self.settings
                self._app = confidential_client(s.authority_host, s.tenant_id, s.client_id, s.client_secret,
                                                self.session, s.timeout_s)
            return app_token(self._app, self._scope)

    def _drop_token(self) -> None:
        with self._token_lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()

    # -- requests ---------------------------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith("https://"):
            return path_or_url
        return f"{self.api_root}/{path_or_url.lstrip('/')}"

    def request(self, method: str, path_or_url: str, *, idempotent: bool | None = None,
                **kw: Any) -> requests.Response:
        """Authenticated request with retries (``idempotent``: see ``clients.http.send``); refreshes the token
        once when Dataverse answers 401."""
        url = self.url(path_or_url)
        extra_headers = kw.pop("headers", None) or {}
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.token()}", **ODATA_HEADERS, **extra_headers}
            with self._calls_lock:
                self._calls += 1
            response = send(self.session, method, url, timeout_s=self.settings.timeout_s,
                            retry_max_s=self.settings.retry_max_s, idempotent=idempotent, headers=headers, **kw)
            if response.status_code != 401 or attempt == 1:
                return response
            self._drop_token()
        return response  # pragma: no cover - loop always returns

    def get_json(self, path_or_url: str, **kw: Any) -> Any:
        return orjson.loads(successful_content("GET", self.request("GET", path_or_url, **kw), self.url(path_or_url)))

    def metadata(self, logical_name: str = "contact") -> EntityMetadata:
        """The table's definition: entity set, primary key, change tracking, attributes and alternate keys."""
        body = self.get_json(
            f"EntityDefinitions(LogicalName={odata_string(logical_name)})",
            params={"$select": "LogicalName,EntitySetName,PrimaryIdAttribute,ChangeTrackingEnabled",
                    "$expand": "Attributes($select=LogicalName,AttributeType,IsValidForCreate,IsValidForUpdate,"
                               "IsValidForRead),Keys($select=LogicalName,KeyAttributes,EntityKeyIndexStatus)"})
        return EntityMetadata.from_definition(body)

    def pages(self, path_or_url: str, params: dict | None = None, track_changes: bool = False) -> Iterator[Page]:
        """Every page of a query (or of a delta link), following ``@odata.nextLink``; with ``track_changes``
        the last page carries the ``@odata.deltaLink`` that later returns what changed since."""
        prefer = [f"odata.maxpagesize={self.settings.page_size}"]
        if track_changes:
            prefer.insert(0, "odata.track-changes")
        headers = {"Prefer": ", ".join(prefer)}
        url, query = path_or_url, params
        while True:
            raw = successful_content("GET", self.request("GET", url, params=query, headers=headers), self.url(url))
            body = orjson.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("value", []), list):
                raise ApiError("a Dataverse query answered something that is not a collection",
                               code="invalid_collection")
            next_link = body.get("@odata.nextLink")
            yield Page(raw, body.get("value") or [], next_link, body.get("@odata.deltaLink"))
            if not next_link:
                return
            url, query = next_link, None  # the link is opaque: follow it exactly as given

    def get_record(self, path: str, params: dict | None = None) -> dict | None:
        """One record, or None when it does not exist (any more)."""
        response = self.request("GET", path, params=params)
        if response.status_code == 404:
            return None
        body = orjson.loads(successful_content("GET", response, self.url(path)))
        return body if isinstance(body, dict) else None

    def batch(self, items: Sequence[BatchRequest]) -> list[BatchResponse]:
        """One ``$batch`` of at most 1000 requests, each in a change set of its own, with
        ``Prefer: odata.continue-on-error`` so one refused request does not stop the others. Answers come back
        in the order of ``items`` (matched by ``Content-ID``)."""
        if not items:
            return []
        if len(items) > BATCH_LIMIT:
            raise ValueError(f"a Dataverse $batch takes at most {BATCH_LIMIT} requests, got {len(items)}")
        boundary = f"batch_{uuid.uuid4().hex}"
        # retried like its requests would be: only when every one of them is idempotent
        response = self.request("POST", "$batch", data=batch_body(self.api_root, items, boundary),
                                headers={"Content-Type": f"multipart/mixed; boundary={boundary}",
                                         "Prefer": "odata.continue-on-error"},
                                idempotent=all(item.method.upper() in IDEMPOTENT_METHODS for item in items))
        if response.status_code >= 400:
            code, message = error_code_and_message(response)
            raise ApiError(f"POST $batch failed with HTTP {response.status_code}: {message}",
                           status=response.status_code, code=code, retryable=response.status_code >= 500)
        answers = parse_batch_response(response.headers.get("Content-Type", ""), response.content)
        if len(answers) != len(items):
            raise ApiError(f"the $batch answer holds {len(answers)} responses for {len(items)} requests",
                           code="unmatched_batch_response", retryable=True)
        by_id = {content_id: answer for content_id, answer in answers if content_id}
        if len(by_id) == len(items):
            return [by_id[str(position)] for position in range(1, len(items) + 1)]
        return [answer for _, answer in answers]  # a failed change set may answer without its Content-ID
