"""Bad input never stops a load: odd values land flagged, unrepresentable records go to quarantine."""

from __future__ import annotations

from typing import ClassVar

import orjson
import pytest

from ingestion import b2c
from ingestion.pipeline import run_b2c, run_salesforce
from tests.ingestion.helpers import graph_settings, query, salesforce_settings, scalar

EXT = "extension_b2c0e5a15e1d4c2b9a7f3c1d2e4f5a6b_"


def graph_user(user_id: str, **fields) -> dict:
    record = {
        "id": user_id,
        "displayName": "Ann Lee",
        "givenName": "Ann",
        "surname": "Lee",
        "mail": None,
        "otherMails": [],
        "mobilePhone": "+44 7911 123456",
        "businessPhones": [],
        "country": "United Kingdom",
        "accountEnabled": True,
        "createdDateTime": "2024-05-01T10:00:00Z",
        "identities": [
            {"signInType": "emailAddress", "issuer": "t", "issuerAssignedId": f"{user_id}@ex.com"}
        ],
        f"{EXT}CrmSyncConsent": True,
    }
    record.update(fields)
    return record


def contact(contact_id: str, **fields) -> dict:
    record = {
        "Id": contact_id,
        "IsDeleted": False,
        "FirstName": "Ann",
        "LastName": "Lee",
        "Email": f"{contact_id.lower()}@ex.com",
        "MobilePhone": "07911 123456",
        "MailingCountry": "UK",
        "CreatedDate": "2024-05-01T10:00:00.000+0000",
        "LastModifiedDate": "2024-05-01T10:00:00.000+0000",
        "SystemModstamp": "2024-05-01T10:00:00.000+0000",
    }
    record.update(fields)
    return record


BAD_USERS = [
    graph_user("u-clean"),
    graph_user(
        "u-bad-email",
        identities=[{"signInType": "emailAddress", "issuer": "t", "issuerAssignedId": "ann..lee@@example"}],
    ),
    graph_user("u-huge-name", displayName="A" * 100_000),
    graph_user("u-control", surname="Le\x07e"),
    graph_user("u-emoji", givenName="Zoë 🎉", displayName="Zoë 🎉 Lee"),
    graph_user("u-rtl", givenName="محمد", surname="שרה", displayName="محمد שרה"),
    graph_user(
        "u-empty", displayName="", givenName="", surname="", identities=[], mobilePhone="", country=""
    ),
    {"id": "u-bare"},
]
BAD_CONTACTS = [
    contact("003000000000001AAA"),
    contact("003000000000002AAA", Email="not-an-email"),
    contact("003000000000003AAA", LastName="L" * 100_000),
    contact("003000000000004AAA", FirstName="A\x00nn"),
    contact("003000000000005AAA", FirstName="🎉", LastName="ليلى"),
    contact("003000000000006AAA", FirstName=None, LastName=None, Email=None, MobilePhone="12"),
]


@pytest.fixture(scope="module")
def bad_sandbox(tmp_path_factory):
    from tests.fixtures_sandbox import launch_sandbox

    running = launch_sandbox(
        tmp_path_factory.mktemp("bad-records"), users=BAD_USERS, contacts=BAD_CONTACTS, akamai_users=[]
    )
    yield running
    running.stop()


def flags_by_id(warehouse: str, table: str) -> dict[str, set[str]]:
    return {
        row[0]: set(filter(None, (row[1] or "").split(",")))
        for row in query(warehouse, f"select id, quality_flags from {table}")
    }


def test_bad_users_land_flagged_and_the_rest_loads(bad_sandbox, warehouse):
    run_b2c(graph_settings(bad_sandbox.env), warehouse)
    flags = flags_by_id(warehouse, "raw_b2c.users")
    assert set(flags) == {u["id"] for u in BAD_USERS}
    assert flags["u-clean"] == set()
    assert flags["u-bad-email"] == {"malformed_email"}
    assert flags["u-huge-name"] == {"oversized_field"}
    assert flags["u-control"] == {"control_characters"}
    assert flags["u-emoji"] == set() and flags["u-rtl"] == set()
    assert flags["u-empty"] == {"missing_email", "missing_name"}
    assert {"missing_email", "missing_name"} <= flags["u-bare"]
    assert (
        scalar(warehouse, "select length(display_name) from raw_b2c.users where id = 'u-huge-name'")
        == 100_000
    )
    assert scalar(warehouse, "select given_name from raw_b2c.users where id = 'u-rtl'") == "محمد"
    assert scalar(warehouse, "select email_valid from raw_b2c.users where id = 'u-bad-email'") is False


def test_bad_contacts_land_flagged_and_the_rest_loads(bad_sandbox, warehouse):
    run_salesforce(salesforce_settings(bad_sandbox.env), warehouse)
    flags = flags_by_id(warehouse, "raw_salesforce.contact")
    assert set(flags) == {c["Id"] for c in BAD_CONTACTS}
    assert flags["003000000000001AAA"] == set()
    assert flags["003000000000002AAA"] == {"malformed_email"}
    assert flags["003000000000003AAA"] == {"oversized_field"}
    assert flags["003000000000004AAA"] == {"control_characters"}
    assert flags["003000000000005AAA"] == set()
    assert flags["003000000000006AAA"] == {"missing_email", "missing_name", "invalid_phone"}
    assert (
        scalar(warehouse, "select phone_e164 from raw_salesforce.contact where id = '003000000000001AAA'")
        == "+447911123456"
    )


class FakeGraph:
    """Stands in for the Graph client with pages the real API would never send."""

    pages: ClassVar[list[list]] = []

    def __init__(self, settings) -> None:
        self.settings = settings

    def iter_user_page_bodies(self, select, top=999):
        for page in self.pages:
            body = {"value": page}
            yield orjson.dumps(body), body


