"""Microsoft Graph v1.0 ``/users`` as an Azure AD B2C tenant serves it.

Routes (every one needs a bearer token from :mod:`sandbox.microsoft.identity_platform`):

- ``GET    /v1.0/users`` — ``$select`` (unknown property → 400), ``$top`` 1..999 (default 100), paging by an
  opaque ``$skiptoken`` inside ``@odata.nextLink``; records created while paging appear on later pages,
  deleted ones simply stop appearing, and no record is skipped or repeated because of either;
- ``GET    /v1.0/users/delta`` — 400: B2C tenants have no delta query;
- ``GET|PATCH|DELETE /v1.0/users/{id}`` — PATCH accepts known properties and
  ``extension_<extensions app id without dashes>_<Name>``; 204 on success; 404 ``Request_ResourceNotFound``;
- ``POST   /v1.0/users`` — create (tests and the Akamai-less demo);
- ``POST   /v1.0/$batch`` — at most 20 sub-requests, executed one by one, each may be throttled on its own,
  answers in shuffled order carrying the request ``id``.

Records live in ``ctx.state["b2c"]["users"]`` (id → Graph user object) plus an append-only id list, so a page
of 999 out of a million users is a slice, not a scan. Records are replaced on change, never mutated in place
(the page cache relies on it). Sub-requests of a batch are counted in the stats as
``"$batch <METHOD> /v1.0/users/{id}"``; every mutation calls ``ctx.emit("b2c", created|updated|deleted, record)``.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox import wire_json
from sandbox.context import SandboxContext, gc_paused
from sandbox.faults import graph_error
from sandbox.microsoft.identity_platform import authenticate

SYSTEM = "b2c"
COLLECTION = "users"
MAX_TOP = 999
DEFAULT_TOP = 100
MAX_BATCH = 20
# the consent answer first, the contact id last; each consent purpose's time given and expiry, and the client
# signed up through, between
DEFAULT_CUSTOM_ATTRIBUTES = ("CrmSyncConsent", "CrmSyncConsentAt", "CrmSyncConsentExpiresAt", "MarketingConsent",
                             "MarketingConsentAt", "MarketingConsentExpiresAt", "SignUpClientId", "CrmContactId")
_RUNTIME_KEY = "graph.store"

# What Graph v1.0 returns for a user when the request has no $select.
DEFAULT_PROPERTIES: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_STRING_PROPERTIES = (
    "ageGroup",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "department",
    "displayName",
    "employeeId",
    "employeeType",
    "faxNumber",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "passwordPolicies",
    "postalCode",
    "preferredLanguage",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
    "onPremisesImmutableId",
    "employeeHireDate",
    "externalUserState",
)
_BOOL_PROPERTIES = ("accountEnabled", "showInAddressList")
_STRING_LIST_PROPERTIES = ("businessPhones", "otherMails")
_READ_ONLY_PROPERTIES = (
    "id",
    "createdDateTime",
    "creationType",
    "deletedDateTime",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "signInSessionsValidFromDateTime",
    "imAddresses",
    "proxyAddresses",
)
WRITABLE_PROPERTIES = frozenset(
    _STRING_PROPERTIES + _BOOL_PROPERTIES + _STRING_LIST_PROPERTIES + ("identities", "passwordProfile")
)
READABLE_PROPERTIES = frozenset(WRITABLE_PROPERTIES - {"passwordProfile"}) | frozenset(_READ_ONLY_PROPERTIES)
_CANONICAL = {name.lower(): name for name in READABLE_PROPERTIES | {"passwordProfile"}}
_EXTENSION = re.compile(r"^extension_([0-9A-Fa-f]{32})_([A-Za-z][A-Za-z0-9_]*)$")
_SUPPORTED_QUERY_OPTIONS = frozenset({"$select", "$top", "$skiptoken"})


class GraphError(Exception):
    """A request Graph refuses; rendered in Graph's error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class GraphResult:
    status: int
    body: Any = None  # None → no body (204)
    headers: dict[str, str] = field(default_factory=dict)


def extension_prefix(extensions_app_id: str) -> str:
    return f"extension_{extensions_app_id.replace('-', '').lower()}_"


