"""Loading B2C users through Graph into raw_b2c.users."""

from __future__ import annotations

import dataclasses

import pytest

from clients.graph import GraphClient
from ingestion.pipeline import run_b2c
from tests.ingestion.helpers import graph_settings, query, scalar

USERS = "raw_b2c.users"


@pytest.fixture
def settings(private_sandbox):
    private_sandbox.configure(fault_rate=0.0)
    return graph_settings(private_sandbox.env)


def graph_ids(sandbox) -> set[str]:
    return {u["id"] for u in sandbox.state("b2c")["b2c"]["users"]}


def live_ids(warehouse: str) -> set[str]:
    return {r[0] for r in query(warehouse, f"select id from {USERS} where not is_deleted")}


def test_first_load_lands_every_user_with_the_contract_columns(private_sandbox, settings, warehouse):
    run_b2c(settings, warehouse)
    assert live_ids(warehouse) == graph_ids(private_sandbox)
    columns = [r[0] for r in query(warehouse, f"describe {USERS}")]
    for expected in (
        "id",
        "display_name",
        "given_name",
        "surname",
        "mail",
        "other_mails",
        "sign_in_email",
        "identities",
        "mobile_phone",
        "business_phone",
        "phone_e164",
        "street_address",
        "city",
        "postal_code",
        "state",
        "country",
        "country_code",
        "account_enabled",
        "created_date_time",
        "custom_attributes",
        "email_valid",
        "content_hash",
        "quality_flags",
        "is_deleted",
        "deleted_at",
        "ingested_at",
        "_dlt_load_id",
        "_dlt_id",
    ):
        assert expected in columns
    consent = scalar(
        warehouse,
        f"select count(*) from {USERS} where json_extract(custom_attributes, '$.CrmSyncConsent') is not null",
    )
    assert consent > 0
    assert scalar(warehouse, f"select count(*) from {USERS} where sign_in_email is not null") > 0


def test_second_load_rewrites_nothing(private_sandbox, settings, warehouse):
    run_b2c(settings, warehouse)
    before = query(warehouse, f"select id, _dlt_load_id, content_hash from {USERS} order by id")
    private_sandbox.reset_stats()
    run_b2c(settings, warehouse)
    after = query(warehouse, f"select id, _dlt_load_id, content_hash from {USERS} order by id")
    assert after == before  # same rows, none re-written by the second load
    assert private_sandbox.stats()["records_returned"]["GET /v1.0/users"] == len(before)  # still a full scan


def test_changed_user_is_rewritten_alone(private_sandbox, settings, warehouse):
    run_b2c(settings, warehouse)
    user_id = sorted(graph_ids(private_sandbox))[3]
    client = GraphClient(settings)
    assert client.request("PATCH", f"users/{user_id}", json={"city": "Galway"}).status_code == 204
    run_b2c(settings, warehouse)
    rewritten = query(
        warehouse,
        f"select id, city from {USERS} where _dlt_load_id = (select max(_dlt_load_id) from {USERS})",
    )
    assert rewritten == [(user_id, "Galway")]


def test_user_deleted_in_graph_becomes_a_tombstone_that_keeps_its_values(
    private_sandbox, settings, warehouse
):
    run_b2c(settings, warehouse)
    user_id = min(graph_ids(private_sandbox))
    name_before = scalar(warehouse, f"select display_name from {USERS} where id = ?", [user_id])
    assert GraphClient(settings).request("DELETE", f"users/{user_id}").status_code == 204
    run_b2c(settings, warehouse)
    deleted, deleted_at, name = query(
        warehouse, f"select is_deleted, deleted_at, display_name from {USERS} where id = ?", [user_id]
    )[0]
    assert deleted is True and deleted_at is not None and name == name_before
    # the tombstone is written once, not on every later run
    loads = scalar(warehouse, f"select _dlt_load_id from {USERS} where id = ?", [user_id])
    run_b2c(settings, warehouse)
    assert scalar(warehouse, f"select _dlt_load_id from {USERS} where id = ?", [user_id]) == loads


def test_targeted_run_fetches_only_the_given_users_through_batch(private_sandbox, settings, warehouse):
    run_b2c(settings, warehouse)
    ids = sorted(graph_ids(private_sandbox))
    changed, untouched = ids[5], ids[6]
    client = GraphClient(settings)
    client.request("PATCH", f"users/{changed}", json={"city": "Cork"})
    client.request("PATCH", f"users/{untouched}", json={"city": "Sligo"})
    private_sandbox.reset_stats()
    run_b2c(settings, warehouse, identity_ids=[changed, "00000000-0000-0000-0000-000000000000"])
    stats = private_sandbox.stats()
    assert "GET /v1.0/users" not in stats["records_returned"]
    assert stats["requests"].get("POST /v1.0/$batch") == 1
    assert scalar(warehouse, f"select city from {USERS} where id = ?", [changed]) == "Cork"
    assert scalar(warehouse, f"select city from {USERS} where id = ?", [untouched]) != "Sligo"
    assert scalar(warehouse, f"select count(*) from {USERS} where is_deleted") == len(
        set(query(warehouse, f"select id from {USERS}"))
    ) - len(graph_ids(private_sandbox))


def test_targeted_run_marks_a_user_that_is_gone_as_deleted(private_sandbox, settings, warehouse):
    run_b2c(settings, warehouse)
    user_id = sorted(graph_ids(private_sandbox))[8]
    GraphClient(settings).request("DELETE", f"users/{user_id}")
    run_b2c(settings, warehouse, identity_ids=[user_id])
    assert scalar(warehouse, f"select is_deleted from {USERS} where id = ?", [user_id]) is True


def test_failing_pages_fail_the_run_naming_the_page_and_the_next_run_loads_everything(
    private_sandbox, warehouse
):
    impatient = graph_settings(private_sandbox.env, retry_max_s=1.0, timeout_s=1.0)
    private_sandbox.configure(fault_rate=1.0)
    try:
        with pytest.raises(Exception) as info:
            run_b2c(impatient, warehouse)
        assert "B2C users page 1 (GET /v1.0/users)" in str(info.value)
    finally:
        private_sandbox.configure(fault_rate=0.0)
    run_b2c(dataclasses.replace(impatient, retry_max_s=60, timeout_s=10), warehouse)
    assert live_ids(warehouse) == graph_ids(private_sandbox)
