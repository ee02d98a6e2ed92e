"""Graph JSON batching: at most 20 sub-requests, answered in any order and matched by id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sandbox.context import SandboxConfig, SandboxContext
from sandbox.microsoft import graph, identity_platform

BASE = "https://testserver"
EXT = graph.extension_prefix(SandboxConfig.extensions_app_id)


def user_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


@pytest.fixture
def ctx() -> SandboxContext:
    context = SandboxContext(config=SandboxConfig(base_url=BASE, seed=3))
    graph.load_users(context, [{"id": user_id(i), "displayName": f"User {i}"} for i in range(30)])
    return context


@pytest.fixture
def api(ctx: SandboxContext) -> Iterator[TestClient]:
    app = Starlette(routes=identity_platform.routes(ctx) + graph.routes(ctx))
    with TestClient(app, base_url=BASE) as client:
        token, _ = identity_platform.issue_token(ctx, identity_platform.GRAPH_RESOURCE)
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def patch_request(i: int, value: str) -> dict:
    return {
        "id": str(i),
        "method": "PATCH",
        "url": f"/users/{user_id(i)}",
        "headers": {"Content-Type": "application/json"},
        "body": {EXT + "CrmContactId": value},
    }


def test_batch_of_20_patches_applies_each_and_answers_every_id(api: TestClient, ctx: SandboxContext) -> None:
    response = api.post(
        "/v1.0/$batch", json={"requests": [patch_request(i, f"003{i:015d}") for i in range(20)]}
    )
    assert response.status_code == 200
    answers = response.json()["responses"]
    assert sorted(int(a["id"]) for a in answers) == list(range(20))
    assert all(a["status"] == 204 and "body" not in a for a in answers)
    assert all(
        ctx.state["b2c"]["users"][user_id(i)][EXT + "CrmContactId"] == f"003{i:015d}" for i in range(20)
    )


def test_batch_answers_come_out_of_order_but_each_matches_its_request(api: TestClient) -> None:
    requests = [
        {"id": f"r{i}", "method": "GET", "url": f"/users/{user_id(i)}?$select=id,displayName"}
        for i in range(20)
    ]
    answers = api.post("/v1.0/$batch", json={"requests": requests}).json()["responses"]
    assert [a["id"] for a in answers] != [r["id"] for r in requests]
    assert all(a["body"]["displayName"] == f"User {a['id'][1:]}" for a in answers)


def test_batch_of_more_than_20_is_refused_whole(api: TestClient, ctx: SandboxContext) -> None:
    response = api.post("/v1.0/$batch", json={"requests": [patch_request(i, "x") for i in range(21)]})
    assert response.status_code == 400
    assert "Max: 20" in response.json()["error"]["message"]
    assert not any(EXT + "CrmContactId" in u for u in ctx.state["b2c"]["users"].values())


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"requests": []},
        {"requests": [{"method": "GET", "url": "/users"}]},
        {"requests": [patch_request(1, "a"), patch_request(1, "b")]},
    ],
    ids=["no-requests", "empty", "missing-id", "duplicate-id"],
)
def test_malformed_batch_is_a_400(api: TestClient, body: dict) -> None:
    assert api.post("/v1.0/$batch", json=body).status_code == 400


def test_failing_sub_request_does_not_fail_its_siblings(api: TestClient) -> None:
    requests = [
        patch_request(1, "003A"),
        {"id": "missing", "method": "PATCH", "url": "/users/nobody", "body": {"displayName": "x"}},
    ]
    answers = {a["id"]: a for a in api.post("/v1.0/$batch", json={"requests": requests}).json()["responses"]}
    assert answers["1"]["status"] == 204
    assert answers["missing"]["status"] == 404
    assert answers["missing"]["body"]["error"]["code"] == "Request_ResourceNotFound"


def test_dependent_sub_request_fails_with_424_when_its_dependency_failed(api: TestClient) -> None:
    requests = [
        {"id": "a", "method": "DELETE", "url": "/users/nobody"},
        {"id": "b", "method": "GET", "url": f"/users/{user_id(2)}", "dependsOn": ["a"]},
    ]
    answers = {
        a["id"]: a["status"]
        for a in api.post("/v1.0/$batch", json={"requests": requests}).json()["responses"]
    }
    assert answers == {"a": 404, "b": 424}


def test_sub_requests_are_throttled_individually_with_retry_after(
    api: TestClient, ctx: SandboxContext
) -> None:
    ctx.config.fault_rate = 0.5
    answers = api.post(
        "/v1.0/$batch", json={"requests": [patch_request(i, "003B") for i in range(20)]}
    ).json()
    throttled = [a for a in answers["responses"] if a["status"] == 429]
    applied = [a for a in answers["responses"] if a["status"] == 204]
    assert throttled and applied and len(throttled) + len(applied) == 20
    assert all(a["headers"]["Retry-After"] == "1" and a["body"]["error"]["code"] for a in throttled)
    assert ctx.faults["batch_429"] == len(throttled)
    for answer in throttled:  # a throttled write was not applied
        assert EXT + "CrmContactId" not in ctx.state["b2c"]["users"][user_id(int(answer["id"]))]


def test_sub_requests_are_counted_under_their_route_template(api: TestClient, ctx: SandboxContext) -> None:
    api.post("/v1.0/$batch", json={"requests": [patch_request(i, "x") for i in range(3)]})
    assert ctx.stats()["requests"]["$batch PATCH /v1.0/users/{id}"] == 3


def test_batch_needs_a_token(api: TestClient) -> None:
    del api.headers["Authorization"]
    response = api.post("/v1.0/$batch", json={"requests": [patch_request(1, "x")]})
    assert response.status_code == 401
