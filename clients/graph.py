"""Microsoft Graph client for B2C / External ID tenants: app-only token via msal, retrying requests, paging, $batch."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import msal
import orjson
import requests

from clients import json_bodies
from clients.http import (
    IDEMPOTENT_METHODS,
    ApiError,
    error_code_and_message,
    new_session,
    path_segment,
    send,
    successful_content,
)
from clients.microsoft_identity import app_token, confidential_client
from settings import GraphSettings

BATCH_LIMIT = 20  # Graph's hard limit of sub-requests per $batch


class GraphClient:
    def __init__(self, settings: GraphSettings) -> None:
        self.settings = settings
        self.session = new_session(settings.ca_bundle)
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()
        self._base = settings.graph_base_url.rstrip("/") + "/v1.0"
        self._scope = [settings.graph_base_url.rstrip("/") + "/.default"]

    # -- authentication -------------------------------------------------------------------------------------
    def _application(self) -> msal.ConfidentialClientApplication:
        # built lazily: msal fetches the authority's metadata on construction
        if self._app is None:
            settings = self.settings
            self._app = confidential_client(settings.authority_host, settings.tenant_id, settings.client_id,
                                            settings.client_secret, self.session, settings.timeout_s)
        return self._app

    def token(self) -> str:
        """An app-only access token; msal serves it from its cache until shortly before expiry."""
        with self._lock:
            return app_token(self._application(), self._scope)

    def _drop_token(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()

    # -- requests ---------------------------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return f"{self._base}/{path_or_url.lstrip('/')}"

    def request(self, method: str, path_or_url: str, *, idempotent: bool | None = None,
                **kw: Any) -> requests.Response:
        """Authenticated request with retries (``idempotent``: see ``clients.http.send``); refreshes the token
        once when Graph answers 401."""
        url = self.url(path_or_url)
        extra_headers = kw.pop("headers", None) or {}
        for attempt in range(2):
            headers = {
                "Authorization": f"Bearer {self.token()}",
                "Accept": "application/json",
                **extra_headers,
            }
            response = send(
                self.session,
                method,
                url,
                timeout_s=self.settings.timeout_s,
                retry_max_s=self.settings.retry_max_s,
                idempotent=idempotent,
                headers=headers,
                **kw,
            )
            if response.status_code != 401 or attempt == 1:
                return response
            self._drop_token()
        return response  # pragma: no cover - loop always returns

    def _raw(self, method: str, path_or_url: str, **kw: Any) -> bytes:
        return successful_content(method, self.request(method, path_or_url, **kw), self.url(path_or_url))

    def _json(self, method: str, path_or_url: str, **kw: Any) -> Any:
        return json_bodies.loads(self._raw(method, path_or_url, **kw))

    def iter_user_page_bodies(self, select: Sequence[str], top: int = 999) -> Iterator[tuple[bytes, dict]]:
        """Each page of ``/users`` as its raw JSON body and the parsed body, following ``@odata.nextLink``.

        The raw body lets callers hand a page to another process without re-serialising it.
        """
        params: dict[str, Any] | None = {"$select": ",".join(select), "$top": str(min(max(top, 1), 999))}
        next_url: str | None = "users"
        while next_url:
            raw = self._raw("GET", next_url, params=params)
            params = None  # the next link already carries the query
            body = json_bodies.loads(raw)
            yield raw, body
            next_url = body.get("@odata.nextLink")

    def iter_user_pages(self, select: Sequence[str], top: int = 999) -> Iterator[list[dict]]:
        """Every user of the directory, one page (``value`` array) at a time, following ``@odata.nextLink``."""
        for _, body in self.iter_user_page_bodies(select, top):
            yield body.get("value", [])

    def get_user(self, user_id: str, select: Sequence[str]) -> dict | None:
        """One user, or None when it does not exist (any more)."""
        response = self.request("GET", f"users/{path_segment(user_id)}", params={"$select": ",".join(select)})
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            code, message = error_code_and_message(response)
            raise ApiError(
                f"GET /users/{{id}} failed with HTTP {response.status_code}: {message}",
                status=response.status_code,
                code=code,
            )
        return json_bodies.loads(response.content)

    def batch(self, requests: list[dict]) -> list[dict]:
        """One JSON ``$batch`` of at most 20 sub-requests; answers come back in the order of ``requests``.

        The batch is retried like its sub-requests would be: only when every one of them is idempotent."""
        if not requests:
            return []
        if len(requests) > BATCH_LIMIT:
            raise ValueError(f"a Graph $batch takes at most {BATCH_LIMIT} requests, got {len(requests)}")
        ids = [str(r["id"]) for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("sub-request ids of a $batch must be unique")
        body = self._json(
            "POST",
            "$batch",
            data=orjson.dumps({"requests": requests}),
            headers={"Content-Type": "application/json"},
            idempotent=all(str(r.get("method", "GET")).upper() in IDEMPOTENT_METHODS for r in requests),
        )
        by_id = {str(r.get("id")): r for r in body.get("responses", [])}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ApiError(f"$batch answer lacks {len(missing)} of {len(ids)} sub-responses", retryable=True)
        return [
            {
                "id": i,
                "status": int(by_id[i].get("status", 0)),
                "headers": by_id[i].get("headers") or {},
                "body": by_id[i].get("body"),
            }
            for i in ids
        ]
