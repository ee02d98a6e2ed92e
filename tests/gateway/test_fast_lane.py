"""The fast lane links a consenting Akamai identity to its CRM contact in seconds, acting only on evidence the dbt
rules also accept, and leaves everything unclear to the targeted run that the same event triggers."""
from __future__ import annotations

import json
import threading

import pytest

from gateway.fast_lane import CONSUMER, build_worker, uuids_to_link
from inbox import Inbox, InboxEvent
from settings import load_settings

EXTERNAL_ID = "External_User_Id__c"


def entity(uuid: str, email: str, given: str, family: str | None, consent: bool | None = True,
           **extra) -> dict:
    record = {"uuid": uuid, "email": email, "givenName": given,
              "created": "2024-01-01 00:00:00.000000 +0000", "lastUpdated": "2024-01-01 00:00:00.000000 +0000",
              "primaryAddress": {"city": "Leeds", "zip": "LS1 4AP", "country": "GB"}, **extra}
    if family is not None:
        record["familyName"] = family
    if consent is not None:
        record["consents"] = {"crmSync": {"granted": consent}}
    return record


def contact(contact_id: str, email: str, first: str, last: str, external_id: str | None = None) -> dict:
    return {"attributes": {"type": "Contact"}, "Id": contact_id, "FirstName": first, "LastName": last,
            "Email": email, EXTERNAL_ID: external_id,
            "CreatedDate": "2023-05-01T10:00:00.000+0000", "LastModifiedDate": "2023-05-01T10:00:00.000+0000",
            "SystemModstamp": "2023-05-01T10:00:00.000+0000", "IsDeleted": False}


def uuid_of(n: int) -> str:
    return f"11111111-0000-4000-8000-{n:012d}"


# each test uses its own identities: the tenant is shared by the module
ENTITIES = [
    entity(uuid_of(1), "new.person@example.org", "Nadia", "Newcomer"),
    entity(uuid_of(2), "robert.known@example.org", "Bob", "Known"),
    entity(uuid_of(3), "family@example.org", "Michael", "Shared"),
    entity(uuid_of(4), "twice@example.org", "Tess", "Twice"),
    entity(uuid_of(5), "held@example.org", "Hal", "Held"),
    entity(uuid_of(6), "noconsent@example.org", "Nora", "Optout", consent=False),
    entity(uuid_of(7), "unset@example.org", "Uma", "Unset", consent=None),
    entity(uuid_of(8), "nofamily@example.org", "Nell", None),
    entity(uuid_of(9), "worker.new@example.org", "Wanda", "Worker"),
    entity(uuid_of(10), "crm.down@example.org", "Dora", "Down"),
    entity(uuid_of(11), "again@example.org", "Agnes", "Again"),
    entity(uuid_of(12), "deleted.meanwhile@example.org", "Della", "Meanwhile"),
    entity(uuid_of(13), "deleted.in.crm@example.org", "Dana", "Deleted"),
    entity(uuid_of(14), "merged.in.crm@example.org", "Mara", "Merged"),
    # registered through the shop first, signed in to the app later: the shop's entry applies
    entity(uuid_of(21), "shopper@example.org", "Sho", "Pper", emailVerified="2024-01-01 00:05:00 +0000",
           lastLogin="2025-02-03 04:05:06.000000 +0000",
           clients=[{"clientId": "mobile-app", "firstLogin": "2024-06-01 00:00:00 +0000"},
                    {"clientId": "web-shop", "firstLogin": "2024-01-01 00:00:00 +0000"}]),
    entity(uuid_of(22), "kiosk@example.org", "Kio", "Sk",
           clients=[{"clientId": "kiosk", "firstLogin": "2024-01-01 00:00:00 +0000"}]),
    entity(uuid_of(23), "app.only@example.org", "Ap", "Ponly",
           clients=[{"clientId": "mobile-app", "firstLogin": "2024-01-01 00:00:00 +0000"}]),
]
CONTACTS = [
    contact("003000000000002AAA", "robert.known@example.org", "Robert", "Known"),
    contact("003000000000003AAA", "family@example.org", "Jennifer", "Shared"),
    contact("003000000000004AAA", "twice@example.org", "Tess", "Twice"),
    contact("003000000000104AAA", "twice@example.org", "Tess", "Twice"),
    contact("003000000000005AAA", "held@example.org", "Hal", "Held", external_id="someone-else"),
    contact("003000000000012AAA", "deleted.meanwhile@example.org", "Della", "Meanwhile"),
    # contacts the CRM team deleted or merged away (see the test): each carried its identity's id
    contact("003000000000013AAA", "deleted.in.crm@example.org", "Dana", "Deleted", external_id=uuid_of(13)),
    contact("003000000000014AAA", "merged.in.crm@example.org", "Mara", "Merged", external_id=uuid_of(14)),
    contact("003000000000114AAA", "mara.work@example.com", "Mara", "Merged"),
]


