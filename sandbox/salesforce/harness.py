"""An in-process Salesforce simulator for fast tests: the real routes on a Starlette app, called through
Starlette's test client with a valid session, no sockets and no subprocess.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from sandbox import salesforce
from sandbox.context import SandboxConfig, SandboxContext

BASE_URL = "https://testserver"


class InProcessSalesforce:
    """``sf.get("query", params=...)`` calls ``/services/data/v62.0/query`` with a bearer token."""

    def __init__(self, contacts: Iterable[Mapping[str, Any]] = (), **config: Any):
        self.ctx = SandboxContext(replace(SandboxConfig(base_url=BASE_URL), **config))
        self.events: list[tuple[str, str, dict]] = []
        self.ctx.listeners.append(lambda system, event, record: self.events.append((system, event, record)))
        salesforce.load_contacts(self.ctx, contacts)
        self.client = TestClient(Starlette(routes=salesforce.routes(self.ctx)), base_url=BASE_URL)
        self.token = self.request_token().json()["access_token"]

    def request_token(self, client_id: str | None = None, client_secret: str | None = None):
        return self.client.post("/services/oauth2/token", data={
            "grant_type": "client_credentials",
            "client_id": client_id if client_id is not None else self.ctx.config.client_id,
            "client_secret": client_secret if client_secret is not None else self.ctx.config.client_secret,
        })

    @property
    def contacts(self) -> dict[str, dict]:
        return self.ctx.state["salesforce"]["Contact"]

    def url(self, path: str) -> str:
        return path if path.startswith("/") else f"/services/data/v{salesforce.API_VERSION}/{path}"

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any):
        merged = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.client.request(method, self.url(path), headers=merged, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any):
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any):
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any):
        return self.request("DELETE", path, **kwargs)

    def query(self, soql: str, *, all_rows: bool = False, **kwargs: Any):
        return self.get("queryAll" if all_rows else "query", params={"q": soql}, **kwargs)

    def close(self) -> None:
        self.client.close()