def extension_attribute(extensions_app_id: str, name: str) -> str:
    """The Graph property name of custom attribute ``name``, e.g. ``extension_<appid>_CrmContactId``."""
    return extension_prefix(extensions_app_id) + name


class UserStore:
    """Users by id plus an append-only id list (deleted ids stay as tombstones so positions never shift)."""

    def __init__(self, users: dict[str, dict]) -> None:
        self.users = users
        self.order: list[str] = list(users)
        self.epoch = secrets.token_hex(4)  # skiptokens from another sandbox process are refused
        self._identity_index: dict[tuple[str, str], str] | None = None
        # Serialized projections of users for the most recent $select: repeated full scans (B2C has no delta
        # query) then cost a join instead of a projection + serialization per user. Records are replaced on
        # change, never mutated in place, so dropping the entry on replace/remove keeps the cache exact.
        self._fragments: dict[str, bytes] = {}
        self._fragments_select: tuple[str, ...] | None = None

    def add(self, record: dict) -> None:
        user_id = record["id"]
        if user_id in self.users:
            self.replace(record)
            return
        self.order.append(user_id)
        self.users[user_id] = record
        self._index(record)

    def replace(self, record: dict) -> None:
        """Swap in a new version of an existing user, keeping its position."""
        self._fragments.pop(record["id"], None)
        old = self.users[record["id"]]
        self._unindex(old)
        self.users[record["id"]] = record
        self._index(record)

    def remove(self, user_id: str) -> dict | None:
        self._fragments.pop(user_id, None)
        record = self.users.pop(user_id, None)
        if record is not None:
            self._unindex(record)
        return record

    def page(self, position: int, top: int) -> tuple[list[dict], int | None]:
        """Up to ``top`` live users from ``position``; the next position, or None at the end."""
        order, users = self.order, self.users
        if len(users) == len(order):  # no tombstones: the page is one slice
            ids = order[position : position + top]
            nxt = position + len(ids)
            return [users[i] for i in ids], (nxt if nxt < len(order) else None)
        out: list[dict] = []
        i, end = position, len(order)
        while i < end and len(out) < top:
            record = users.get(order[i])
            if record is not None:
                out.append(record)
            i += 1
        while i < end and order[i] not in users:  # no empty last page
            i += 1
        return out, (i if i < end else None)

    def fragments(
        self, records: list[dict], select: tuple[str, ...], project: Callable[[dict], dict]
    ) -> list[bytes]:
        """JSON of each record projected on ``select`` (one cached projection shape at a time)."""
        if select != self._fragments_select:
            self._fragments = {}
            self._fragments_select = select
        cache, dumps = self._fragments, wire_json.dumps
        out = []
        for record in records:
            fragment = cache.get(record["id"])
            if fragment is None:
                fragment = cache[record["id"]] = dumps(project(record))
            out.append(fragment)
        return out

    # Sign-in names are unique in a tenant; the index is built the first time a write needs it.
    @staticmethod
    def _identity_keys(record: dict) -> list[tuple[str, str]]:
        keys = []
        for identity in record.get("identities") or []:
            if isinstance(identity, dict) and identity.get("signInType") != "federated":
                keys.append(
                    (
                        str(identity.get("signInType", "")).lower(),
                        str(identity.get("issuerAssignedId", "")).lower(),
                    )
                )
        return keys

    def owner_of_identity(self, key: tuple[str, str]) -> str | None:
        if self._identity_index is None:
            self._identity_index = {}
            for record in self.users.values():
                self._index(record)
        return self._identity_index.get(key)

    def _index(self, record: dict) -> None:
        if self._identity_index is not None:
            for key in self._identity_keys(record):
                self._identity_index[key] = record["id"]

    def _unindex(self, record: dict) -> None:
        if self._identity_index is not None:
            for key in self._identity_keys(record):
                if self._identity_index.get(key) == record["id"]:
                    del self._identity_index[key]


