"""Akamai users land in raw_akamai.users in the identity shape of raw_b2c.users, incrementally."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pytest

from ingestion.akamai import EntityPageBuilder
from ingestion.columns import B2C_USERS
from ingestion.pipeline import run_akamai
from ingestion.quality import Quarantine
from sandbox import akamai as sandbox_akamai
from sandbox.context import SandboxConfig
from sandbox.synthetic import generate
from settings import AkamaiSettings


@pytest.fixture
def settings(tenant_url) -> AkamaiSettings:
    return AkamaiSettings(base_url=f"{tenant_url}/akamai", client_id=SandboxConfig.client_id,
                          client_secret=SandboxConfig.client_secret, timeout_s=5, retry_max_s=10)


@pytest.fixture
def warehouse(tmp_path) -> str:
    return str(tmp_path / "warehouse.duckdb")


def rows(warehouse: str, where: str = "true") -> dict[str, dict]:
    with duckdb.connect(warehouse, read_only=True) as con:
        cursor = con.execute(f"select * from raw_akamai.users where {where}")
        names = [d[0] for d in cursor.description]
        return {r[0]: dict(zip(names, r)) for r in cursor.fetchall()}



def test_full_load_lands_every_user_with_exactly_the_identity_columns(settings, warehouse, seeded):
    seeded[0].update(email="  Ada.Lovelace@Example.ORG ", mobileNumber="07911 123456", crmContactId="003AAA",
                     primaryAddress={"address1": "1 Main St", "address2": "Flat 2", "city": "Bath",
                                     "zip": "BA1 1AA", "country": "United Kingdom"})
    run_akamai(settings, warehouse)

    with duckdb.connect(warehouse, read_only=True) as con:
        columns = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'raw_akamai' "
            "and table_name = 'users' order by ordinal_position").fetchall()]
    assert [c for c in columns if not c.startswith("_dlt_")] == [name for name, _ in B2C_USERS]
    assert {"_dlt_load_id", "_dlt_id"} <= set(columns)

    loaded = rows(warehouse)
    assert set(loaded) == {e["uuid"] for e in seeded}
    ada = loaded[seeded[0]["uuid"]]
    assert ada["sign_in_email"] == ada["mail"] == "Ada.Lovelace@example.org"
    assert ada["email_valid"] is True and ada["quality_flags"] == ""
    assert (ada["given_name"], ada["surname"]) == (seeded[0]["givenName"], seeded[0]["familyName"])
    assert (ada["mobile_phone"], ada["phone_e164"]) == ("07911 123456", "+447911123456")
    assert (ada["street_address"], ada["city"], ada["postal_code"], ada["country_code"]) == \
        ("1 Main St\nFlat 2", "Bath", "BA1 1AA", "GB")
    assert json.loads(ada["custom_attributes"]) == {"CrmSyncConsent": True, "CrmContactId": "003AAA",
                                                    "CrmSyncConsentAt": None, "MarketingConsent": None,
                                                    "MarketingConsentAt": None}
    assert ada["created_date_time"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert ada["is_deleted"] is False


def test_consent_is_read_from_the_configured_attribute_path(settings, warehouse, seeded):
    seeded[1]["consents"] = {}
    run_akamai(settings, warehouse)
    loaded = rows(warehouse)
    assert json.loads(loaded[seeded[1]["uuid"]]["custom_attributes"])["CrmSyncConsent"] is None
    assert json.loads(loaded[seeded[2]["uuid"]]["custom_attributes"])["CrmSyncConsent"] is True


def test_rerun_rewrites_only_changed_users(settings, warehouse, seeded):
    run_akamai(settings, warehouse)
    first = rows(warehouse)
    seeded[3]["givenName"] = "Changed"
    run_akamai(settings, warehouse)
    second = rows(warehouse)
    changed = {k for k in second if second[k]["_dlt_load_id"] != first[k]["_dlt_load_id"]}
    assert changed == {seeded[3]["uuid"]}
    assert second[seeded[3]["uuid"]]["given_name"] == "Changed"


def test_full_scan_tombstones_users_that_disappeared_keeping_their_last_values(api, settings, warehouse, seeded):
    run_akamai(settings, warehouse)
    gone = dict(seeded[5])
    api.post("/akamai/entity.delete", data={"type_name": "user", "uuid": gone["uuid"]})
    run_akamai(settings, warehouse)
    tombstone = rows(warehouse)[gone["uuid"]]
    assert tombstone["is_deleted"] is True and tombstone["deleted_at"] is not None
    assert tombstone["given_name"] == gone["givenName"]
    assert len(rows(warehouse, "not is_deleted")) == 24


def test_targeted_run_fetches_only_the_given_uuids_and_tombstones_missing_ones(api, ctx, settings, warehouse,
                                                                            seeded):
    run_akamai(settings, warehouse)
    scans_before = ctx.records_by_route["/akamai/entity.find"]
    changed, deleted = seeded[7]["uuid"], seeded[8]["uuid"]
    api.post("/akamai/entity.update", data={"type_name": "user", "uuid": changed,
                                            "attributes": '{"familyName": "Renamed"}'})
    api.post("/akamai/entity.delete", data={"type_name": "user", "uuid": deleted})
    seeded[9]["givenName"] = "NotAskedFor"

    run_akamai(settings, warehouse, identity_ids=[changed, deleted, changed])

    assert ctx.records_by_route["/akamai/entity.find"] == scans_before  # no scan
    assert ctx.records_by_route["/akamai/entity"] == 1
    loaded = rows(warehouse)
    assert loaded[changed]["surname"] == "Renamed"
    assert loaded[deleted]["is_deleted"] is True
    assert loaded[seeded[9]["uuid"]]["given_name"] != "NotAskedFor"


def test_targeted_run_for_an_unknown_uuid_writes_nothing(settings, warehouse, seeded):
    run_akamai(settings, warehouse)
    run_akamai(settings, warehouse, identity_ids=["00000000-0000-0000-0000-000000000000"])
    assert len(rows(warehouse)) == 25


def test_malformed_values_are_flagged_and_unrepresentable_records_quarantined(settings):
    quarantine = Quarantine("akamai")
    builder = EntityPageBuilder(settings)
    now = datetime.now(UTC)
    cols = builder.build([
        {"uuid": "u-1", "email": "not-an-email", "givenName": None, "familyName": "",
         "mobileNumber": "12", "primaryAddress": "somewhere", "created": "yesterday"},
        "just a string",
        {"id": 42, "email": "someone@example.org"},
    ], "users/page-1", quarantine, now)
    assert cols["id"] == ["u-1"]
    assert set(cols["quality_flags"][0].split(",")) == {
        "malformed_email", "missing_name", "invalid_phone", "invalid_value"}
    assert cols["email_valid"] == [False]
    assert [(key, reason) for key, reason, _ in quarantine.rows] == [
        ("users/page-1/1", "not_an_object"), ("users/page-1/id-42", "missing_id")]
    assert all("someone" not in excerpt for _, _, excerpt in quarantine.rows)


def test_synthetic_sandbox_users_keep_their_ids_and_normalise_without_quarantine(ctx, settings):
    users = generate(60, seed=3, akamai_share=0.5).akamai_users
    sandbox_akamai.load_entities(ctx, users)
    stored = ctx.state["akamai"]["users"]
    assert sorted(u["id"] for u in users) == [u["id"] for u in stored]

    quarantine = Quarantine("akamai")
    cols = EntityPageBuilder(settings).build(stored, "users/page-1", quarantine, datetime.now(UTC))
    assert len(quarantine) == 0 and len(cols["id"]) == len(users)
    consents = [json.loads(c)["CrmSyncConsent"] for c in cols["custom_attributes"]]
    assert set(consents) <= {True, False, None} and True in consents


def test_an_entity_carries_the_client_it_registered_through_and_the_seed_attributes(settings):
    cols = EntityPageBuilder(settings).build([
        {"uuid": "u-1", "email": "ann@example.org", "givenName": "Ann", "familyName": "Lee",
         "created": "2024-01-02 03:04:05.000000 +0000", "emailVerified": "2024-01-02 04:00:00 +0000",
         "lastLogin": "2025-03-01 10:00:00.123456 +0000", "lastUpdated": "2025-02-01 09:00:00.000000 +0000",
         # the client first logged in to is the one the person registered through, whatever the order
         "clients": [{"clientId": "mobile", "firstLogin": "2024-05-01 00:00:00 +0000"},
                     {"clientId": "web-shop", "firstLogin": "2024-01-02 03:04:05 +0000"}]},
        {"uuid": "u-2", "email": "bob@example.org", "emailVerified": None, "clients": []},
        {"uuid": "u-3", "familyName": "NoMail", "clients": "not a plural"},
    ], "users/page-1", Quarantine("akamai"), datetime.now(UTC))
    assert cols["client_id"] == ["web-shop", None, None]
    assert cols["email_verified"] == [True, False, None]  # unknown without an address
    assert cols["last_login_at"][0] == datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert cols["last_updated_at"][0] == datetime(2025, 2, 1, 9, tzinfo=UTC)
    assert cols["last_login_at"][1:] == [None, None]
    assert "invalid_value" in cols["quality_flags"][2]
