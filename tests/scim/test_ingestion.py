"""SCIM users land in raw_scim.users in the identity shape of raw_b2c.users: incrementally where the directory
filters on meta.lastModified, by full scan with change detection where it does not, removals confirmed."""
from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import duckdb
import pytest
from starlette.middleware import Middleware
from starlette.responses import Response

from clients.scim import ScimClient
from ingestion.columns import B2C_USERS
from ingestion.pipeline import run_scim
from sandbox import scim as sandbox_scim
from sandbox.context import SandboxContext
from sandbox.synthetic.build import SCIM_ENTERPRISE_USER, SCIM_IDLINK_USER
from tests.akamai.support import serve


@pytest.fixture
def warehouse(tmp_path) -> str:
    return str(tmp_path / "warehouse.duckdb")


def rows(warehouse: str) -> dict[str, dict]:
    with duckdb.connect(warehouse, read_only=True) as con:
        cursor = con.execute("select * from raw_scim.users")
        names = [d[0] for d in cursor.description]
        return {r[0]: dict(zip(names, r)) for r in cursor.fetchall()}


def user_requests(ctx: SandboxContext) -> dict[str, int]:
    return {route: n for route, n in ctx.stats()["requests"].items() if "/Users" in route}


def change(ctx: SandboxContext, user_id: str, **attributes) -> None:
    """Change a user as the directory's admin would (the server stamps meta.lastModified)."""
    with ctx.lock:
        user = ctx.state["scim"]["users"][user_id]
        user.update(attributes)
        sandbox_scim._stamp(ctx, user)
        sandbox_scim._changed(ctx)


def remove(ctx: SandboxContext, user_id: str) -> None:
    with ctx.lock:
        del ctx.state["scim"]["users"][user_id]
        sandbox_scim._changed(ctx)