def store(ctx: SandboxContext) -> UserStore:
    with ctx.lock:
        existing = ctx.runtime.get(_RUNTIME_KEY)
        users = ctx.state.setdefault(SYSTEM, {}).setdefault(COLLECTION, {})
        if existing is None or existing.users is not users:
            existing = UserStore(users)
            ctx.runtime[_RUNTIME_KEY] = existing
        return existing


def load_users(ctx: SandboxContext, users: list[Any]) -> int:
    """Seed Graph user objects (native shape). Records without ``id`` get one; non-objects are refused.

    Returns how many records were loaded; raises ValueError naming the positions of refused records.
    """
    users_store = store(ctx)
    refused: list[int] = []
    loaded = 0
    with ctx.lock, gc_paused():
        for position, record in enumerate(users):
            if not isinstance(record, dict):
                refused.append(position)
                continue
            if not record.get("id"):
                record = {**record, "id": str(uuid.uuid4())}
            users_store.add(record)
            loaded += 1
    if refused:
        raise ValueError(
            f"{len(refused)} Graph user record(s) are not JSON objects (positions {refused[:10]})"
        )
    return loaded


class GraphApi:
    """The /users resource, independent of HTTP so single requests and $batch sub-requests share one code path."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.rng = random.Random(ctx.config.seed + 1)

    @property
    def store(self) -> UserStore:
        return store(self.ctx)

    def _extension_prefix(self) -> str:
        return extension_prefix(self.ctx.config.extensions_app_id)

    # -- property names -------------------------------------------------------------------------------------
    def _resolve_readable(self, name: str) -> str:
        if _EXTENSION.match(name):
            if name.lower().startswith(self._extension_prefix()):
                return self._extension_prefix() + name[len(self._extension_prefix()) :]
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Property '{name}' does not exist as a declared property or extension property.",
            )
        canonical = _CANONICAL.get(name.lower())
        if canonical is None or canonical == "passwordProfile":
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
            )
        return canonical

    def _parse_select(self, query: dict[str, str]) -> tuple[str, ...]:
        raw = query.get("$select")
        if raw is None:
            return DEFAULT_PROPERTIES
        names = [part.strip() for part in raw.split(",")]
        if not all(names):
            raise GraphError(400, "BadRequest", "Invalid $select: empty property name.")
        return tuple(dict.fromkeys(self._resolve_readable(name) for name in names))

    @staticmethod
    def _check_query_options(query: dict[str, str]) -> None:
        for option in query:
            if option.startswith("$") and option not in _SUPPORTED_QUERY_OPTIONS:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"The query option '{option}' is not supported by this sandbox.",
                )

    @staticmethod
    def _projector(select: tuple[str, ...]) -> Callable[[dict], dict]:
        """A function projecting a record on ``select``; built once per request because pages are hot."""
        plain = tuple(name for name in select if not name.startswith("extension_"))
        extensions = tuple(name for name in select if name.startswith("extension_"))

        def project(record: dict) -> dict:
            get = record.get
            out = {name: get(name) for name in plain}
            for name in extensions:
                if name in record:  # Graph leaves out extension attributes that were never set
                    out[name] = record[name]
            return out

        return project

    # -- skiptoken ------------------------------------------------------------------------------------------
    def _encode_skiptoken(self, position: int) -> str:
        raw = f"{self.store.epoch}:{position}".encode()
        return "X%27" + base64.urlsafe_b64encode(raw).decode().rstrip("=") + "%27"

    def _decode_skiptoken(self, token: str) -> int:
        body = token
        if body.startswith("X'") and body.endswith("'"):
            body = body[2:-1]
        try:
            epoch, _, position = (
                base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().partition(":")
            )
            value = int(position)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise GraphError(
                400, "Request_BadRequest", "The specified page token value has expired or is invalid."
            )
        if epoch != self.store.epoch or value < 0:
            raise GraphError(
                400, "Request_BadRequest", "The specified page token value has expired or is invalid."
            )
        return value

    # -- operations -----------------------------------------------------------------------------------------
    def list_users(self, query: dict[str, str], route: str, serialized: bool = False) -> GraphResult:
        """One page of users; ``serialized`` answers with JSON bytes built from cached per-user fragments."""
        self._check_query_options(query)
        select = self._parse_select(query)
        top_raw = query.get("$top")
        top = DEFAULT_TOP
        if top_raw is not None:
            try:
                top = int(top_raw)
            except ValueError:
                raise GraphError(
                    400, "Request_BadRequest", f"Invalid value '{top_raw}' for query option $top."
                )
            if not 1 <= top <= MAX_TOP:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_TOP} inclusive.",
                )
        position = self._decode_skiptoken(query["$skiptoken"]) if "$skiptoken" in query else 0
        project = self._projector(select)
        with self.ctx.lock:
            records, next_position = self.store.page(position, top)
            if serialized:
                fragments = self.store.fragments(records, select, project)
            else:
                value = [project(r) for r in records]
        base = f"{self.ctx.config.base_url}/v1.0"
        body: dict[str, Any] = {
            "@odata.context": f"{base}/$metadata#users"
            + (f"({','.join(select)})" if "$select" in query else "")
        }
        if next_position is not None:
            params = [f"$top={top}"]
            if "$select" in query:
                params.append("$select=" + quote(",".join(select), safe=",_"))
            params.append("$skiptoken=" + self._encode_skiptoken(next_position))
            body["@odata.nextLink"] = f"{base}/users?" + "&".join(params)
        self.ctx.count_records(route, len(records))
        if serialized:
            head = orjson.dumps(body)[:-1]  # the envelope without its closing brace
            return GraphResult(200, head + b',"value":[' + b",".join(fragments) + b"]}")
        body["value"] = value
        return GraphResult(200, body)

    def get_user(self, user_id: str, query: dict[str, str], route: str) -> GraphResult:
        self._check_query_options(query)
        select = self._parse_select(query)
        record = self.store.users.get(user_id)
        if record is None:
            raise _not_found(user_id)
        body = {
            "@odata.context": f"{self.ctx.config.base_url}/v1.0/$metadata#users/$entity",
            **self._projector(select)(record),
        }
        self.ctx.count_records(route, 1)
        return GraphResult(200, body)

    def _validate_write(self, body: Any, *, creating: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
        changes: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            if _EXTENSION.match(name):
                canonical = self._resolve_readable(name)
                if value is not None and not isinstance(value, (str, bool, int)):
                    raise GraphError(
                        400,
                        "Request_BadRequest",
                        f"Invalid value for property '{name}': expected a string, boolean or integer.",
                    )
                changes[canonical] = value
                continue
            canonical = _CANONICAL.get(name.lower())
            if canonical is None:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"Property '{name}' does not exist as a declared property or extension property.",
                )
            if canonical not in WRITABLE_PROPERTIES:
                raise GraphError(
                    400, "Request_BadRequest", f"Property '{name}' is read-only and cannot be set."
                )
            _check_type(canonical, value)
            changes[canonical] = value
        if creating:
            if not changes.get("displayName"):
                raise GraphError(
                    400, "Request_BadRequest", "Property 'displayName' is required to create a user."
                )
            if not changes.get("identities") and not changes.get("userPrincipalName"):
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "A user needs 'identities' or 'userPrincipalName' to be created.",
                )
        return changes

    def _check_identities_free(self, record: dict, user_id: str) -> None:
        for key in UserStore._identity_keys(record):
            owner = self.store.owner_of_identity(key)
            if owner is not None and owner != user_id:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "Another object with the same value for property identities already exists.",
                )

    def create_user(self, body: Any) -> GraphResult:
        changes = self._validate_write(body, creating=True)
        changes.pop("passwordProfile", None)  # write-only: never stored or returned
        user_id = str(uuid.uuid4())
        record: dict[str, Any] = {
            "id": user_id,
            "createdDateTime": _now(),
            "creationType": "LocalAccount" if changes.get("identities") else None,
            "accountEnabled": True,
            "businessPhones": [],
            "otherMails": [],
            "userPrincipalName": f"{user_id}@{self.ctx.config.tenant_id}",
            "identities": [],
        }
        record.update({k: v for k, v in changes.items() if v is not None})
        with self.ctx.lock:
            self._check_identities_free(record, user_id)
            self.store.add(record)
        self.ctx.emit(SYSTEM, "created", record)
        return GraphResult(
            201,
            {"@odata.context": f"{self.ctx.config.base_url}/v1.0/$metadata#users/$entity", **record},
            {"Location": f"{self.ctx.config.base_url}/v1.0/users/{user_id}"},
        )

    def update_user(self, user_id: str, body: Any) -> GraphResult:
        changes = self._validate_write(body, creating=False)
        changes.pop("passwordProfile", None)
        with self.ctx.lock:
            current = self.store.users.get(user_id)
            if current is None:
                raise _not_found(user_id)
            updated = dict(current)
            for name, value in changes.items():
                if value is None and name.startswith("extension_"):
                    updated.pop(name, None)  # null clears a custom attribute
                else:
                    updated[name] = value
            if "identities" in changes:
                self._check_identities_free(updated, user_id)
            self.store.replace(updated)
        self.ctx.emit(SYSTEM, "updated", updated)
        return GraphResult(204)

    def delete_user(self, user_id: str) -> GraphResult:
        with self.ctx.lock:
            record = self.store.remove(user_id)
        if record is None:
            raise _not_found(user_id)
        self.ctx.emit(SYSTEM, "deleted", record)
        return GraphResult(204)

    # -- dispatch -------------------------------------------------------------------------------------------
    def dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        route_prefix: str = "",
        serialized: bool = False,
    ) -> GraphResult:
        """Run one request against /users; ``path`` is relative to /v1.0 (``/users/<id>``)."""
        segments = [s for s in path.split("/") if s]
        try:
            if not segments or segments[0] != "users" or len(segments) > 2:
                raise GraphError(
                    400,
                    "BadRequest",
                    f"Resource not found for the segment '{segments[0] if segments else ''}'.",
                )
            if len(segments) == 1:
                if method == "GET":
                    return self.list_users(query, f"{route_prefix}GET /v1.0/users", serialized)
                if method == "POST":
                    return self.create_user(body)
            elif segments[1] == "delta":
                if method == "GET":
                    raise GraphError(
                        400,
                        "Request_UnsupportedQuery",
                        "Delta query is not supported on users in Azure AD B2C tenants.",
                    )
            else:
                user_id = segments[1]
                if method == "GET":
                    return self.get_user(user_id, query, f"{route_prefix}GET /v1.0/users/{{id}}")
                if method == "PATCH":
                    return self.update_user(user_id, body)
                if method == "DELETE":
                    return self.delete_user(user_id)
            raise GraphError(
                405, "Request_BadRequest", f"The HTTP method '{method}' is not allowed on this resource."
            )
        except GraphError as exc:
            return GraphResult(exc.status, graph_error(exc.code, exc.message))

    def batch(self, body: Any) -> GraphResult:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _error_result(
                400, "BadRequest", "The batch request must contain a non-empty 'requests' array."
            )
        if len(requests) > MAX_BATCH:
            return _error_result(400, "BadRequest", f"Too many requests in batch. Max: {MAX_BATCH}.")
        ids = [r.get("id") if isinstance(r, dict) else None for r in requests]
        if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
            return _error_result(
                400, "BadRequest", "Every batch request needs a unique, non-empty string 'id'."
            )
        status_by_id: dict[str, int] = {}
        answers = []
        for sub in requests:
            result = self._run_sub_request(sub, status_by_id)
            status_by_id[sub["id"]] = result.status
            answer: dict[str, Any] = {
                "id": sub["id"],
                "status": result.status,
                "headers": {"Content-Type": "application/json", **result.headers},
            }
            if result.body is not None:
                answer["body"] = result.body
            answers.append(answer)
        self.rng.shuffle(answers)  # Graph answers in any order; clients must match by id
        return GraphResult(200, {"responses": answers})

    def _run_sub_request(self, sub: dict, status_by_id: dict[str, int]) -> GraphResult:
        method = str(sub.get("method", "")).upper()
        url = sub.get("url")
        if method not in {"GET", "POST", "PATCH", "DELETE"} or not isinstance(url, str):
            return _error_result(400, "BadRequest", "A batch request needs a 'method' and a relative 'url'.")
        depends_on = sub.get("dependsOn") or []
        if any(status_by_id.get(dep, 0) >= 400 or dep not in status_by_id for dep in depends_on):
            return _error_result(424, "FailedDependency", "A request this one depends on failed.")
        parts = urlsplit(url)
        path = parts.path
        if path.startswith("/v1.0/") or path == "/v1.0":
            path = path[len("/v1.0") :]
        route = f"$batch {method} /v1.0{_template(path)}"
        with self.ctx.lock:
            self.ctx.requests_by_route[route] += 1
        if self._throttle_sub_request():
            return GraphResult(
                429,
                graph_error("TooManyRequests", "Too many requests; retry after 1 second."),
                {"Retry-After": "1"},
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        return self.dispatch(method, path, query, sub.get("body"), route_prefix="$batch ")

    def _throttle_sub_request(self) -> bool:
        config = self.ctx.config
        if config.fault_rate <= 0 or (config.fault_kinds and "429" not in config.fault_kinds):
            return False
        if self.rng.random() >= config.fault_rate:
            return False
        with self.ctx.lock:
            self.ctx.faults["batch_429"] += 1
        return True


def _template(path: str) -> str:
    segments = [s for s in path.split("/") if s]
    if len(segments) == 2 and segments[0] == "users" and segments[1] != "delta":
        return "/users/{id}"
    return "/" + "/".join(segments)


def _check_type(name: str, value: Any) -> None:
    if value is None:
        return
    ok = True
    if name in _BOOL_PROPERTIES:
        ok = isinstance(value, bool)
    elif name in _STRING_LIST_PROPERTIES:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif name == "identities":
        ok = isinstance(value, list) and all(
            isinstance(v, dict)
            and isinstance(v.get("signInType"), str)
            and isinstance(v.get("issuerAssignedId"), str)
            for v in value
        )
    elif name == "passwordProfile":
        ok = isinstance(value, dict)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise GraphError(400, "Request_BadRequest", f"Invalid value for property '{name}'.")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_found(user_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{user_id}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def _error_result(status: int, code: str, message: str) -> GraphResult:
    return GraphResult(status, graph_error(code, message))


def _render(result: GraphResult) -> Response:
    if result.body is None:
        return Response(status_code=result.status, headers=result.headers)
    content = result.body if isinstance(result.body, bytes) else wire_json.dumps(result.body)
    return Response(content, status_code=result.status, media_type="application/json", headers=result.headers)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    api = GraphApi(ctx)

    def endpoint(method_path: str):
        async def handle(request: Request) -> Response:
            refused = authenticate(ctx, request)
            if refused is not None:
                return refused
            try:
                if method_path == "batch":
                    return _render(api.batch(await _json_body(request)))
                body = await _json_body(request) if request.method in ("POST", "PATCH") else None
            except GraphError as exc:
                return _render(_error_result(exc.status, exc.code, exc.message))
            path = request.url.path[len("/v1.0") :]
            return _render(
                api.dispatch(request.method, path, dict(request.query_params), body, serialized=True)
            )

        return handle

    return [
        Route("/v1.0/$batch", endpoint("batch"), methods=["POST"]),
        Route("/v1.0/users", endpoint("users"), methods=["GET", "POST"]),
        Route("/v1.0/users/delta", endpoint("delta"), methods=["GET"]),
        Route("/v1.0/users/{id}", endpoint("user"), methods=["GET", "PATCH", "DELETE"]),
    ]


def env(ctx: SandboxContext) -> dict[str, str]:
    return {
        "GRAPH_BASE_URL": ctx.config.base_url,
        "B2C_EXTENSIONS_APP_ID": ctx.config.extensions_app_id,
        "B2C_CUSTOM_ATTRIBUTES": ",".join(DEFAULT_CUSTOM_ATTRIBUTES),
        "B2C_CONSENT_ATTRIBUTE": DEFAULT_CUSTOM_ATTRIBUTES[0],
        "B2C_CONTACT_ID_ATTRIBUTE": DEFAULT_CUSTOM_ATTRIBUTES[-1],
    }