def test_records_without_id_or_not_objects_are_quarantined_without_their_values(monkeypatch, warehouse):
    FakeGraph.pages = [
        [graph_user("u-ok"), "just a string", {"displayName": "Secret Person", "mail": "x@y.z"}],
        [graph_user("u-ok-2"), None],
    ]
    monkeypatch.setattr(b2c, "GraphClient", FakeGraph)
    settings = graph_settings(
        {
            "B2C_TENANT_ID": "t",
            "B2C_CLIENT_ID": "c",
            "B2C_CLIENT_SECRET": "s",
            "B2C_EXTENSIONS_APP_ID": "b2c0e5a1-5e1d-4c2b-9a7f-3c1d2e4f5a6b",
        }
    )
    run_b2c(settings, warehouse)
    assert {r[0] for r in query(warehouse, "select id from raw_b2c.users")} == {"u-ok", "u-ok-2"}
    quarantined = query(
        warehouse,
        "select source, record_key, reason, payload_excerpt, quarantined_at "
        "from raw_b2c.quarantine order by record_key",
    )
    assert [(q[0], q[1], q[2]) for q in quarantined] == [
        ("b2c", "users/page-1/1", "not_an_object"),
        ("b2c", "users/page-1/2", "missing_id"),
        ("b2c", "users/page-2/1", "not_an_object"),
    ]
    assert all(q[4] is not None for q in quarantined)
    excerpts = " ".join(q[3] for q in quarantined)
    assert "Secret Person" not in excerpts and "x@y.z" not in excerpts and "displayName" in excerpts


# "\ud800" is a lone surrogate (served as the escape "\ud800"); "\udcff" is how Python keeps the invalid UTF-8
# byte 0xFF (served as that raw byte)
UNREADABLE_USERS = [graph_user("u-fine"), graph_user("u-lone-surrogate", surname="Lee\ud800"),
                    graph_user("u-bad-bytes", givenName="Ann\udcff"), graph_user("u-fine-2")]
UNREADABLE_CONTACTS = [contact("003000000000011AAA"), contact("003000000000012AAA", LastName="Lee\ud800"),
                       contact("003000000000013AAA", FirstName="Ann\udcff"), contact("003000000000014AAA")]


@pytest.fixture(scope="module")
def unreadable_sandbox(tmp_path_factory):
    from tests.fixtures_sandbox import launch_sandbox

    running = launch_sandbox(tmp_path_factory.mktemp("unreadable-records"), users=UNREADABLE_USERS,
                             contacts=UNREADABLE_CONTACTS, akamai_users=[])
    yield running
    running.stop()


def quarantined(warehouse: str, dataset: str) -> list[tuple[str, str, str]]:
    return query(warehouse, f"select record_key, reason, payload_excerpt from {dataset}.quarantine order by 1")


def test_a_user_with_text_that_is_not_unicode_is_quarantined_and_the_rest_of_the_page_loads(
        unreadable_sandbox, warehouse):
    run_b2c(graph_settings(unreadable_sandbox.env), warehouse)
    assert {r[0] for r in query(warehouse, "select id from raw_b2c.users")} == {"u-fine", "u-fine-2"}
    rows = quarantined(warehouse, "raw_b2c")
    assert [(key, reason) for key, reason, _ in rows] == [
        ("users/page-1/1", "invalid_text"), ("users/page-1/2", "invalid_text")]
    assert all("Lee" not in excerpt and "Ann" not in excerpt for _, _, excerpt in rows)


def test_a_contact_with_text_that_is_not_unicode_is_quarantined_and_the_rest_of_the_page_loads(
        unreadable_sandbox, warehouse):
    run_salesforce(salesforce_settings(unreadable_sandbox.env), warehouse)
    assert {r[0] for r in query(warehouse, "select id from raw_salesforce.contact")} == {
        "003000000000011AAA", "003000000000014AAA"}
    assert [(key, reason) for key, reason, _ in quarantined(warehouse, "raw_salesforce")] == [
        ("contact/all/page-1/1", "invalid_text"), ("contact/all/page-1/2", "invalid_text")]


def test_a_known_user_whose_record_turns_unreadable_keeps_its_row_and_is_not_taken_for_deleted(
        monkeypatch, warehouse):
    class RawPages(FakeGraph):
        def iter_user_page_bodies(self, select, top=999):
            yield from ((raw, None) for raw in self.pages)

    monkeypatch.setattr(b2c, "GraphClient", RawPages)
    settings = graph_settings({"B2C_TENANT_ID": "t", "B2C_CLIENT_ID": "c", "B2C_CLIENT_SECRET": "s",
                               "B2C_EXTENSIONS_APP_ID": "b2c0e5a1-5e1d-4c2b-9a7f-3c1d2e4f5a6b"})
    RawPages.pages = [orjson.dumps({"value": [graph_user("u-1"), graph_user("u-2")]})]
    run_b2c(settings, warehouse)
    RawPages.pages = [orjson.dumps({"value": [graph_user("u-1"), graph_user("u-2")]}).replace(
        b'"surname":"Lee"', b'"surname":"Lee\\ud800"', 1).replace(b'"givenName":"Ann"', b'"givenName":"Ann\xff"')]
    run_b2c(settings, warehouse)
    assert query(warehouse, "select id, surname, is_deleted from raw_b2c.users order by id") == [
        ("u-1", "Lee", False), ("u-2", "Lee", False)]
    assert [reason for _, reason, _ in quarantined(warehouse, "raw_b2c")] == ["invalid_text", "invalid_text"]
