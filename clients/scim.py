"""SCIM 2.0 client (RFC 7643 / RFC 7644) for reading the users of a directory with a bearer token.

``/Users`` is paged by ``startIndex`` (1-based) and ``count``; what the server supports (filtering, its page
limit) is read from ``/ServiceProviderConfig``. Transport failures, throttling and 5xx are retried by
``clients.http.send``; any other error answer becomes ``ApiError`` carrying the SCIM ``scimType``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote

import orjson
import requests

from clients.http import ApiError, new_session, send, successful_content
from settings import ScimSettings

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MEDIA_TYPE = "application/scim+json"


@dataclass(frozen=True)
class ServiceProvider:
    """What a SCIM server says it supports (RFC 7643 §5); a server that says nothing supports nothing."""

    filter_supported: bool = False
    max_results: int | None = None  # the most resources one page may hold, when announced

    @classmethod
    def from_config(cls, body: Any) -> ServiceProvider:
        body = body if isinstance(body, dict) else {}
        feature = body.get("filter") if isinstance(body.get("filter"), dict) else {}
        max_results = feature.get("maxResults")
        return cls(
            filter_supported=feature.get("supported") is True,
            max_results=max_results if isinstance(max_results, int) and max_results > 0 else None,
        )


@dataclass(frozen=True)
class UserPage:
    raw: bytes  # the page's body as sent, for workers that parse it themselves
    resources: list[Any]
    start_index: int
    total_results: int | None


def scim_filter_string(value: str) -> str:
    """A SCIM filter string literal (RFC 7644 §3.4.2.2: JSON string syntax)."""
    return orjson.dumps(value).decode()


def attribute_value(resource: dict, path: str) -> Any:
    """The value at a SCIM attribute path: ``name.givenName``, or ``<schema URN>:<attribute>[.<sub>]`` for an
    extension (the attribute follows the URN's last colon)."""
    target: Any = resource
    if path.startswith("urn:"):
        schema, _, path = path.rpartition(":")
        target = resource.get(schema)
    for part in path.split("."):
        if not isinstance(target, dict):
            return None
        target = target.get(part)
    return target


class ScimClient:
    def __init__(self, settings: ScimSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or new_session(settings.ca_bundle)
        self.calls = 0

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.settings.token}", "Accept": MEDIA_TYPE,
                   **(kw.pop("headers", None) or {})}
        self.calls += 1
        return send(self.session, method, f"{self.settings.base_url}/{path.lstrip('/')}",
                    timeout_s=self.settings.timeout_s, retry_max_s=self.settings.retry_max_s,
                    headers=headers, **kw)

    def _json(self, path: str, params: dict | None = None) -> tuple[bytes, Any]:
        raw = successful_content("GET", self.request("GET", path, params=params), path)
        try:
            return raw, orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(f"GET /{path.split('?')[0]} answered something that is not JSON",
                           code="invalid_json") from None

    def service_provider(self) -> ServiceProvider:
        """The server's announced features; a server without the endpoint (404) is taken to support none."""
        response = self.request("GET", "ServiceProviderConfig")
        if response.status_code == 404:
            return ServiceProvider()
        return ServiceProvider.from_config(orjson.loads(successful_content("GET", response, "ServiceProviderConfig")))

    def page_size(self, provider: ServiceProvider) -> int:
        return min(self.settings.page_size, provider.max_results or self.settings.page_size)

    def user_pages(self, count: int, filter: str | None = None,
                   attributes: Sequence[str] = ()) -> Iterator[UserPage]:
        """Every page of ``/Users`` (matching ``filter``), following ``startIndex`` until a short or empty page.

        ``totalResults`` is only read, not trusted to end the scan: it moves while users are created or removed.
        """
        start = 1
        while True:
            params: dict[str, Any] = {"startIndex": start, "count": count}
            if filter:
                params["filter"] = filter
            if attributes:
                params["attributes"] = ",".join(attributes)
            raw, body = self._json("Users", params)
            if not isinstance(body, dict) or not isinstance(body.get("Resources", []), list):
                raise ApiError("GET /Users answered something that is not a SCIM ListResponse",
                               code="invalid_list_response")
            resources = body.get("Resources") or []
            total = body.get("totalResults")
            yield UserPage(raw, resources, start, total if isinstance(total, int) else None)
            # a server may send fewer than asked (its own limit): only an empty page ends the scan for sure
            if not resources or (isinstance(total, int) and start + len(resources) > total):
                return
            start += len(resources)

    def total_users(self) -> int | None:
        """``totalResults`` of ``/Users`` without any resource (``count=0``, RFC 7644 §3.4.2.4)."""
        _, body = self._json("Users", {"count": 0})
        total = body.get("totalResults") if isinstance(body, dict) else None
        return total if isinstance(total, int) else None

    def get_user(self, user_id: str) -> dict | None:
        """One user, or None when the directory has no such user (any more)."""
        path = f"Users/{quote(user_id, safe='')}"
        response = self.request("GET", path)
        if response.status_code == 404:
            return None
        body = orjson.loads(successful_content("GET", response, "Users/{id}"))
        return body if isinstance(body, dict) else None