@pytest.fixture(scope="module")
def tenant(tmp_path_factory):
    from tests.fixtures_sandbox import launch_sandbox

    sandbox = launch_sandbox(tmp_path_factory.mktemp("fast-lane"), users=[], contacts=CONTACTS,
                             akamai_users=ENTITIES)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def worker(tenant, tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    built = build_worker(inbox, load_settings({**tenant.env, "FAST_LANE_CALL_BUDGET_S": "5"}))
    inbox.set_consumer_seq(CONSUMER, 0)
    yield built
    built.close()
    inbox.close()


def webhook(n: int, kind: str = "entityCreated") -> InboxEvent:
    return InboxEvent(id=f"jti-{n}-{kind}", source="akamai", kind=kind, subject=uuid_of(n))


def salesforce_contacts(tenant) -> dict[str, dict]:
    return {c["Id"]: c for c in tenant.state("salesforce")["salesforce"]["Contact"] if not c.get("IsDeleted")}


def akamai_entity(tenant, n: int) -> dict:
    return next(u for u in tenant.state("akamai")["akamai"]["users"] if u["uuid"] == uuid_of(n))


def test_a_new_identity_gets_a_new_contact_carrying_its_id_and_the_contact_id_comes_back(worker, tenant) -> None:
    result = worker.lane.link(uuid_of(1))

    assert (result.action, result.reason) == ("created", "")
    created = salesforce_contacts(tenant)[result.contact_id]
    assert created[EXTERNAL_ID] == uuid_of(1)
    assert (created["FirstName"], created["LastName"], created["Email"]) == ("Nadia", "Newcomer",
                                                                             "new.person@example.org")
    assert created["MailingCity"] == "Leeds"  # fields come from the field mapping
    assert akamai_entity(tenant, 1)["crmContactId"] == result.contact_id
    assert [(a["system"], a["operation"], a["outcome"]) for a in result.audit] == [
        ("salesforce", "create_contact", "succeeded"), ("akamai", "set_attribute", "succeeded")]


def test_linking_again_finds_the_same_contact_instead_of_creating_a_second(worker, tenant) -> None:
    first = worker.lane.link(uuid_of(11))
    again = worker.lane.link(uuid_of(11))

    assert (first.action, again.action) == ("created", "found")
    assert again.contact_id == first.contact_id
    assert again.audit == []
    assert [c["Id"] for c in salesforce_contacts(tenant).values() if c[EXTERNAL_ID] == uuid_of(11)] == [
        first.contact_id]


def test_an_existing_contact_with_the_email_and_agreeing_names_is_linked_not_duplicated(worker, tenant) -> None:
    result = worker.lane.link(uuid_of(2))  # Bob Known signs up; the CRM has Robert Known

    assert (result.action, result.contact_id) == ("linked", "003000000000002AAA")
    assert salesforce_contacts(tenant)["003000000000002AAA"][EXTERNAL_ID] == uuid_of(2)
    assert akamai_entity(tenant, 2)["crmContactId"] == "003000000000002AAA"
    assert [(a["system"], a["operation"], a["record_key"]) for a in result.audit] == [
        ("salesforce", "set_external_id", f"003000000000002AAA:{EXTERNAL_ID}"),
        ("akamai", "set_attribute", f"{uuid_of(2)}:crmContactId")]


@pytest.mark.parametrize(("n", "reason"), [
    (3, "first_names_differ"),  # Michael and Jennifer share a family mailbox
    (4, "several_contacts_with_email"),
    (5, "contact_holds_another_identity"),
    (8, "no_family_name"),
])
def test_unclear_cases_are_left_to_the_batch_linking_and_nothing_is_written(worker, tenant, n, reason) -> None:
    before = salesforce_contacts(tenant)

    result = worker.lane.link(uuid_of(n))

    assert (result.action, result.reason, result.audit) == ("deferred", reason, [])
    assert salesforce_contacts(tenant) == before
    assert not akamai_entity(tenant, n).get("crmContactId")


@pytest.mark.parametrize("n", [6, 7])
def test_identities_without_consent_are_not_sent_to_the_crm(worker, tenant, n) -> None:
    before = salesforce_contacts(tenant)

    result = worker.lane.link(uuid_of(n))

    assert (result.action, result.reason) == ("skipped", "no_consent")
    assert salesforce_contacts(tenant) == before


def test_an_identity_that_is_gone_is_skipped(worker) -> None:
    assert worker.lane.link("11111111-0000-4000-8000-0000000000ff").reason == "identity_gone"


def test_the_worker_follows_the_inbox_records_its_writes_and_tells_the_sensors(worker, tenant) -> None:
    inbox = worker.inbox
    for event in (webhook(9), webhook(9, "entityUpdated"), webhook(3), webhook(6, "entityDeleted")):
        inbox.put(event)

    assert worker.step() == 4

    contact_id = akamai_entity(tenant, 9)["crmContactId"]
    audit = inbox.unimported_audit()
    assert [(row["system"], row["record_key"], row["outcome"]) for row in audit] == [
        ("salesforce", f"akamai:{uuid_of(9)}", "succeeded"), ("akamai", f"{uuid_of(9)}:crmContactId", "succeeded")]
    assert audit[0]["remote_id"] == contact_id
    told = inbox.after(0, sources=["fast_lane"])
    assert [(e.subject, e.payload["contact_id"], e.kind) for e in told] == [(uuid_of(9), contact_id, "created")]
    # the family mailbox is deferred; deletions are not the fast lane's business
    assert worker.counts == {"created": 1, "deferred": 1}
    assert worker.step() == 0  # the cursor moved past what was handled
    assert inbox.consumer_seq(CONSUMER) == max(e.seq for e in inbox.after(0, sources=["akamai"]))


def test_a_first_start_begins_at_the_end_of_the_inbox(tenant, tmp_path) -> None:
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    inbox.put(webhook(1))
    worker = build_worker(inbox, load_settings(tenant.env))
    try:
        assert worker.step() == 0
        assert inbox.consumer_seq(CONSUMER) == inbox.last_seq()
    finally:
        worker.close()
        inbox.close()


def test_a_crm_failure_is_audited_and_left_for_the_targeted_run(tenant, tmp_path) -> None:
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    env = {**tenant.env, "SALESFORCE_CLIENT_SECRET": "wrong", "FAST_LANE_CALL_BUDGET_S": "1"}
    worker = build_worker(inbox, load_settings(env))
    inbox.set_consumer_seq(CONSUMER, 0)
    inbox.put(webhook(10))
    try:
        worker.step()
        assert worker.counts == {"failed": 1}
        assert inbox.after(0, sources=["fast_lane"]) == []
        assert [e.subject for e in inbox.pending()] == [uuid_of(10)]  # the event still waits for the sensor
        assert inbox.unimported_audit() == []  # the failure happened before anything was sent
        assert not akamai_entity(tenant, 10).get("crmContactId")
    finally:
        worker.close()
        inbox.close()


def test_the_worker_loop_stops_when_asked(worker) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_uuids_are_taken_once_from_created_and_updated_akamai_events_only() -> None:
    events = [webhook(1), webhook(2, "entityDeleted"), webhook(1, "entityUpdated"),
              InboxEvent(id="b2c:x", source="b2c", kind="signUp", subject="oid")]
    assert uuids_to_link(events) == [uuid_of(1)]



def test_a_contact_deleted_before_its_external_id_is_set_is_not_written_onto_the_identity(worker, tenant) -> None:
    salesforce = worker.lane.salesforce
    original = salesforce.request

    def deleted_meanwhile(method, path, **kw):
        if method == "PATCH" and path.startswith("sobjects/Contact/003"):
            assert original("DELETE", path).status_code == 204  # a CRM user deletes it at that moment
        return original(method, path, **kw)

    salesforce.request = deleted_meanwhile
    try:
        result = worker.lane.link(uuid_of(12))
    finally:
        salesforce.request = original
    assert (result.action, result.reason) == ("deferred", "contact_gone (ENTITY_IS_DELETED)")
    assert [(row["operation"], row["outcome"], row["error_code"]) for row in result.audit] == [
        ("set_external_id", "failed", "ENTITY_IS_DELETED")]
    assert not akamai_entity(tenant, 12).get("crmContactId")
    assert not result.wrote


@pytest.mark.parametrize(("n", "removal"), [(13, "deleted"), (14, "merged")])
def test_a_contact_the_crm_deleted_or_merged_away_is_not_created_again(worker, tenant, n, removal) -> None:
    contact_id = f"0030000000000{n}AAA"
    if removal == "deleted":
        assert worker.lane.salesforce.request("DELETE", f"sobjects/Contact/{contact_id}").status_code == 204
    else:
        merged = tenant.client.post(f"{tenant.url}/__sandbox/salesforce/merge",
                                    json={"master": "003000000000114AAA", "losers": [contact_id]})
        assert merged.status_code == 200

    result = worker.lane.link(uuid_of(n))

    # the batch path decides, by its policy recreate_deleted_contacts (a merge it follows to the survivor)
    assert (result.action, result.reason) == ("deferred", "contact_deleted_in_crm")
    assert result.audit == []
    assert [c for c in salesforce_contacts(tenant).values() if c[EXTERNAL_ID] == uuid_of(n)] == []
    assert not akamai_entity(tenant, n).get("crmContactId")


def per_client_worker(tenant, tmp_path, clients: dict):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"acme": {"prod": clients}}))
    env = {**tenant.env, "FAST_LANE_CALL_BUDGET_S": "5", "IDLINK_FIELD_MAPPING": str(path),
           "IDLINK_CUSTOMER": "acme", "IDLINK_ENVIRONMENT": "prod"}
    return build_worker(Inbox(tmp_path / "inbox.sqlite3"), load_settings(env))