def test_full_load_lands_every_user_with_exactly_the_identity_columns(settings, warehouse, seeded):
    ann = seeded[0]
    ann.update(userName="Ann.Lee@Example.COM", name={"givenName": "Ann", "familyName": "Lee"},
               emails=[{"value": "ann@home.example", "type": "home"},
                       {"value": "ann.lee@example.com", "type": "work", "primary": True}],
               phoneNumbers=[{"value": "07911 123456", "type": "mobile"}],
               addresses=[{"streetAddress": "1 Main St", "locality": "Bath", "postalCode": "BA1 1AA",
                           "country": "United Kingdom", "primary": True}],
               active=False)
    ann[SCIM_IDLINK_USER] = {"crmSyncConsent": True, "crmContactId": "003AAA", "clientId": "web-shop"}
    ann[SCIM_ENTERPRISE_USER] = {"employeeNumber": "42", "department": "Sales"}
    ann["meta"]["created"] = "2024-01-02T03:04:05Z"
    run_scim(settings, warehouse)

    with duckdb.connect(warehouse, read_only=True) as con:
        columns = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'raw_scim' "
            "and table_name = 'users' order by ordinal_position").fetchall()]
    assert [c for c in columns if not c.startswith("_dlt_")] == [name for name, _ in B2C_USERS]
    loaded = rows(warehouse)
    assert set(loaded) == {u["id"] for u in seeded}
    row = loaded[ann["id"]]
    assert (row["sign_in_email"], row["mail"]) == ("Ann.Lee@example.com", "ann.lee@example.com")
    assert json.loads(row["other_mails"]) == ["ann@home.example"]
    assert (row["given_name"], row["surname"], row["account_enabled"]) == ("Ann", "Lee", False)
    assert row["client_id"] == "web-shop"  # the application provisioned for: its field-mapping entry applies
    assert (row["mobile_phone"], row["phone_e164"]) == ("07911 123456", "+447911123456")
    assert (row["street_address"], row["city"], row["postal_code"], row["country_code"]) == \
        ("1 Main St", "Bath", "BA1 1AA", "GB")
    assert json.loads(row["custom_attributes"]) == {"CrmSyncConsent": True, "CrmContactId": "003AAA",
                                                    "enterprise.employeeNumber": "42",
                                                    "enterprise.department": "Sales"}
    assert row["created_date_time"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert row["quality_flags"] == "" and row["is_deleted"] is False


def test_a_later_run_asks_only_for_users_modified_since_the_last_one(ctx, settings, warehouse, seeded):
    run_scim(settings, warehouse)
    first = rows(warehouse)
    change(ctx, seeded[3]["id"], displayName="Changed Name")
    ctx.reset_stats()
    run_scim(settings, warehouse)

    returned = ctx.stats()["records_returned"]
    # the changed user, and the one last seen at the cursor (re-read inside the margin, dropped by its hash)
    assert returned == {"GET /scim/v2/Users": 2}
    second = rows(warehouse)
    reloaded = {k for k in second if second[k]["_dlt_load_id"] != first[k]["_dlt_load_id"]}
    assert reloaded == {seeded[3]["id"]}
    assert second[seeded[3]["id"]]["display_name"] == "Changed Name"


def test_without_filtering_every_run_scans_all_and_writes_only_what_changed(ctx, settings, warehouse, seeded):
    ctx.config.scim_filter_supported = False
    run_scim(settings, warehouse)
    first = rows(warehouse)
    change(ctx, seeded[5]["id"], displayName="Renamed")
    ctx.reset_stats()
    run_scim(settings, warehouse)

    assert ctx.stats()["records_returned"]["GET /scim/v2/Users"] == len(seeded)
    assert not any("filter" in route for route in ctx.stats()["requests"])
    second = rows(warehouse)
    assert {k for k in second if second[k]["_dlt_load_id"] != first[k]["_dlt_load_id"]} == {seeded[5]["id"]}


def test_a_server_that_announces_filtering_but_refuses_it_is_scanned_in_full(ctx, seeded, warehouse, settings):
    class RefuseFilters:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http" and b"filter=" in scope.get("query_string", b""):
                await Response(b'{"status": "400", "scimType": "invalidFilter", "detail": "unsupported"}',
                               status_code=400)(scope, receive, send)
                return
            await self.app(scope, receive, send)

    run_scim(settings, warehouse)
    change(ctx, seeded[2]["id"], displayName="Seen Anyway")
    with serve(sandbox_scim.routes(ctx), [Middleware(RefuseFilters)]) as url:
        refusing = settings.__class__(base_url=f"{url}{sandbox_scim.PREFIX}", token=settings.token, page_size=10)
        run_scim(refusing, warehouse)
    assert rows(warehouse)[seeded[2]["id"]]["display_name"] == "Seen Anyway"


def test_a_removed_user_is_marked_deleted_once_the_directory_confirms_it(ctx, settings, warehouse, seeded):
    run_scim(settings, warehouse)
    gone = seeded[7]["id"]
    remove(ctx, gone)
    ctx.reset_stats()
    run_scim(settings, warehouse)

    loaded = rows(warehouse)
    assert loaded[gone]["is_deleted"] is True and loaded[gone]["deleted_at"] is not None
    assert loaded[gone]["given_name"] == seeded[7]["name"]["givenName"].strip()  # the tombstone keeps what was known
    assert sum(r["is_deleted"] for r in loaded.values()) == 1
    # the totals disagreed, so ids were listed (attributes=id) and the absence confirmed with a 404
    assert user_requests(ctx)["GET /scim/v2/Users/{user_id}"] == 1


def test_a_run_without_removals_lists_no_ids(ctx, settings, warehouse, seeded):
    run_scim(settings, warehouse)
    ctx.reset_stats()
    run_scim(settings, warehouse)
    # one filtered page and one count=0: the totals agree, nobody is looked up
    assert user_requests(ctx) == {"GET /scim/v2/Users": 2}


def test_a_user_a_shifting_page_skipped_is_not_taken_for_removed(ctx, settings, warehouse, seeded, monkeypatch):
    ctx.config.scim_filter_supported = False
    run_scim(settings, warehouse)
    skipped = seeded[11]["id"]
    scan = ScimClient.user_pages

    def pages_that_skip_one(self, count, filter=None, attributes=()):
        for page in scan(self, count, filter, attributes):
            page.resources[:] = [r for r in page.resources if r.get("id") != skipped]
            yield page.__class__(json.dumps({"Resources": page.resources}).encode(), page.resources,
                                 page.start_index, page.total_results)

    monkeypatch.setattr(ScimClient, "user_pages", pages_that_skip_one)
    run_scim(settings, warehouse)
    assert rows(warehouse)[skipped]["is_deleted"] is False


def test_a_targeted_run_fetches_just_its_users_and_marks_the_missing_deleted(ctx, settings, warehouse, seeded):
    run_scim(settings, warehouse)
    wanted, gone = seeded[1]["id"], seeded[2]["id"]
    change(ctx, wanted, displayName="Targeted")
    remove(ctx, gone)
    ctx.reset_stats()
    run_scim(settings, warehouse, identity_ids=[wanted, gone])

    assert user_requests(ctx) == {"GET /scim/v2/Users/{user_id}": 2}
    loaded = rows(warehouse)
    assert loaded[wanted]["display_name"] == "Targeted" and loaded[gone]["is_deleted"] is True


def test_a_failed_load_keeps_the_cursor_so_the_next_run_loses_nothing(ctx, settings, warehouse, seeded):
    run_scim(settings, warehouse)
    change(ctx, seeded[4]["id"], displayName="After A Failure")
    ctx.config.fault_rate, ctx.config.fault_kinds = 1.0, ("500",)
    with pytest.raises(Exception, match="could not be read"):
        run_scim(dataclasses.replace(settings, retry_max_s=0.5), warehouse)
    ctx.config.fault_rate = 0.0
    run_scim(settings, warehouse)
    assert rows(warehouse)[seeded[4]["id"]]["display_name"] == "After A Failure"


def test_consent_and_the_carried_contact_id_come_from_the_configured_attributes(settings, warehouse, seeded):
    seeded[0][SCIM_IDLINK_USER] = {"crmSyncConsent": False}
    seeded[1][SCIM_ENTERPRISE_USER] = {"employeeNumber": "7", "costCenter": "yes"}
    custom = settings.__class__(base_url=settings.base_url, token=settings.token,
                                consent_attribute=f"{SCIM_ENTERPRISE_USER}:costCenter")
    run_scim(custom, warehouse)
    loaded = rows(warehouse)
    assert json.loads(loaded[seeded[1]["id"]]["custom_attributes"])["CrmSyncConsent"] == "yes"
    assert json.loads(loaded[seeded[0]["id"]]["custom_attributes"])["CrmSyncConsent"] is None
