"""Akamai Identity Cloud Entity API client (the Capture-style ``entity.*`` calls).

Every call is a form-encoded POST with HTTP Basic client credentials; answers carry ``"stat": "ok"`` or
``"stat": "error"`` with a numeric ``code`` and a short ``error`` name. Transport failures, throttling and
5xx are retried by ``clients.http.send``; an error answer becomes ``ApiError`` whose message carries the
error name and code only (descriptions may echo attribute values).
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Self

import requests

from clients.http import ApiError, new_session, send
from settings import AkamaiSettings

# Capture error codes that mean "no such record": the caller gets None or a non-retryable error.
RECORD_NOT_FOUND = 310
MAX_PAGE_SIZE = 1000


class AkamaiClient:
    """Reads and updates entities of one entity type (``settings.entity_type``)."""

    def __init__(self, settings: AkamaiSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self._session = session or new_session(settings.ca_bundle)
        self._session.auth = (settings.client_id, settings.client_secret)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, endpoint: str, params: Mapping[str, Any]) -> dict:
        """POST one ``entity.*`` call; returns the ``stat: ok`` body or raises ``ApiError``."""
        url = f"{self.settings.base_url.rstrip('/')}/{endpoint}"
        form = {"type_name": self.settings.entity_type, **{k: v for k, v in params.items() if v is not None}}
        # every entity.* call this client makes reads or sets attributes: repeating it changes nothing
        response = send(self._session, "POST", url, data=form, idempotent=True,
                        timeout_s=self.settings.timeout_s, retry_max_s=self.settings.retry_max_s)
        try:
            body = response.json()
        except ValueError:
            raise ApiError(f"POST /{endpoint} answered HTTP {response.status_code} without JSON",
                           status=response.status_code, retryable=False) from None
        if not isinstance(body, dict):
            raise ApiError(f"POST /{endpoint} answered an unexpected JSON shape", status=response.status_code)
        if body.get("stat") == "ok" and response.ok:
            return body
        code = body.get("code")
        name = body.get("error") or f"HTTP {response.status_code}"
        raise ApiError(f"POST /{endpoint} failed: {name} (code {code})",
                       status=response.status_code, code=str(name), retryable=False)

    def find_pages(self, attributes: Sequence[str], after_id: int = 0, page_size: int = MAX_PAGE_SIZE,
                   filter: str | None = None) -> Iterator[list[dict]]:
        """Every entity matching ``filter``, in pages ordered by ``id`` (keyset paging: ``id > last``).

        Keyset paging on the immutable ``id`` neither skips nor repeats records created or updated while the
        scan runs, unlike offset paging.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        wanted = list(dict.fromkeys(["id", *attributes]))
        last_id = int(after_id)
        while True:
            expression = f"id > {last_id}" if not filter else f"({filter}) and id > {last_id}"
            body = self.call("entity.find", {
                "filter": expression,
                "attributes": json.dumps(wanted),
                "sort_on": json.dumps(["id"]),
                "max_results": str(page_size),
            })
            page = body.get("results") or []
            if not page:
                return
            yield page
            if len(page) < page_size:
                return
            last_id = max(int(entity["id"]) for entity in page)

    def get_entity(self, uuid: str, attributes: Sequence[str] | None = None) -> dict | None:
        """The entity with this uuid, or None when Identity Cloud has no such record."""
        params: dict[str, Any] = {"uuid": uuid}
        if attributes:
            params["attributes"] = json.dumps(list(dict.fromkeys(["id", "uuid", *attributes])))
        try:
            return self.call("entity", params).get("result")
        except ApiError as exc:
            if exc.code == "record_not_found":
                return None
            raise

    def update_entity(self, uuid: str, attributes: dict) -> None:
        """Merge ``attributes`` (nested objects allowed) into the entity; unnamed attributes stay as they are."""
        self.call("entity.update", {"uuid": uuid, "attributes": json.dumps(attributes)})
