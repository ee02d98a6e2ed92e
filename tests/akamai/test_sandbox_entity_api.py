"""The simulated Identity Cloud Entity API behaves like Capture: keyset paging, filters, auth, merges."""
from __future__ import annotations

import json

from starlette.testclient import TestClient

from sandbox import akamai as sandbox_akamai


def find(api: TestClient, **params) -> dict:
    form = {"type_name": "user", **{k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in params.items()}}
    return api.post("/akamai/entity.find", data=form).json()


def test_keyset_paging_on_id_returns_every_entity_once_in_id_order(api, seeded):
    seen, last = [], 0
    while True:
        body = find(api, filter=f"id > {last}", sort_on=["id"], max_results=7, attributes=["id", "uuid"])
        assert body["stat"] == "ok"
        if not body["results"]:
            break
        assert body["result_count"] == len(body["results"]) <= 7
        seen.extend(body["results"])
        last = body["results"][-1]["id"]
    assert [e["uuid"] for e in seen] == [e["uuid"] for e in seeded]
    assert [e["id"] for e in seen] == sorted(e["id"] for e in seen)
    assert all(set(e) == {"id", "uuid"} for e in seen)


def test_filter_by_uuid_returns_exactly_that_entity(api, seeded):
    target = seeded[5]["uuid"]
    body = find(api, filter=f"uuid = '{target}'")
    assert [e["uuid"] for e in body["results"]] == [target]


def test_filter_on_last_updated_compares_timestamps_not_text(api, ctx, seeded):
    seeded[3]["lastUpdated"] = "2025-06-01 10:00:00.000000 +0000"
    seeded[4]["lastUpdated"] = "2025-06-01T12:00:00+02:00"  # 10:00 UTC: equal instant, other notation
    body = find(api, filter="lastUpdated >= '2025-06-01 10:00:00 +0000'", attributes=["uuid"])
    assert {e["uuid"] for e in body["results"]} == {seeded[3]["uuid"], seeded[4]["uuid"]}


def test_filter_combines_and_or_not_null_and_nested_paths(api, seeded):
    seeded[0]["primaryAddress"]["city"] = "Ely"
    seeded[1]["primaryAddress"]["city"] = "Ely"
    seeded[1]["mobileNumber"] = None
    body = find(api, filter="primaryAddress.city = 'Ely' and mobileNumber is not null", attributes=["uuid"])
    assert [e["uuid"] for e in body["results"]] == [seeded[0]["uuid"]]
    body = find(api, filter="(consents.crmSync.granted = true or id = 2) and not id > 4", attributes=["id"])
    assert [e["id"] for e in body["results"]] == [1, 2, 3]


def test_attributes_project_nested_paths(api, seeded):
    body = find(api, filter="id = 1", attributes=["primaryAddress.city", "consents"])
    assert body["results"] == [{"primaryAddress": {"city": seeded[0]["primaryAddress"]["city"]},
                                "consents": seeded[0]["consents"]}]


def test_sort_on_descending_and_total_count(api, seeded):
    body = find(api, sort_on=["-id"], max_results=3, attributes=["id"], show_total_count="true")
    assert [e["id"] for e in body["results"]] == [25, 24, 23]
    assert body["total_count"] == 25


def test_invalid_filter_and_out_of_range_max_results_are_invalid_argument_errors(api, seeded):
    bad_filter = api.post("/akamai/entity.find", data={"type_name": "user", "filter": "id >"})
    assert bad_filter.status_code == 400
    assert (bad_filter.json()["stat"], bad_filter.json()["code"], bad_filter.json()["error"]) == \
        ("error", 200, "invalid_argument")
    too_many = find(api, max_results=1001)
    assert (too_many["code"], too_many["argument_name"]) == (200, "max_results")


