"""Finding or creating a sign-up's CRM contact, against the sandbox's Salesforce through the real client."""
from __future__ import annotations

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from clients.http import ApiError
from clients.salesforce import SalesforceClient
from gateway.crm_contacts import SalesforceContactDirectory, SignUpIdentity, signup_key, soql_string
from reverse_etl import MappingError, mapping_for
from settings import load_settings

SECRET = b"connector-secret"


def directory_for(env: dict, audit=None) -> SalesforceContactDirectory:
    settings = load_settings(env)
    return SalesforceContactDirectory.within_budget(settings.salesforce, 10.0, mapping_for(settings.field_mapping),
                                                    SECRET, audit=audit)


@pytest.fixture
def directory(sandbox) -> SalesforceContactDirectory:
    return directory_for(sandbox.env)


def contacts(sandbox) -> list[dict]:
    return sandbox.state("salesforce")["salesforce"]["Contact"]


def test_a_new_identity_with_an_object_id_is_upserted_by_external_id(sandbox, directory) -> None:
    object_id = str(uuid.uuid4())
    identity = SignUpIdentity(email=f"new.{object_id[:8]}@example.org", given_name="Grace", surname="Hopper",
                              object_id=object_id)
    contact_id = directory.find_or_create(identity)
    [created] = [c for c in contacts(sandbox) if c["Id"] == contact_id]
    assert created["External_User_Id__c"] == object_id and created["LastName"] == "Hopper"
    assert directory.find_or_create(identity) == contact_id  # a retried sign-up finds the same contact


def test_an_existing_contact_is_found_by_email_and_not_duplicated(sandbox, directory) -> None:
    email = f"known.{uuid.uuid4().hex[:8]}@example.org"
    existing = _contact(sandbox, email, "Robert", "Known")
    before = len(contacts(sandbox))
    identity = SignUpIdentity(email=email, given_name="Bob", surname="Known", object_id=None)
    assert directory.find_or_create(identity) == existing
    assert len(contacts(sandbox)) == before


def test_without_an_object_id_the_contact_is_keyed_by_a_provisional_key_from_the_email(sandbox, directory) -> None:
    email = f"plain.{uuid.uuid4().hex[:8]}@example.org"
    identity = SignUpIdentity(email=email, given_name="Ada", surname="Byron", object_id=None)
    contact_id = directory.find_or_create(identity)
    [created] = [c for c in contacts(sandbox) if c["Id"] == contact_id]
    assert created["External_User_Id__c"] == signup_key(email, SECRET)
    assert signup_key(email, SECRET).startswith("signup-") and email.split("@")[0] not in signup_key(email, SECRET)
    assert directory.find_or_create(identity) == contact_id  # B2C's retry finds the first contact


def test_without_a_surname_no_contact_is_created_now(sandbox, directory) -> None:
    before = len(contacts(sandbox))
    identity = SignUpIdentity(email=f"nosurname.{uuid.uuid4().hex[:8]}@example.org", given_name="Ada",
                              surname=None, object_id=str(uuid.uuid4()))
    assert directory.find_or_create(identity) is None
    assert len(contacts(sandbox)) == before


def test_a_contact_the_crm_deleted_is_not_created_again_at_sign_in(sandbox, directory) -> None:
    object_id = str(uuid.uuid4())
    email = f"deleted.{object_id[:8]}@example.org"
    deleted = _contact(sandbox, email, "Dana", "Deleted", external_id=object_id)
    assert directory.client.request("DELETE", f"sobjects/Contact/{deleted}").status_code == 204

    identity = SignUpIdentity(email=email, given_name="Dana", surname="Deleted", object_id=object_id)
    assert directory.find_or_create(identity) is None  # the batch path's policy recreate_deleted_contacts decides
    assert [c["Id"] for c in contacts(sandbox) if c.get("External_User_Id__c") == object_id] == [deleted]


def test_soql_strings_escape_quotes_and_backslashes() -> None:
    assert soql_string("o'brien\\x@example.org") == "'o\\'brien\\\\x@example.org'"