SHOP_ENTRY = [{"type": "salesforce", "events": ["created"], "mapping": {
    "uuid": EXTERNAL_ID, "email": "Email", "familyName": "LastName", "emailVerified": "Email_Verified__c",
    "lastLogin": "Last_Login__c"}}, {"type": "akamai", "mapping": {"crmContactId": "crmContactId"}}]


def test_the_client_the_identity_registered_through_chooses_its_entry(tenant, tmp_path) -> None:
    worker = per_client_worker(tenant, tmp_path, {
        "web-shop": SHOP_ENTRY,
        "mobile-app": [{"type": "salesforce", "events": ["updated"], "mapping": {"uuid": EXTERNAL_ID}}]})
    try:
        shop = worker.lane.link(uuid_of(21))
        assert shop.action == "created"
        created = salesforce_contacts(tenant)[shop.contact_id]
        assert (created["Email_Verified__c"], created["FirstName"]) == (True, None)  # the shop maps no givenName
        assert created["Last_Login__c"].startswith("2025-02-03T04:05:06")
        # a client whose entry does not send created is not given a new contact; one without an entry is untouched
        assert (worker.lane.link(uuid_of(23)).action, worker.lane.link(uuid_of(23)).reason) == (
            "deferred", "event_created_not_sent")
        kiosk = worker.lane.link(uuid_of(22))
        assert (kiosk.action, kiosk.reason, kiosk.audit) == ("skipped", "client_not_mapped", [])
    finally:
        worker.close()


def test_a_mapping_the_org_cannot_take_fails_every_identity_before_any_write(tenant, tmp_path) -> None:
    worker = per_client_worker(tenant, tmp_path, {"*": [{"type": "salesforce", "mapping": {
        "uuid": EXTERNAL_ID, "familyName": "LastName", "lastLogin": "Last_Seen__c"}}]})
    try:
        tenant.reset_stats()
        result = worker.lane.link(uuid_of(22))
        assert (result.action, result.reason, result.audit) == ("failed", "mapping_invalid", [])
        assert not [route for route in tenant.stats()["requests"] if route.startswith(("POST", "PATCH"))
                    and "token" not in route]
    finally:
        worker.close()
