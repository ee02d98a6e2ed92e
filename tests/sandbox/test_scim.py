"""The SCIM 2.0 directory simulator answers as RFC 7644 says: paging, filters, count=0, writes, errors."""
from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sandbox import scim
from sandbox.context import SandboxConfig, SandboxContext
from sandbox.scim.filter import FilterError, compile_filter

AUTH = {"Authorization": f"Bearer {scim.TOKEN}"}
USERS = f"{scim.PREFIX}/Users"


@pytest.fixture
def ctx() -> SandboxContext:
    context = SandboxContext(config=SandboxConfig(base_url="https://sandbox.test"))
    scim.load_users(context, [
        {"userName": f"user{i}@example.com", "name": {"givenName": f"Given{i}", "familyName": "Lee"},
         "emails": [{"value": f"user{i}@example.com", "primary": True}], "active": i % 2 == 0,
         "meta": {"created": "2024-01-01T00:00:00Z", "lastModified": f"2024-01-{i + 1:02d}T00:00:00Z"}}
        for i in range(12)])
    return context


@pytest.fixture
def api(ctx) -> TestClient:
    return TestClient(Starlette(routes=scim.routes(ctx)), headers=AUTH)


def test_every_route_wants_the_bearer_token(api):
    response = api.get(USERS, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401 and response.json()["status"] == "401"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_users_page_by_start_index_and_count_with_the_total(api):
    first = api.get(USERS, params={"startIndex": 1, "count": 5}).json()
    last = api.get(USERS, params={"startIndex": 11, "count": 5}).json()
    assert (first["totalResults"], first["itemsPerPage"], first["startIndex"]) == (12, 5, 1)
    assert [u["userName"] for u in last["Resources"]] == ["user10@example.com", "user11@example.com"]
    assert api.get(USERS, params={"count": 0}).json() == {
        "schemas": [scim.LIST_RESPONSE], "totalResults": 12, "startIndex": 1, "itemsPerPage": 0, "Resources": []}


def test_a_filter_on_last_modified_returns_the_later_users(api):
    body = api.get(USERS, params={"filter": 'meta.lastModified gt "2024-01-10T00:00:00Z"'}).json()
    assert [u["userName"] for u in body["Resources"]] == ["user10@example.com", "user11@example.com"]


def test_attributes_id_returns_ids_only(api):
    resource = api.get(USERS, params={"attributes": "id", "count": 1}).json()["Resources"][0]
    assert set(resource) == {"schemas", "id"}


def test_filtering_switched_off_is_answered_501_and_a_bad_filter_400(ctx, api):
    assert api.get(USERS, params={"filter": 'userName eq "x" and'}).json()["scimType"] == "invalidFilter"
    ctx.config.scim_filter_supported = False
    assert api.get(f"{scim.PREFIX}/ServiceProviderConfig").json()["filter"]["supported"] is False
    assert api.get(USERS, params={"filter": 'userName eq "x"'}).status_code == 501


def test_writes_keep_meta_and_user_names_unique(api):
    created = api.post(USERS, json={"userName": "new@example.com", "active": True})
    assert created.status_code == 201 and created.json()["meta"]["version"] == 'W/"1"'
    user_id = created.json()["id"]
    assert api.post(USERS, json={"userName": "NEW@example.com"}).json()["scimType"] == "uniqueness"
    patched = api.patch(f"{USERS}/{user_id}", json={
        "schemas": [scim.PATCH_OP], "Operations": [{"op": "replace", "path": "name.givenName", "value": "Ann"}]})
    assert patched.json()["name"] == {"givenName": "Ann"}
    assert patched.json()["meta"]["lastModified"] >= created.json()["meta"]["lastModified"]
    assert api.delete(f"{USERS}/{user_id}").status_code == 204
    assert api.get(f"{USERS}/{user_id}").status_code == 404


@pytest.mark.parametrize(("expression", "matches"), [
    ('userName eq "ANN@example.com"', True), ('name.givenName sw "an"', True), ('emails.value co "@example"', True),
    ('active eq false', False), ('not (active eq false) and title pr', False), ('title pr or active eq true', True),
    ('meta.lastModified ge "2024-02-01T00:00:00+00:00"', True)])
def test_filter_expressions(expression, matches):
    user = {"userName": "ann@example.com", "name": {"givenName": "Ann"}, "active": True,
            "emails": [{"value": "x@other.org"}, {"value": "ann@example.com"}],
            "meta": {"lastModified": "2024-02-01T00:00:00Z"}}
    assert compile_filter(expression)(user) is matches


@pytest.mark.parametrize("expression", ['userName eq', 'userName like "a"', '(userName eq "a"', 'meta.created gt 3'])
def test_filters_outside_the_grammar_are_refused(expression):
    with pytest.raises(FilterError):
        compile_filter(expression)
