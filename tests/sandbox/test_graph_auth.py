"""Client-credentials tokens from the simulated Microsoft identity platform, and Graph refusing bad tokens."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import msal
import pytest
import requests
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sandbox.context import SandboxConfig, SandboxContext
from sandbox.microsoft import graph, identity_platform

BASE = "https://testserver"
CONFIG = SandboxConfig(base_url=BASE)
TOKEN_PATH = f"/{CONFIG.tenant_id}/oauth2/v2.0/token"


@pytest.fixture
def ctx() -> SandboxContext:
    context = SandboxContext(config=SandboxConfig(base_url=BASE))
    graph.load_users(context, [{"id": "u1", "displayName": "One"}])
    return context


@pytest.fixture
def api(ctx: SandboxContext) -> Iterator[TestClient]:
    with TestClient(
        Starlette(routes=identity_platform.routes(ctx) + graph.routes(ctx)), base_url=BASE
    ) as client:
        yield client


def token_request(**overrides: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": CONFIG.client_id,
        "client_secret": CONFIG.client_secret,
        "scope": "https://graph.microsoft.com/.default",
    } | overrides


@pytest.fixture
def no_ambient_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the ``verify`` msal configures; drop them."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.mark.usefixtures("no_ambient_ca_bundle")
def test_msal_gets_a_token_through_discovery_and_graph_accepts_it(sandbox) -> None:
    env = sandbox.env
    app = msal.ConfidentialClientApplication(
        env["B2C_CLIENT_ID"],
        client_credential=env["B2C_CLIENT_SECRET"],
        authority=f"{env['B2C_AUTHORITY_HOST']}/{env['B2C_TENANT_ID']}",
        instance_discovery=False,
        verify=env["IDLINK_CA_BUNDLE"],
    )
    result = app.acquire_token_for_client(scopes=[f"{env['GRAPH_BASE_URL']}/.default"])
    assert "access_token" in result, result.get("error_description")
    assert result["token_type"] == "Bearer" and result["expires_in"] > 3000
    with requests.Session() as graph_session:  # what the production client uses
        graph_session.verify = env["IDLINK_CA_BUNDLE"]
        graph_session.headers["Authorization"] = f"Bearer {result['access_token']}"
        first = graph_session.get(f"{env['GRAPH_BASE_URL']}/v1.0/users", params={"$top": "5"}, timeout=10)
        assert first.status_code == 200 and len(first.json()["value"]) == 5
        second = graph_session.get(first.json()["@odata.nextLink"], timeout=10)
        assert second.status_code == 200
    first_ids = {u["id"] for u in first.json()["value"]}
    assert len(second.json()["value"]) == 5 and not first_ids & {u["id"] for u in second.json()["value"]}


@pytest.mark.usefixtures("no_ambient_ca_bundle")
def test_msal_reports_a_wrong_secret_as_invalid_client(sandbox) -> None:
    env = sandbox.env
    app = msal.ConfidentialClientApplication(
        env["B2C_CLIENT_ID"],
        client_credential="wrong",
        authority=f"{env['B2C_AUTHORITY_HOST']}/{env['B2C_TENANT_ID']}",
        instance_discovery=False,
        verify=env["IDLINK_CA_BUNDLE"],
    )
    result = app.acquire_token_for_client(scopes=[f"{env['GRAPH_BASE_URL']}/.default"])
    assert result["error"] == "invalid_client" and "AADSTS7000215" in result["error_description"]


def test_discovery_of_an_unknown_tenant_is_refused(api: TestClient) -> None:
    response = api.get("/other.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400 and "AADSTS90002" in response.json()["error_description"]


def test_issued_token_verifies_against_the_published_jwks(api: TestClient) -> None:
    token = api.post(TOKEN_PATH, data=token_request()).json()["access_token"]
    jwks = api.get(f"/{CONFIG.tenant_id}/discovery/v2.0/keys").json()
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="https://graph.microsoft.com")
    assert claims["tid"] == CONFIG.tenant_id and claims["appid"] == CONFIG.client_id


@pytest.mark.parametrize(
    ("overrides", "status", "error", "code"),
    [
        ({"client_id": "someone-else"}, 400, "unauthorized_client", 700016),
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"scope": "User.Read"}, 400, "invalid_scope", 1002012),
        ({"scope": "https://management.azure.com/.default"}, 400, "invalid_scope", 1002012),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ],
    ids=["unknown-client", "wrong-secret", "scope-without-default", "other-resource", "wrong-grant"],
)
def test_token_request_failures_answer_in_aadsts_shape(
    api: TestClient, overrides, status, error, code
) -> None:
    response = api.post(TOKEN_PATH, data=token_request(**overrides))
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error and body["error_codes"] == [code] and body["trace_id"]
    assert "access_token" not in body


def test_client_secret_in_basic_auth_header_is_accepted(api: TestClient) -> None:
    data = {k: v for k, v in token_request().items() if k not in ("client_id", "client_secret")}
    response = api.post(TOKEN_PATH, data=data, auth=(CONFIG.client_id, CONFIG.client_secret))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ", "Bearer not-a-token", "Basic dXNlcjpwdw=="],
    ids=["missing", "empty", "garbage", "wrong-scheme"],
)
def test_graph_refuses_missing_or_unknown_tokens_with_401(api: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = api.get("/v1.0/users", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_token_signed_by_another_key_is_refused(api: TestClient) -> None:
    other = SandboxContext(config=SandboxConfig(base_url=BASE))
    foreign, _ = identity_platform.issue_token(other, identity_platform.GRAPH_RESOURCE)
    assert api.get("/v1.0/users", headers={"Authorization": f"Bearer {foreign}"}).status_code == 401


def test_expired_token_is_refused(api: TestClient, ctx: SandboxContext) -> None:
    ctx.config.token_lifetime_s = 0  # expires the moment it is issued
    token = api.post(TOKEN_PATH, data=token_request()).json()["access_token"]
    expired = api.get("/v1.0/users/u1", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_token_within_its_lifetime_is_accepted(api: TestClient, ctx: SandboxContext) -> None:
    ctx.config.token_lifetime_s = 60
    token = api.post(TOKEN_PATH, data=token_request()).json()["access_token"]
    assert api.get("/v1.0/users/u1", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_token_lifetime_is_reported_to_the_client(api: TestClient, ctx: SandboxContext) -> None:
    ctx.config.token_lifetime_s = 600
    body = api.post(TOKEN_PATH, data=token_request()).json()
    assert body["expires_in"] == 600 and body["ext_expires_in"] == 600