def test_wrong_or_missing_credentials_are_rejected_without_data(api, seeded):
    wrong = api.post("/akamai/entity.find", data={"type_name": "user"}, auth=("idlink-sandbox-client", "nope"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client_credentials"
    assert "results" not in wrong.json()
    anonymous = TestClient(api.app).post("/akamai/entity.find", data={"type_name": "user"})
    assert anonymous.status_code == 401


def test_unknown_entity_type_and_unknown_attribute_are_errors(api, seeded):
    assert find(api, type_name="admin")["error"] == "entity_type_does_not_exist"
    assert find(api, attributes=["shoeSize"])["error"] == "attribute_does_not_exist"


def test_entity_by_uuid_or_id_and_record_not_found(api, seeded):
    by_uuid = api.post("/akamai/entity", data={"type_name": "user", "uuid": seeded[2]["uuid"]}).json()
    assert by_uuid["result"]["id"] == seeded[2]["id"]
    by_id = api.post("/akamai/entity", data={"type_name": "user", "id": "3", "attributes": '["uuid"]'}).json()
    assert by_id["result"] == {"uuid": seeded[2]["uuid"]}
    missing = api.post("/akamai/entity", data={"type_name": "user", "uuid": "00000000-0000-0000-0000-000000000000"})
    assert missing.status_code == 404
    assert (missing.json()["code"], missing.json()["error"]) == (310, "record_not_found")


def test_create_assigns_id_uuid_and_timestamps(api, ctx, seeded):
    body = api.post("/akamai/entity.create", data={
        "type_name": "user", "attributes": json.dumps({"email": "new@example.org", "givenName": "Ada"})}).json()
    assert body["stat"] == "ok" and body["id"] == 26
    created = sandbox_akamai.tenant(ctx).by_uuid[body["uuid"]]
    assert created["created"] == created["lastUpdated"]
    assert created["email"] == "new@example.org"


def test_update_deep_merges_and_moves_last_updated(api, seeded):
    target = seeded[0]
    before = dict(target["primaryAddress"]), target["lastUpdated"]
    body = api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": target["uuid"],
        "attributes": json.dumps({"crmContactId": "003000000000001AAA", "primaryAddress": {"city": "Bath"}}),
    }).json()
    assert body == {"stat": "ok"}
    assert target["crmContactId"] == "003000000000001AAA"
    assert target["primaryAddress"] == before[0] | {"city": "Bath"}
    assert target["lastUpdated"] > before[1]


def test_update_refuses_read_only_and_unknown_attributes(api, seeded):
    read_only = api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"uuid": "x"}'})
    assert read_only.json()["code"] == 200
    unknown = api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"crmContactID": "x"}'})
    assert unknown.json()["error"] == "attribute_does_not_exist"
    assert "crmContactID" not in seeded[0]


def test_delete_removes_the_entity(api, ctx, seeded):
    target = seeded[4]["uuid"]
    assert api.post("/akamai/entity.delete", data={"type_name": "user", "uuid": target}).json() == {"stat": "ok"}
    assert target not in sandbox_akamai.tenant(ctx).by_uuid
    assert find(api, filter=f"uuid = '{target}'")["results"] == []
    assert len(ctx.state["akamai"]["users"]) == 24


def test_env_points_clients_at_the_tenant(ctx):
    ctx.config.base_url = "https://127.0.0.1:8443"
    env = sandbox_akamai.env(ctx)
    assert env["AKAMAI_BASE_URL"] == "https://127.0.0.1:8443/akamai"
    assert env["AKAMAI_WEBHOOK_JWKS_URL"] == "https://127.0.0.1:8443/akamai/webhooks/jwks"
    assert env["AKAMAI_ENTITY_TYPE"] == "user"
    assert env["AKAMAI_WEBHOOK_ISSUER"] == "Akamai Identity Cloud"


def test_keyset_bound_is_only_taken_from_a_top_level_id_conjunct():
    from sandbox.akamai.query_filter import lower_id_bound

    assert lower_id_bound("id > 5") == 5
    assert lower_id_bound("(email = 'a@b.c') and id >= 7") == 6
    assert lower_id_bound("email = 'x and id > 99'") is None  # inside a string literal
    assert lower_id_bound("id > 5 or id = 1") is None
    assert lower_id_bound("(id > 5 and email = 'x')") is None
