"""Specification of the synthetic dataset: native shapes, honest truth, realistic noise, bad records."""

from __future__ import annotations

import os
import re
import string
import subprocess
import sys
import unicodedata
import uuid
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email

from sandbox.synthetic import (
    DEFAULT_EXTENSIONS_APP_ID,
    DEFAULT_TENANT,
    Negative,
    TruthPair,
    generate,
    load_negatives,
    load_truth,
    write_dataset,
)
from sandbox.synthetic.pools import COUNTRIES, COUNTRY_NAMES, related_first_names

SIZE = 6000
APP = DEFAULT_EXTENSIONS_APP_ID.replace("-", "")
CONSENT = f"extension_{APP}_CrmSyncConsent"
CONTACT_ID = f"extension_{APP}_CrmContactId"
# each consent purpose's answer and the time it was given (dbt var consent_purposes)
CONSENTS = {CONSENT, CONSENT + "At", f"extension_{APP}_MarketingConsent", f"extension_{APP}_MarketingConsentAt"}
SIGN_UP_CLIENT = f"extension_{APP}_SignUpClientId"  # the application the user signed up through, where known
COUNTRY_BY_NAME = {name.casefold(): iso2 for iso2, names in COUNTRY_NAMES.items() for name in names}
GRAPH_KEYS = {
    "id",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "otherMails",
    "mobilePhone",
    "businessPhones",
    "streetAddress",
    "city",
    "postalCode",
    "state",
    "country",
    "usageLocation",
    "accountEnabled",
    "createdDateTime",
    "userPrincipalName",
    "identities",
}
CONTACT_KEYS = {
    "attributes",
    "Id",
    "AccountId",
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "MobilePhone",
    "MailingStreet",
    "MailingCity",
    "MailingPostalCode",
    "MailingState",
    "MailingCountry",
    "External_User_Id__c",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "IsDeleted",
}
AKAMAI_KEYS = {
    "id",
    "uuid",
    "email",
    "emailVerified",
    "givenName",
    "familyName",
    "mobileNumber",
    "primaryAddress",
    "created",
    "lastUpdated",
    "consents",
    "crmContactId",
    "clients",  # the applications signed in to (clientId, firstLogin, lastLogin): the first is the registration's
    "lastLogin",
}
SF_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$")


@pytest.fixture(scope="module")
def data():
    return generate(SIZE, seed=11)


@pytest.fixture(scope="module")
def mixed():
    return generate(3000, seed=5, akamai_share=0.4)


@pytest.fixture(scope="module")
def index(data):
    users = {u["id"]: u for u in data.users}
    contacts = {c["Id"]: c for c in data.contacts}
    return users, contacts


# ---------------------------------------------------------------- comparisons independent of the generator
def identity_emails(user: dict) -> set[str]:
    raw = [i["issuerAssignedId"] for i in user["identities"] if i["signInType"] == "emailAddress"]
    raw += [user["mail"]] if user["mail"] else []
    raw += user["otherMails"]
    return {e.strip().lower() for e in raw if e}


def contact_emails(contact: dict) -> set[str]:
    return {contact["Email"].strip().lower()} if contact["Email"] else set()


def mailbox(email: str) -> str:
    local, _, domain = email.partition("@")
    local = local.split("+")[0]
    if domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@gmail.com"
    return f"{local}@{domain}"


def e164(raw: str | None, region: str | None) -> str | None:
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def identity_phones(user: dict) -> set[str]:
    return {
        p
        for p in (e164(x, user["usageLocation"]) for x in [user["mobilePhone"], *user["businessPhones"]])
        if p
    }


def contact_phones(contact: dict) -> set[str]:
    region = COUNTRY_BY_NAME.get((contact["MailingCountry"] or "").casefold())
    return {p for p in (e164(contact["Phone"], region), e164(contact["MobilePhone"], region)) if p}


def valid_email(email: str) -> bool:
    try:
        validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


# ---------------------------------------------------------------- determinism and size
def test_the_same_seed_gives_the_same_dataset_and_another_seed_a_different_one() -> None:
    first, again, other = generate(400, seed=3), generate(400, seed=3), generate(400, seed=4)
    assert first.users == again.users
    assert first.contacts == again.contacts
    assert first.truth == again.truth and first.negatives == again.negatives
    assert first.identity_consent == again.identity_consent
    assert {u["id"] for u in first.users}.isdisjoint({u["id"] for u in other.users})