def _contact(sandbox, email: str, first: str, last: str, external_id: str | None = None) -> str:
    """A contact created through the sandbox's REST API (the shared sandbox: unique emails per test)."""
    client = SalesforceClient(load_settings(sandbox.env).salesforce)
    fields = {"Email": email, "FirstName": first, "LastName": last}
    if external_id:
        fields["External_User_Id__c"] = external_id
    response = client.request("POST", "sobjects/Contact", data=orjson.dumps(fields),
                              headers={"Content-Type": "application/json"})
    return orjson.loads(response.content)["id"]


def test_a_shared_family_mailbox_is_not_claimed_at_sign_up(sandbox, directory) -> None:
    email = f"family.{uuid.uuid4().hex[:8]}@example.org"
    _contact(sandbox, email, "Jennifer", "Shared")
    before = len(contacts(sandbox))
    identity = SignUpIdentity(email=email, given_name="Michael", surname="Shared", object_id=str(uuid.uuid4()))
    assert directory.find_or_create(identity) is None  # review, not a link, and no second contact either
    assert len(contacts(sandbox)) == before


def test_crm_duplicates_and_contacts_of_other_identities_are_left_to_the_batch_linking(sandbox, directory) -> None:
    twice = f"twice.{uuid.uuid4().hex[:8]}@example.org"
    _contact(sandbox, twice, "Tess", "Twice")
    _contact(sandbox, twice, "Tess", "Twice")
    held = f"held.{uuid.uuid4().hex[:8]}@example.org"
    _contact(sandbox, held, "Hal", "Held", external_id=str(uuid.uuid4()))
    for email in (twice, held):
        identity = SignUpIdentity(email=email, given_name="Tess", surname="Twice", object_id=str(uuid.uuid4()))
        assert directory.find_or_create(identity) is None


def test_the_contact_already_carrying_the_identity_wins_over_an_email_match(sandbox, directory) -> None:
    object_id = str(uuid.uuid4())
    mine = _contact(sandbox, f"old.{object_id[:8]}@example.org", "Ada", "Lovelace", external_id=object_id)
    identity = SignUpIdentity(email=f"new.{object_id[:8]}@example.org", given_name="Ada", surname="Lovelace",
                              object_id=object_id)
    assert directory.find_or_create(identity) == mine


def test_an_identity_id_climbing_the_path_cannot_touch_another_contact(sandbox) -> None:
    from gateway.crm_contacts import upsert_by_external_id

    victim = _contact(sandbox, f"victim.{uuid.uuid4().hex[:8]}@example.org", "Victor", "Victim")
    client = SalesforceClient(load_settings(sandbox.env).salesforce)
    before = next(c for c in contacts(sandbox) if c["Id"] == victim)
    for hostile in (f"../{victim}", f"..%2F{victim}", f"x/../../{victim}"):
        upsert_by_external_id(client, hostile, {"LastName": "Overwritten", "Email": "attacker@example.org"})
    assert next(c for c in contacts(sandbox) if c["Id"] == victim) == before


def test_a_path_segment_encodes_every_separator_and_refuses_dots() -> None:
    from clients.http import path_segment

    assert path_segment("../003X?q=1#f") == "..%2F003X%3Fq%3D1%23f"
    for dots in ("..", ".", ""):
        with pytest.raises(ValueError):
            path_segment(dots)


def test_concurrent_identical_sign_ups_without_an_object_id_make_one_contact(sandbox, directory) -> None:
    email = f"racing.{uuid.uuid4().hex[:8]}@example.org"
    identity = SignUpIdentity(email=email, given_name="Rita", surname="Racing", object_id=None)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: directory.find_or_create(identity), range(4)))
    created = [c for c in contacts(sandbox) if (c.get("Email") or "").lower() == email and not c.get("IsDeleted")]
    assert len(created) == 1 and set(answers) == {created[0]["Id"]}


