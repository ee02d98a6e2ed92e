"""HTTP plumbing shared by the Salesforce routes: the per-sandbox org, OAuth tokens, API limits, error shapes."""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox import wire_json
from sandbox.context import SandboxContext
from sandbox.salesforce.ids import ORG_PREFIX, USER_PREFIX, random_id
from sandbox.salesforce.schema import ValidationFailed
from sandbox.salesforce.store import ContactStore, http_status_of

LOG = logging.getLogger(__name__)
SUPPORTED_VERSIONS = tuple(f"{v}.0" for v in range(55, 63))
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
# shown in Sforce-Limit-Info when the sandbox runs without a daily limit, so clients can still compute a ratio
UNLIMITED_DISPLAY = 5_000_000
JSON_MEDIA_TYPE = "application/json;charset=UTF-8"


class ApiError(Exception):
    """Answered in the native shape ``[{"message", "errorCode"}]`` with ``status``."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.body: Any = [{"message": message, "errorCode": error_code, **({"fields": fields} if fields else {})}]


class Org:
    """Everything one sandbox's simulated org keeps besides the records: sessions, usage, cursors, bulk jobs."""

    def __init__(self, ctx: SandboxContext):
        self.ctx = ctx
        self.contacts = ContactStore(ctx)
        self.org_id = random_id(ORG_PREFIX)
        self.user_id = random_id(USER_PREFIX)
        self._sessions: dict[str, float] = {}  # token -> monotonic expiry
        self._usage_lock = threading.Lock()
        self.api_requests = 0
        self.extras: dict[str, Any] = {}  # per-feature state (query cursors, bulk jobs)

    def issue_token(self) -> str:
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        lifetime = float(getattr(self.ctx.config, "token_lifetime_s", 3600))
        now = time.monotonic()
        with self._usage_lock:
            # forget expired sessions so a long-running sandbox does not accumulate them
            self._sessions = {t: exp for t, exp in self._sessions.items() if exp > now}
            self._sessions[token] = now + lifetime
        return token

    def is_valid_token(self, token: str) -> bool:
        expiry = self._sessions.get(token)
        return expiry is not None and expiry > time.monotonic()

    @property
    def daily_limit(self) -> int:
        return int(getattr(self.ctx.config, "daily_api_limit", 0) or 0)

    def count_api_request(self) -> tuple[int, bool]:
        """Count one API call; returns (usage so far, whether it is over the daily limit)."""
        with self._usage_lock:
            self.api_requests += 1
            used = self.api_requests
        return used, bool(self.daily_limit) and used > self.daily_limit

    def limit_header(self) -> str:
        return f"api-usage={self.api_requests}/{self.daily_limit or UNLIMITED_DISPLAY}"


_ORG_ATTRIBUTE = "_salesforce_org"
_org_lock = threading.Lock()


def org_of(ctx: SandboxContext) -> Org:
    """The org simulated for this sandbox context (created on first use)."""
    org = getattr(ctx, _ORG_ATTRIBUTE, None)
    if org is None:
        with _org_lock:
            org = getattr(ctx, _ORG_ATTRIBUTE, None)
            if org is None:
                org = Org(ctx)
                setattr(ctx, _ORG_ATTRIBUTE, org)
    return org


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(wire_json.dumps(body), status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers)


def instance_url(ctx: SandboxContext, request: Request) -> str:
    return (ctx.config.base_url or str(request.base_url)).rstrip("/")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


Endpoint = Callable[[Request], Awaitable[Response]]


def api_endpoint(ctx: SandboxContext) -> Callable[[Callable[[Request, Org], Awaitable[Response]]], Endpoint]:
    """Wrap a handler with session check, version check, daily API limit and the Sforce-Limit-Info header."""
    org = org_of(ctx)

    def decorate(handler: Callable[[Request, Org], Awaitable[Response]]) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            token = bearer_token(request)
            if token is None or not org.is_valid_token(token):
                return json_response(
                    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401)
            version = request.path_params.get("version")
            if version is not None and version not in SUPPORTED_VERSIONS:
                return json_response(
                    [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], 404)
            _, over_limit = org.count_api_request()
            if over_limit:
                response = json_response(
                    [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403)
            else:
                try:
                    response = await handler(request, org)
                except ApiError as error:
                    response = json_response(error.body, error.status)
                except ValidationFailed as failure:
                    response = json_response([e.as_rest() for e in failure.errors], http_status_of(failure))
                except Exception as error:  # noqa: BLE001 - answer like Salesforce; log the kind only (no data)
                    LOG.error("Salesforce simulator: %s in %s", type(error).__name__, handler.__name__)
                    response = json_response(
                        [{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}], 500)
            response.headers["Sforce-Limit-Info"] = org.limit_header()
            return response

        return endpoint

    return decorate


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None


# ---------------------------------------------------------------------------- unauthenticated endpoints

def token_endpoint(ctx: SandboxContext) -> Endpoint:
    """OAuth 2.0 client-credentials flow of a connected app."""
    org = org_of(ctx)

    async def token(request: Request) -> Response:
        # form-encoded body (parsed here: the multipart extra is not a dependency), query string as fallback
        form = dict(request.query_params)
        form.update({k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()})
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = client_secret = None
        grant_type = form.get("grant_type")
        if grant_type != "client_credentials":
            return json_response({"error": "unsupported_grant_type", "error_description": "grant type not supported"},
                                 400)
        if not (isinstance(client_id, str) and isinstance(client_secret, str)
                and hmac.compare_digest(client_id, ctx.config.client_id)
                and hmac.compare_digest(client_secret, ctx.config.client_secret)):
            return json_response({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        base = instance_url(ctx, request)
        identity_url = f"{base}/id/{org.org_id}/{org.user_id}"
        issued_at = str(int(time.time() * 1000))
        signature = base64.b64encode(
            hmac.new(ctx.config.client_secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        return json_response({
            "access_token": org.issue_token(),
            "signature": signature,
            "scope": "api",
            "instance_url": base,
            "id": identity_url,
            "token_type": "Bearer",
            "issued_at": issued_at,
        })

    return token


async def versions(request: Request) -> Response:
    return json_response([
        {"label": f"Release {v}", "url": f"/services/data/v{v}", "version": v} for v in SUPPORTED_VERSIONS
    ])