def test_the_dataset_does_not_depend_on_the_process_hash_seed() -> None:
    script = (
        "import hashlib; from sandbox.synthetic import generate; d = generate(300, seed=9); "
        "print(hashlib.sha256(repr([d.users, d.contacts, d.truth, d.negatives]).encode()).hexdigest())"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            text=True,
        )
        for hash_seed in ("1", "2")
    ]
    digests = [run.communicate(timeout=120)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert digests[0] == digests[1] and len(digests[0].strip()) == 64


def test_size_gives_about_that_many_identities_and_contacts(data) -> None:
    assert abs(len(data.users) - SIZE) < 0.05 * SIZE
    assert 0.75 * SIZE < len(data.contacts) < 1.05 * SIZE


def test_about_half_of_identities_have_a_contact_and_some_contacts_have_no_identity(data) -> None:
    linked_identities = {p.identity_id for p in data.truth}
    linked_contacts = {p.contact_id for p in data.truth}
    assert 0.50 < len(linked_identities) / len(data.users) < 0.62  # 45% of people / 80% with an identity
    contact_only = len(data.contacts) - len(linked_contacts)
    assert 0.17 < contact_only / len(data.contacts) < 0.35


# ---------------------------------------------------------------- native shapes
def test_graph_users_have_the_b2c_shape(data) -> None:
    for user in data.users:
        assert GRAPH_KEYS <= user.keys()
        assert set(user) - GRAPH_KEYS <= CONSENTS | {CONTACT_ID, SIGN_UP_CLIENT}
        assert str(uuid.UUID(user["id"])) == user["id"] and uuid.UUID(user["id"]).version == 4
        assert user["userPrincipalName"] == f"{user['id']}@{DEFAULT_TENANT}"
        kinds = [i["signInType"] for i in user["identities"]]
        assert kinds == ["emailAddress", "userPrincipalName"]
        assert all(i["issuer"] == DEFAULT_TENANT for i in user["identities"])
        assert user["usageLocation"] in COUNTRIES
        assert user["accountEnabled"] is True
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", user["createdDateTime"])
        assert isinstance(user["otherMails"], list) and isinstance(user["businessPhones"], list)


def test_tenant_and_extensions_app_id_shape_the_user_objects() -> None:
    small = generate(
        200, seed=1, extensions_app_id="11111111-2222-3333-4444-555555555555", tenant="acme.onmicrosoft.com"
    )
    user = small.users[0]
    assert user["userPrincipalName"].endswith("@acme.onmicrosoft.com")
    assert any(k.startswith("extension_11111111222233334444555555555555_") for u in small.users for k in u)


def _reference_checksum(id15: str) -> str:
    out = ""
    for start in (0, 5, 10):
        bits = sum(1 << j for j, c in enumerate(id15[start : start + 5]) if c in string.ascii_uppercase)
        out += (string.ascii_uppercase + "012345")[bits]
    return out


def test_contacts_have_the_salesforce_shape_with_valid_18_character_ids(data) -> None:
    ids = [c["Id"] for c in data.contacts]
    assert len(set(ids)) == len(ids)
    for contact in data.contacts:
        assert set(contact) == CONTACT_KEYS
        cid = contact["Id"]
        assert len(cid) == 18 and cid.startswith("003") and cid.isalnum()
        assert cid[15:] == _reference_checksum(cid[:15])
        assert contact["AccountId"].startswith("001") and len(contact["AccountId"]) == 18
        assert contact["attributes"] == {
            "type": "Contact",
            "url": f"/services/data/v62.0/sobjects/Contact/{cid}",
        }
        assert contact["IsDeleted"] is False
        for key in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            assert SF_TIMESTAMP.match(contact[key])
        assert contact["CreatedDate"] <= contact["LastModifiedDate"]


def test_akamai_share_moves_identities_to_akamai_in_the_entity_shape(mixed) -> None:
    total = len(mixed.users) + len(mixed.akamai_users)
    assert 0.35 < len(mixed.akamai_users) / total < 0.45
    uuids = {a["uuid"] for a in mixed.akamai_users}
    assert len(uuids) == len(mixed.akamai_users)
    for entity in mixed.akamai_users:
        assert set(entity) == AKAMAI_KEYS
        assert set(entity["primaryAddress"]) == {"address1", "city", "zip", "country"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} \+0000", entity["created"])
        consent = mixed.identity_consent[entity["uuid"]]
        if consent == "missing":
            assert entity["consents"] == {}
        else:
            assert entity["consents"]["crmSync"]["granted"] is (consent == "granted")
    providers = Counter(p.identity_provider for p in mixed.truth)
    assert providers["akamai"] > 0 and providers["b2c"] > 0
    assert {p.identity_id for p in mixed.truth if p.identity_provider == "akamai"} <= uuids


def test_no_akamai_users_unless_asked(data) -> None:
    assert data.akamai_users == []


# ---------------------------------------------------------------- truth
def test_truth_pairs_reference_existing_records_once_each(data, index) -> None:
    users, contacts = index
    assert len(set(data.truth)) == len(data.truth)
    for pair in data.truth:
        assert isinstance(pair, TruthPair) and pair.identity_provider == "b2c"
        assert pair.identity_id in users and pair.contact_id in contacts
    assert len({p.contact_id for p in data.truth}) == len(data.truth)  # a contact belongs to one person


def test_every_evidence_label_occurs_and_linkable_pairs_dominate(data) -> None:
    labels = Counter(p.evidence for p in data.truth)
    assert set(labels) == {"id", "email", "mailbox", "phone", "name_place", "none"}
    assert labels["email"] > labels["mailbox"] > 0
    assert labels["none"] < 0.12 * len(data.truth)
    assert 0.03 < labels["id"] / len(data.truth) < 0.09


def test_id_pairs_are_pre_linked_in_one_direction_or_both(data, index) -> None:
    users, contacts = index
    directions = Counter()
    for pair in (p for p in data.truth if p.evidence == "id"):
        by_contact = contacts[pair.contact_id]["External_User_Id__c"] == pair.identity_id
        by_identity = users[pair.identity_id].get(CONTACT_ID) == pair.contact_id
        assert by_contact or by_identity
        directions[(by_contact, by_identity)] += 1
    assert len(directions) == 3


def test_pre_link_fields_only_point_at_the_same_person(data, index) -> None:
    users, contacts = index
    truth = {(p.identity_id, p.contact_id) for p in data.truth}
    for contact in contacts.values():
        if contact["External_User_Id__c"]:
            assert (contact["External_User_Id__c"], contact["Id"]) in truth
    for user in users.values():
        if CONTACT_ID in user:
            assert (user["id"], user[CONTACT_ID]) in truth


def test_email_pairs_share_the_normalised_email(data, index) -> None:
    users, contacts = index
    pairs = [p for p in data.truth if p.evidence == "email"]
    assert all(identity_emails(users[p.identity_id]) & contact_emails(contacts[p.contact_id]) for p in pairs)
    raw_differs = sum(
        contacts[p.contact_id]["Email"] != users[p.identity_id]["identities"][0]["issuerAssignedId"]
        for p in pairs
    )
    assert raw_differs > 0.1 * len(pairs)  # case and spaces differ on one side


def test_mailbox_pairs_share_the_mailbox_but_not_the_email(data, index) -> None:
    users, contacts = index
    pairs = [p for p in data.truth if p.evidence == "mailbox"]
    plus = gmail = 0
    for p in pairs:
        ids, cs = identity_emails(users[p.identity_id]), contact_emails(contacts[p.contact_id])
        assert not ids & cs
        assert {mailbox(e) for e in ids} & {mailbox(e) for e in cs}
        plus += any("+" in e for e in ids | cs)
        gmail += any(e.endswith(("@gmail.com", "@googlemail.com")) for e in ids | cs)
    assert plus > 0 and gmail > 0


def test_phone_pairs_share_a_number_after_e164_normalisation_and_no_mailbox(data, index) -> None:
    users, contacts = index
    pairs = [p for p in data.truth if p.evidence == "phone"]
    for p in pairs:
        user, contact = users[p.identity_id], contacts[p.contact_id]
        assert identity_phones(user) & contact_phones(contact)
        assert not {mailbox(e) for e in identity_emails(user)} & {mailbox(e) for e in contact_emails(contact)}
        assert user["givenName"] and contact["FirstName"]


def test_name_place_pairs_share_no_email_or_phone_but_names_and_place(data, index) -> None:
    users, contacts = index
    pairs = [p for p in data.truth if p.evidence == "name_place"]
    exact_names = 0
    for p in pairs:
        user, contact = users[p.identity_id], contacts[p.contact_id]
        assert not {mailbox(e) for e in identity_emails(user)} & {mailbox(e) for e in contact_emails(contact)}
        assert not identity_phones(user) & contact_phones(contact)
        assert user["givenName"] and user["surname"] and contact["FirstName"] and contact["LastName"]
        same_postal = (user["postalCode"] or "x").replace(" ", "").upper() == (
            contact["MailingPostalCode"] or "y"
        ).replace(" ", "").upper()
        assert same_postal or (user["city"] or "").strip().casefold() != ""
        exact_names += (user["givenName"], user["surname"]) == (contact["FirstName"], contact["LastName"])
    assert exact_names < 0.7 * len(pairs)  # typos, nicknames, accents and case make most names differ


def test_noise_includes_nicknames_and_accents_present_on_one_side_only(data, index) -> None:
    users, contacts = index
    related = related_first_names()
    nicknames = accents = 0
    for p in data.truth:
        a, b = users[p.identity_id]["givenName"], contacts[p.contact_id]["FirstName"]
        if not a or not b:
            continue
        if b.strip().lower() in related.get(a.strip().lower(), ()):
            nicknames += 1
        if a.isascii() != b.isascii() and len(a) < 100 and len(b) < 100:
            accents += 1
    assert nicknames > 10 and accents > 10


def test_crm_duplicates_give_one_person_several_contacts(data) -> None:
    per_identity = Counter(p.identity_id for p in data.truth)
    assert sum(1 for n in per_identity.values() if n >= 2) > 0.03 * len(per_identity)
    assert max(per_identity.values()) <= 3


# ---------------------------------------------------------------- negatives
def test_family_mailboxes_share_one_email_with_clearly_different_first_names(data, index) -> None:
    users, contacts = index
    family = [n for n in data.negatives if n.reason == "family_mailbox"]
    assert len(family) > 0.003 * SIZE
    related = related_first_names()
    for n in family:
        user, contact = users[n.identity_id], contacts[n.contact_id]
        assert identity_emails(user) & contact_emails(contact)
        a, b = user["givenName"].strip().lower(), contact["FirstName"].strip().lower()
        assert a != b and a[0] != b[0] and b not in related.get(a, ())


def test_same_name_strangers_share_the_name_and_nothing_else(data, index) -> None:
    users, contacts = index
    strangers = [n for n in data.negatives if n.reason == "same_name_stranger"]
    assert len(strangers) > 0.003 * SIZE
    for n in strangers:
        user, contact = users[n.identity_id], contacts[n.contact_id]
        assert user["surname"].strip().casefold() == contact["LastName"].strip().casefold()
        assert user["givenName"].strip().casefold() == contact["FirstName"].strip().casefold()
        assert not identity_emails(user) & contact_emails(contact)
        assert not identity_phones(user) & contact_phones(contact)
        assert user["postalCode"] is None or user["postalCode"] != contact["MailingPostalCode"]


def test_negatives_never_overlap_the_truth(data) -> None:
    truth = {(p.identity_id, p.contact_id) for p in data.truth}
    assert all(isinstance(n, Negative) and (n.identity_id, n.contact_id) not in truth for n in data.negatives)


# ---------------------------------------------------------------- consent
def test_consent_is_granted_withdrawn_or_missing_in_the_documented_shares(data) -> None:
    shares = Counter(data.identity_consent.values())
    total = sum(shares.values())
    assert total == len(data.users)
    assert abs(shares["granted"] / total - 0.70) < 0.03
    assert abs(shares["withdrawn"] / total - 0.10) < 0.02
    assert abs(shares["missing"] / total - 0.20) < 0.03


def test_consent_attribute_matches_the_consent_map(data) -> None:
    for user in data.users:
        consent = data.identity_consent[user["id"]]
        if consent == "missing":
            assert CONSENT not in user
        else:
            assert user[CONSENT] is (consent == "granted")


# ---------------------------------------------------------------- realism of values
def test_phone_numbers_are_valid_for_the_record_country_in_many_spellings(data) -> None:
    spellings = Counter()
    checked = 0
    for contact in data.contacts[:3000]:
        region = COUNTRY_BY_NAME.get((contact["MailingCountry"] or "").casefold())
        for raw in (contact["Phone"], contact["MobilePhone"]):
            if not raw or not raw.strip():
                continue
            assert e164(raw, region), "every well-formed phone parses to a valid number"
            checked += 1
            spellings[
                "+"
                if raw.startswith("+")
                else "00"
                if raw.startswith("00")
                else "("
                if "(" in raw
                else "-"
                if "-" in raw
                else "national"
            ] += 1
    assert checked > 1000 and len(spellings) == 5


def test_every_country_appears_with_its_own_postal_format(data) -> None:
    by_country = Counter(u["usageLocation"] for u in data.users)
    assert set(by_country) == set(COUNTRIES)
    gb = [u["postalCode"] for u in data.users if u["usageLocation"] == "GB" and u["postalCode"]]
    assert any(re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}", c) for c in gb)
    us = [u["postalCode"] for u in data.users if u["usageLocation"] == "US" and u["postalCode"]]
    assert all(re.fullmatch(r"\d{5}", c) for c in us)


def test_well_formed_emails_pass_validation(data) -> None:
    defective = {d.record_id for d in data.defects}
    sample = [c for c in data.contacts if c["Email"] and c["Id"] not in defective][:2000]
    assert all(valid_email(c["Email"]) for c in sample)


# ---------------------------------------------------------------- bad records
def test_bad_records_of_every_kind_are_present_and_listed(data, index) -> None:
    users, contacts = index
    kinds = Counter(d.kind for d in data.defects)
    assert set(kinds) == {
        "malformed_email",
        "oversized_field",
        "control_characters",
        "emoji",
        "empty_strings",
        "rtl_text",
    }
    bad = sum(v for k, v in kinds.items() if k != "rtl_text")
    assert 0.002 < bad / (len(users) + len(contacts)) < 0.01
    for d in data.defects:
        record = users.get(d.record_id) or contacts[d.record_id]
        email = (
            record.get("Email") if d.system == "salesforce" else record["identities"][0]["issuerAssignedId"]
        )
        names = [
            record.get("FirstName") or record.get("givenName") or "",
            record.get("LastName") or record.get("surname") or "",
        ]
        if d.kind == "malformed_email":
            assert not valid_email(email)
        elif d.kind == "oversized_field":
            assert max(len(n) for n in names) >= 100_000
        elif d.kind == "control_characters":
            assert any(ord(c) < 32 for n in names for c in n)
        elif d.kind == "emoji":
            assert any(unicodedata.category(c) == "So" for n in names for c in n)  # pictographs
        elif d.kind == "empty_strings":
            assert email == "" and names == ["", ""]
        else:
            assert any("\u0590" <= c <= "\u06ff" for n in names for c in n)


def test_bad_records_never_carry_email_or_phone_evidence(data) -> None:
    broken = {d.record_id for d in data.defects if d.kind in ("malformed_email", "empty_strings")}
    assert all(
        p.evidence not in ("email", "mailbox")
        for p in data.truth
        if p.identity_id in broken or p.contact_id in broken
    )


# ---------------------------------------------------------------- files
def test_write_dataset_streams_json_lines_that_load_back(tmp_path) -> None:
    small = generate(300, seed=2, akamai_share=0.2)
    paths = write_dataset(small, tmp_path / "out")
    assert set(paths) >= {"users", "contacts", "akamai_users", "truth", "negatives", "consent"}
    assert sum(1 for _ in paths["users"].open()) == len(small.users)
    assert sum(1 for _ in paths["contacts"].open()) == len(small.contacts)
    assert sum(1 for _ in paths["consent"].open()) == len(small.identity_consent)
    assert load_truth(tmp_path / "out") == small.truth
    assert load_negatives(tmp_path / "out") == small.negatives


# ---------------------------------------------------------------- noise profiles
def _profile_rates(data) -> dict[str, float]:
    people = len(data.users) + len(data.contacts)
    reasons = [n.reason for n in data.negatives]
    return {
        "family_mailbox": reasons.count("family_mailbox") / people,
        "same_name_stranger": reasons.count("same_name_stranger") / people,
        "non_latin": sum(d.kind == "rtl_text" for d in data.defects) / people,
        "contact_without_first_name": sum(not c["FirstName"] for c in data.contacts) / len(data.contacts),
        "contact_without_postal_code": sum(not c["MailingPostalCode"] for c in data.contacts) / len(data.contacts),
        "identity_without_address": sum(not u["city"] for u in data.users) / len(data.users),
    }


def test_the_messy_noise_profile_differs_in_every_distribution_and_the_default_is_the_sandbox_data() -> None:
    default = generate(3000, seed=5)
    again = generate(3000, seed=5, noise_profile="default")
    messy = generate(3000, seed=5, noise_profile="messy")
    assert again.users == default.users and again.contacts == default.contacts and again.truth == default.truth
    plain, hard = _profile_rates(default), _profile_rates(messy)
    for rate, value in plain.items():
        assert hard[rate] > 1.3 * value, (rate, value, hard[rate])
    with pytest.raises(ValueError, match="unknown noise profile"):
        generate(10, seed=1, noise_profile="nonexistent")
