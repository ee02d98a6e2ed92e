"""Graph /v1.0/users as a B2C tenant serves it: paging, $select, $top, reads, writes, deletes."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sandbox import admin
from sandbox.context import SandboxConfig, SandboxContext
from sandbox.microsoft import graph, identity_platform

BASE = "https://testserver"
CONFIG = SandboxConfig(base_url=BASE)
EXT = graph.extension_prefix(CONFIG.extensions_app_id)
OTHER_APP_EXT = "extension_0123456789abcdef0123456789abcdef_CrmContactId"


def make_users(n: int) -> list[dict]:
    return [
        {
            "id": f"00000000-0000-4000-8000-{i:012d}",
            "displayName": f"User {i}",
            "givenName": "Given",
            "surname": "Family",
            "mail": None,
            "identities": [
                {
                    "signInType": "emailAddress",
                    "issuer": CONFIG.tenant_id,
                    "issuerAssignedId": f"user{i}@example.test",
                }
            ],
            EXT + "CrmSyncConsent": i % 2 == 0,
        }
        for i in range(n)
    ]


@pytest.fixture
def ctx() -> SandboxContext:
    context = SandboxContext(config=SandboxConfig(base_url=BASE))
    graph.load_users(context, make_users(250))
    return context


@pytest.fixture
def api(ctx: SandboxContext) -> Iterator[TestClient]:
    app = Starlette(routes=identity_platform.routes(ctx) + graph.routes(ctx) + admin.routes(ctx))
    with TestClient(app, base_url=BASE) as client:
        token = client.post(
            f"/{CONFIG.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CONFIG.client_id,
                "client_secret": CONFIG.client_secret,
                "scope": f"{BASE}/.default",
            },
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def follow(api: TestClient, next_link: str) -> dict:
    parts = urlsplit(next_link)
    return api.get(f"{parts.path}?{parts.query}").json()


def read_all(api: TestClient, params: dict) -> list[dict]:
    page = api.get("/v1.0/users", params=params).json()
    records = list(page["value"])
    while "@odata.nextLink" in page:
        page = follow(api, page["@odata.nextLink"])
        records.extend(page["value"])
    return records


def test_paging_by_next_link_returns_every_user_once_in_order(api: TestClient) -> None:
    records = read_all(api, {"$top": "99", "$select": "id"})
    assert [r["id"] for r in records] == [u["id"] for u in make_users(250)]


def test_default_page_size_is_100_and_next_link_keeps_select_and_top(api: TestClient) -> None:
    first = api.get("/v1.0/users").json()
    assert len(first["value"]) == 100
    selected = api.get("/v1.0/users", params={"$top": "5", "$select": "id,displayName"}).json()
    query = urlsplit(selected["@odata.nextLink"]).query
    assert "$top=5" in query and "$select=id,displayName" in query and "$skiptoken=" in query
    assert list(follow(api, selected["@odata.nextLink"])["value"][0]) == ["id", "displayName"]


def test_last_page_has_no_next_link(api: TestClient) -> None:
    page = api.get("/v1.0/users", params={"$top": "999"}).json()
    assert len(page["value"]) == 250
    assert "@odata.nextLink" not in page


def test_without_select_only_default_properties_are_returned(api: TestClient) -> None:
    record = api.get("/v1.0/users", params={"$top": "1"}).json()["value"][0]
    assert set(record) == set(graph.DEFAULT_PROPERTIES)
    assert "identities" not in record and EXT + "CrmSyncConsent" not in record


def test_select_projects_properties_including_extension_attributes(api: TestClient) -> None:
    consent = EXT + "CrmSyncConsent"
    params = {"$top": "2", "$select": f"id,identities,{consent},{EXT}CrmContactId"}
    records = api.get("/v1.0/users", params=params).json()["value"]
    assert records[0]["identities"][0]["signInType"] == "emailAddress"
    assert [r[consent] for r in records] == [True, False]
    assert all(EXT + "CrmContactId" not in r for r in records)  # never set → left out, like Graph


@pytest.mark.parametrize("select", ["id,noSuchProperty", OTHER_APP_EXT, "passwordProfile", "id,,mail"])
def test_select_of_unknown_property_is_a_400(api: TestClient, select: str) -> None:
    response = api.get("/v1.0/users", params={"$select": select})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] and error["message"] and error["innerError"]["request-id"]


@pytest.mark.parametrize("top", ["0", "1000", "-1", "ten"])
def test_top_outside_1_to_999_is_a_400(api: TestClient, top: str) -> None:
    assert api.get("/v1.0/users", params={"$top": top}).status_code == 400


def test_unsupported_query_option_is_refused_not_ignored(api: TestClient) -> None:
    response = api.get("/v1.0/users", params={"$filter": "displayName eq 'x'"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_tampered_skiptoken_is_a_400(api: TestClient) -> None:
    assert api.get("/v1.0/users", params={"$skiptoken": "bm9wZQ"}).status_code == 400


def test_delta_query_is_refused_like_b2c(api: TestClient) -> None:
    response = api.get("/v1.0/users/delta")
    assert response.status_code == 400
    assert "Delta" in response.json()["error"]["message"]


def test_paging_survives_concurrent_creates_and_deletes(api: TestClient, ctx: SandboxContext) -> None:
    first = api.get("/v1.0/users", params={"$top": "100", "$select": "id"}).json()
    seen = [r["id"] for r in first["value"]]
    deleted = make_users(250)[150]["id"]
    assert api.delete(f"/v1.0/users/{deleted}").status_code == 204
    created = api.post(
        "/v1.0/users",
        json={
            "displayName": "Late",
            "identities": [
                {
                    "signInType": "emailAddress",
                    "issuer": CONFIG.tenant_id,
                    "issuerAssignedId": "late@example.test",
                }
            ],
        },
    ).json()["id"]
    page = follow(api, first["@odata.nextLink"])
    while True:
        seen.extend(r["id"] for r in page["value"])
        if "@odata.nextLink" not in page:
            break
        page = follow(api, page["@odata.nextLink"])
    expected = [u["id"] for u in make_users(250) if u["id"] != deleted] + [created]
    assert seen == expected


def test_get_user_by_id_and_404_for_unknown_id(api: TestClient) -> None:
    user_id = make_users(1)[0]["id"]
    assert (
        api.get(f"/v1.0/users/{user_id}", params={"$select": "id,displayName"}).json()["displayName"]
        == "User 0"
    )
    missing = api.get("/v1.0/users/does-not-exist")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"


def test_patch_of_extension_attribute_answers_204_and_updates_the_record(
    api: TestClient, ctx: SandboxContext
) -> None:
    events: list[tuple[str, str, str]] = []
    ctx.listeners.append(lambda system, event, record: events.append((system, event, record["id"])))
    user_id = make_users(1)[0]["id"]
    response = api.patch(f"/v1.0/users/{user_id}", json={EXT + "CrmContactId": "003000000000001AAA"})
    assert response.status_code == 204 and response.content == b""
    assert ctx.state["b2c"]["users"][user_id][EXT + "CrmContactId"] == "003000000000001AAA"
    assert events == [("b2c", "updated", user_id)]


def test_patch_accepts_the_extensions_app_id_in_any_case(api: TestClient, ctx: SandboxContext) -> None:
    user_id = make_users(1)[0]["id"]
    upper = EXT.upper().replace("EXTENSION_", "extension_") + "CrmContactId"
    assert api.patch(f"/v1.0/users/{user_id}", json={upper: "003X"}).status_code == 204
    assert ctx.state["b2c"]["users"][user_id][EXT + "CrmContactId"] == "003X"


def test_patch_with_null_clears_an_extension_attribute(api: TestClient, ctx: SandboxContext) -> None:
    user_id = make_users(1)[0]["id"]
    assert api.patch(f"/v1.0/users/{user_id}", json={EXT + "CrmSyncConsent": None}).status_code == 204
    assert EXT + "CrmSyncConsent" not in ctx.state["b2c"]["users"][user_id]


@pytest.mark.parametrize(
    "body",
    [
        {OTHER_APP_EXT: "003X"},
        {"noSuchProperty": "x"},
        {"id": "new-id"},
        {"accountEnabled": "yes"},
        {EXT + "CrmContactId": {"nested": True}},
    ],
    ids=["other-app-extension", "unknown-property", "read-only", "wrong-type", "object-extension-value"],
)
def test_invalid_patch_is_a_400_and_changes_nothing(api: TestClient, ctx: SandboxContext, body: dict) -> None:
    user_id = make_users(1)[0]["id"]
    before = dict(ctx.state["b2c"]["users"][user_id])
    response = api.patch(f"/v1.0/users/{user_id}", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_BadRequest"
    assert ctx.state["b2c"]["users"][user_id] == before


def test_patch_of_unknown_user_is_a_404(api: TestClient) -> None:
    assert api.patch("/v1.0/users/nobody", json={"displayName": "x"}).status_code == 404


def test_create_assigns_an_id_and_refuses_a_taken_sign_in_name(api: TestClient, ctx: SandboxContext) -> None:
    body = {
        "displayName": "New",
        "accountEnabled": True,
        "passwordProfile": {"password": "x"},
        "identities": [
            {
                "signInType": "emailAddress",
                "issuer": CONFIG.tenant_id,
                "issuerAssignedId": "fresh@example.test",
            }
        ],
    }
    created = api.post("/v1.0/users", json=body)
    assert created.status_code == 201
    record = ctx.state["b2c"]["users"][created.json()["id"]]
    assert record["displayName"] == "New" and "passwordProfile" not in record
    duplicate = api.post(
        "/v1.0/users",
        json={
            **body,
            "identities": [
                {
                    "signInType": "emailAddress",
                    "issuer": CONFIG.tenant_id,
                    "issuerAssignedId": "USER3@example.test",
                }
            ],
        },
    )
    assert duplicate.status_code == 400


def test_delete_removes_the_user_and_a_second_delete_is_a_404(api: TestClient, ctx: SandboxContext) -> None:
    user_id = make_users(1)[0]["id"]
    assert api.delete(f"/v1.0/users/{user_id}").status_code == 204
    assert user_id not in ctx.state["b2c"]["users"]
    assert api.delete(f"/v1.0/users/{user_id}").status_code == 404


def test_records_returned_are_counted_per_route(api: TestClient, ctx: SandboxContext) -> None:
    read_all(api, {"$top": "100", "$select": "id"})
    api.get(f"/v1.0/users/{make_users(1)[0]['id']}")
    assert ctx.stats()["records_returned"] == {"GET /v1.0/users": 250, "GET /v1.0/users/{id}": 1}


def test_state_dump_lists_users_in_native_shape(api: TestClient) -> None:
    dumped = api.get("/__sandbox/state", params={"system": "b2c"}).json()
    assert list(dumped) == ["b2c"]
    assert dumped["b2c"]["users"][0] == make_users(1)[0]


def test_load_users_refuses_non_objects_and_names_their_positions() -> None:
    context = SandboxContext(config=SandboxConfig(base_url=BASE))
    with pytest.raises(ValueError, match=r"positions \[1\]"):
        graph.load_users(context, [make_users(1)[0], "not a user"])
    assert len(context.state["b2c"]["users"]) == 1


def test_repeated_scans_see_changes_made_between_them(api: TestClient) -> None:
    params = {"$top": "999", "$select": f"id,displayName,{EXT}CrmContactId"}
    user_id = make_users(1)[0]["id"]
    assert EXT + "CrmContactId" not in read_all(api, params)[0]
    api.patch(f"/v1.0/users/{user_id}", json={EXT + "CrmContactId": "003C", "displayName": "Renamed"})
    first = read_all(api, params)[0]
    assert (first["displayName"], first[EXT + "CrmContactId"]) == ("Renamed", "003C")
    assert read_all(api, {"$top": "999", "$select": "id"})[0] == {"id": user_id}