def test_sign_ups_under_dropped_connections_never_duplicate_a_contact(sandbox_factory) -> None:
    sandbox = sandbox_factory(users=[], contacts=[], akamai_users=[], fault_rate=0.3, extra_args=())
    sandbox.configure(fault_kinds=["drop"])
    audited: list[dict] = []
    directory = directory_for(sandbox.env, audit=audited.extend)
    for n in range(30):
        identity = SignUpIdentity(email=f"dropped.{n}@example.org", given_name="Dan", surname=f"Dropped{n}",
                                  object_id=None)
        with contextlib.suppress(ApiError):  # a call the faults defeated: the sign-up continues without a contact
            directory.find_or_create(identity)
    sandbox.configure(fault_rate=0.0)
    assert sandbox.stats()["faults"].get("drop_after_write", 0) > 0
    emails = [c["Email"] for c in contacts(sandbox) if c.get("Email", "").startswith("dropped.")]
    assert emails and len(emails) == len(set(emails))
    assert {row["operation"] for row in audited} == {"create_contact"}
    assert all(row["record_key"].startswith("b2c:signup-") and row["payload_hash"] for row in audited)


def test_the_contact_is_built_through_the_field_mapping(sandbox, tmp_path) -> None:
    mapping = {"default": {"dev": {"*": [{"type": "salesforce", "mapping": {
        "uuid": "External_User_Id__c", "email": "Email", "familyName": "LastName", "givenName": "Department"}}]}}}
    path = tmp_path / "mapping.json"
    path.write_bytes(orjson.dumps(mapping))
    directory = directory_for({**sandbox.env, "IDLINK_FIELD_MAPPING": str(path)})
    email = f"mapped.{uuid.uuid4().hex[:8]}@example.org"
    contact_id = directory.find_or_create(SignUpIdentity(email=email, given_name="Mia", surname="Mapped",
                                                         object_id=None))
    [created] = [c for c in contacts(sandbox) if c["Id"] == contact_id]
    assert (created.get("Department"), created.get("FirstName"), created["LastName"]) == ("Mia", None, "Mapped")


def test_the_client_signed_up_through_chooses_the_entry_and_whether_a_contact_is_created(sandbox, tmp_path) -> None:
    mapping = {"default": {"dev": {
        "web-shop": [{"type": "salesforce", "mapping": {
            "uuid": "External_User_Id__c", "email": "Email", "familyName": "LastName", "givenName": "Title"}}],
        "mobile-app": [{"type": "salesforce", "events": ["updated"], "mapping": {
            "uuid": "External_User_Id__c", "familyName": "LastName"}}]}}}
    path = tmp_path / "mapping.json"
    path.write_bytes(orjson.dumps(mapping))
    directory = directory_for({**sandbox.env, "IDLINK_FIELD_MAPPING": str(path)})

    def sign_up(client_id: str | None) -> str | None:
        email = f"{client_id}.{uuid.uuid4().hex[:8]}@example.org"
        return directory.find_or_create(SignUpIdentity(email=email, given_name="Cli", surname="Ent",
                                                       object_id=str(uuid.uuid4()), client_id=client_id))

    before = len(contacts(sandbox))
    shop_contact = sign_up("web-shop")
    [created] = [c for c in contacts(sandbox) if c["Id"] == shop_contact]
    assert (created["Title"], created["FirstName"]) == ("Cli", None)  # the shop's own entry
    assert sign_up("mobile-app") is None  # its entry does not send created
    assert sign_up("kiosk") is None and sign_up(None) is None  # no entry and no "*": sent nowhere
    assert len(contacts(sandbox)) == before + 1


def test_a_mapping_the_org_cannot_take_creates_nothing(sandbox, tmp_path) -> None:
    mapping = {"default": {"dev": {"*": [{"type": "salesforce", "mapping": {
        "uuid": "External_User_Id__c", "familyName": "LastName", "lastLogin": "Last_Seen__c"}}]}}}
    path = tmp_path / "mapping.json"
    path.write_bytes(orjson.dumps(mapping))
    directory = directory_for({**sandbox.env, "IDLINK_FIELD_MAPPING": str(path)})
    before = len(contacts(sandbox))
    with pytest.raises(MappingError, match="Last_Seen__c"):
        directory.find_or_create(SignUpIdentity(email=f"x.{uuid.uuid4().hex[:8]}@example.org", given_name="X",
                                                surname="Y", object_id=str(uuid.uuid4())))
    assert len(contacts(sandbox)) == before
