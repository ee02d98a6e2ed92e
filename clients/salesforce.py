"""Salesforce REST client: client-credentials token against a configurable host, retrying requests, SOQL paging.

Not built on simple-salesforce, on purpose: every call here goes through ``clients.http.send``, which retries a
request only when repeating it is safe (a create is never sent twice after a timeout) and reports an unknown
outcome, while simple-salesforce sends each request once and turns any non-2xx answer into an exception, so the
writers would lose both the retries and the error codes they judge answers by. Its login flows also build
``*.salesforce.com`` hosts, where the token here comes from any configured host. What it would add on top (SOQL
paging, sObject describe, Bulk API 2.0 jobs) is a few lines each here; the library stays a test dependency that
checks the sandbox answers a widely used client the way Salesforce does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import requests

from clients import json_bodies
from clients.http import (
    ApiError,
    RequestLimitExceeded,
    error_code_and_message,
    new_session,
    path_segment,
    send,
    successful_content,
)
from settings import SalesforceSettings

_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforceClient:
    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings
        self.session = new_session(settings.ca_bundle)
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._instance_url: str | None = None
        self.api_usage: tuple[int, int] | None = None

    # -- authentication -------------------------------------------------------------------------------------
    def _login(self) -> None:
        response = send(
            self.session,
            "POST",
            f"{self.settings.login_url}/services/oauth2/token",
            timeout_s=self.settings.timeout_s,
            retry_max_s=self.settings.retry_max_s,
            idempotent=True,  # a second token is as good as the first
            data={
                "grant_type": "client_credentials",
                "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret,
            },
        )
        if response.status_code != 200:
            code, message = error_code_and_message(response)
            raise ApiError(
                f"Salesforce token request refused with HTTP {response.status_code}: {code or message}",
                status=response.status_code,
                code=code,
            )
        body = response.json()
        self._access_token = body["access_token"]
        self._instance_url = body["instance_url"].rstrip("/")

    def _credentials(self) -> tuple[str, str]:
        with self._lock:
            if self._access_token is None:
                self._login()
            assert self._access_token is not None and self._instance_url is not None
            return self._access_token, self._instance_url

    def _relogin(self, stale_token: str) -> None:
        with self._lock:
            if self._access_token == stale_token:  # another thread may already have refreshed it
                self._login()

    @property
    def instance_url(self) -> str:
        return self._credentials()[1]


    # -- requests ---------------------------------------------------------------------------------------------
    def url(self, path: str, instance_url: str) -> str:
        if path.startswith(("https://", "http://")):
            return path
        if path.startswith("/services/"):  # e.g. nextRecordsUrl, already absolute on the instance
            return instance_url + path
        return f"{instance_url}/services/data/v{self.settings.api_version}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, idempotent: bool | None = None, **kw: Any) -> requests.Response:
        """Authenticated request with retries (``idempotent``: see ``clients.http.send``); re-logs in once on
        INVALID_SESSION_ID.

        Raises ``RequestLimitExceeded`` on 403 REQUEST_LIMIT_EXCEEDED; other statuses are returned.
        """
        extra_headers = kw.pop("headers", None) or {}
        for attempt in range(2):
            token, instance_url = self._credentials()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **extra_headers}
            url = self.url(path, instance_url)
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
            self._note_limits(response)
            if response.status_code == 403:
                code, message = error_code_and_message(response)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise RequestLimitExceeded(
                        f"Salesforce API request limit exceeded: {message}", status=403, code=code
                    )
            if response.status_code == 401 and attempt == 0:
                self._relogin(token)
                continue
            return response
        return response  # pragma: no cover - loop always returns

    def _note_limits(self, response: requests.Response) -> None:
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))

    def _raw(self, method: str, path: str, **kw: Any) -> bytes:
        return successful_content(method, self.request(method, path, **kw), path)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return json_bodies.loads(self._raw(method, path, **kw))

    def query_page_bodies(
        self, soql: str, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[tuple[bytes, dict]]:
        """Each page of a SOQL query as its raw JSON body and the parsed body, following nextRecordsUrl.

        ``batch_size`` is passed as the ``Sforce-Query-Options`` hint (Salesforce clamps it to 200..2000).
        """
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        raw = self._raw(
            "GET", "queryAll" if include_deleted else "query", params={"q": soql}, headers=headers
        )
        while True:
            body = json_bodies.loads(raw)
            yield raw, body
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not next_url:
                return
            raw = self._raw("GET", next_url, headers=headers)

    def query_pages(
        self, soql: str, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[list[dict]]:
        """Records of a SOQL query page by page (``queryAll`` when ``include_deleted``), following nextRecordsUrl."""
        for _, body in self.query_page_bodies(soql, include_deleted, batch_size):
            yield body.get("records", [])

    def describe(self, sobject: str = "Contact") -> dict:
        return self._json("GET", f"sobjects/{path_segment(sobject)}/describe")
