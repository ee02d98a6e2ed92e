"""Consent per purpose: each identity's answer, time and expiry per configured purpose are read from its
attributes; an expired or withdrawn crm_sync consent stops linking and pushes at the next build, marketing is
carried to the CRM as an opt-out, the marts say which purpose excluded whom, and the history keeps every change."""
from __future__ import annotations

import duckdb
import pytest

from sandbox.synthetic import DEFAULT_EXTENSIONS_APP_ID
from tests.dbt.dbt_cli import run_dbt
from tests.dbt.raw_loader import load_raw_tables, raw_tables

EXT = f"extension_{DEFAULT_EXTENSIONS_APP_ID.replace('-', '')}_"
PAST, FUTURE = "2001-01-01T00:00:00Z", "2999-01-01T00:00:00Z"


def _user(uid: str, email: str, **attributes) -> dict:
    user = {"id": uid, "displayName": uid, "givenName": "Ada", "surname": f"Family{uid}", "mail": None,
            "otherMails": [], "mobilePhone": None, "businessPhones": [], "streetAddress": None, "city": None,
            "postalCode": None, "state": None, "country": "Germany", "accountEnabled": True,
            "createdDateTime": "2024-01-01T00:00:00Z",
            "identities": [{"signInType": "emailAddress", "issuer": "t", "issuerAssignedId": email}]}
    user.update({EXT + name: value for name, value in attributes.items()})
    return user


def _contact(cid: str, uid: str, email: str) -> dict:
    return {"Id": cid, "AccountId": None, "FirstName": "Ada", "LastName": f"Family{uid}", "Email": email,
            "Phone": None, "MobilePhone": None, "MailingStreet": None, "MailingCity": None,
            "MailingPostalCode": None, "MailingState": None, "MailingCountry": "Germany",
            "External_User_Id__c": None, "CreatedDate": "2024-01-01T00:00:00.000+0000",
            "LastModifiedDate": "2024-02-01T00:00:00.000+0000", "SystemModstamp": "2024-02-01T00:00:00.000+0000",
            "IsDeleted": False}


USERS = {
    # crm_sync granted and still valid, marketing granted: linked, not opted out
    "u-valid": {"CrmSyncConsent": True, "CrmSyncConsentAt": "2024-03-01T10:00:00Z", "CrmSyncConsentExpiresAt": FUTURE,
                    "MarketingConsent": True, "MarketingConsentAt": "2024-03-01T10:00:00Z"},
    # crm_sync granted but expired: as if withdrawn
    "u-expired": {"CrmSyncConsent": True, "CrmSyncConsentAt": "2020-01-01T00:00:00Z", "CrmSyncConsentExpiresAt": PAST},
    # crm_sync granted, marketing withdrawn: linked, opted out
    "u-no-marketing": {"CrmSyncConsent": True, "MarketingConsent": False, "MarketingConsentAt": "2024-05-01T00:00:00Z"},
    # crm_sync granted, no contact: a contact to create, opted out (marketing never answered)
    "u-new": {"CrmSyncConsent": True},
}


def _build(workdir, users: dict[str, dict], data_tests: bool = True) -> None:
    graph = [_user(uid, f"{uid}@example.org", **attrs) for uid, attrs in users.items()]
    contacts = [_contact(f"003C{i:013d}", uid, f"{uid}@example.org")
                for i, uid in enumerate(users) if uid != "u-new"]
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        for schema in ("raw_b2c", "raw_salesforce"):
            con.execute(f"drop schema if exists {schema} cascade")
        load_raw_tables(con, raw_tables(graph, contacts))
    excluded = ["unit_test"] if data_tests else ["unit_test", "test"]
    run = run_dbt(["build", *(a for kind in excluded for a in ("--exclude-resource-type", kind))], workdir / "target",
                  {"WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb"})
    assert run.returncode == 0, run.output[-4000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("consent")
    _build(workdir, USERS)
    return workdir


def _rows(workdir, sql: str) -> list[tuple]:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_each_purpose_is_read_with_its_time_and_expiry(built):
    rows = {(uid, purpose): (state, str(given)[:10] if given else None) for uid, purpose, state, given in _rows(
        built, "select identity_id, purpose, state, given_at from intermediate.int_identity_consents")}
    assert rows[("u-valid", "crm_sync")] == ("granted", "2024-03-01")
    assert rows[("u-valid", "marketing")] == ("granted", "2024-03-01")
    assert rows[("u-expired", "crm_sync")] == ("expired", "2020-01-01")
    assert rows[("u-no-marketing", "marketing")] == ("withdrawn", "2024-05-01")
    assert rows[("u-new", "marketing")] == ("missing", None)


def test_an_expired_crm_sync_consent_stops_linking_and_contact_creation(built):
    links = dict(_rows(built, "select identity_id, status from marts.identity_contact_links"))
    assert links.get("u-valid") == "active" and links.get("u-no-marketing") == "active"
    assert "u-expired" not in links or links["u-expired"] != "active"
    to_create = {uid for (uid,) in _rows(built, "select identity_id from marts.contacts_to_create")}
    assert to_create == {"u-new"}


def test_the_marts_say_which_purpose_excluded_whom(built):
    excluded = {(uid, purpose): state for uid, purpose, state in _rows(
        built, "select identity_id, purpose, state from marts.consent_exclusions")}
    assert excluded == {("u-expired", "crm_sync"): "expired", ("u-no-marketing", "marketing"): "withdrawn",
                        ("u-new", "marketing"): "missing"}


def test_marketing_goes_to_the_crm_as_an_opt_out(built):
    assert _rows(built, "select identity_id, marketing_opt_out from marts.contacts_to_create") == [("u-new", True)]
    pushes = {uid: value for uid, value in _rows(
        built, "select identity_id, value from marts.consent_fields_to_push where attribute = 'marketingOptOut'")}
    assert pushes == {"u-valid": False, "u-no-marketing": True}


def test_a_withdrawal_at_the_next_build_is_recorded_in_the_history_and_stops_the_link(built):
    changed = {**USERS, "u-valid": {**USERS["u-valid"], "CrmSyncConsent": False,
                                    "CrmSyncConsentAt": "2025-01-01T00:00:00Z"}}
    _build(built, changed, data_tests=False)
    history = _rows(built, "select state, given_at is not null, dbt_valid_to is null from "
                           "snapshots.identity_consents_snapshot where identity_id = 'u-valid' and purpose = 'crm_sync' "
                           "order by dbt_valid_from")
    assert history == [("granted", True, False), ("withdrawn", True, True)]
    assert dict(_rows(built, "select identity_id, status from marts.identity_contact_links"))["u-valid"] \
        == "withdrawn"
