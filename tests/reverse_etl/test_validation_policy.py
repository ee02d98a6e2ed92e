"""A value the CRM refuses is never retried as it is: the contact is created without it (flagged), or
dead-lettered at once; either way the audit tables keep the error code and field names, never the value."""
from __future__ import annotations

import duckdb

from reverse_etl.runner import push_salesforce
from reverse_etl.salesforce_writer import ValidationPolicy
from tests.reverse_etl.marts import contact_row, write_marts
from tests.reverse_etl.scenario import build_world, identity_id

NON_ASCII_EMAIL = "zoë.müller@exämple.org"  # Salesforce takes ASCII addresses only
LONG_FAMILY_NAME = "Oberstaatsanwaltschaftsverwaltungsangestelltenfortbildungsmassnahmenplanungsreferentin"


def audit_text(warehouse) -> str:
    with duckdb.connect(str(warehouse)) as con:
        rows = con.execute("select * from reverse_etl.sync_log").fetchall()
        rows += con.execute("select * from reverse_etl.dead_letters").fetchall()
    return " ".join(str(v) for row in rows for v in row)


def refused_world(sandbox_factory, tmp_path):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=0)
    write_marts(world.warehouse, contacts=[
        contact_row(identity_id(1), 1),
        contact_row(identity_id(2), 2, email=NON_ASCII_EMAIL),
        contact_row(identity_id(3), 3, family_name=LONG_FAMILY_NAME)])
    return world


def contact_of(world, ident: str) -> dict | None:
    return next((c for c in world.contacts() if c.get("External_User_Id__c") == ident), None)


def test_a_refused_optional_field_is_left_out_at_once_and_the_contact_is_flagged(sandbox_factory, tmp_path):
    world = refused_world(sandbox_factory, tmp_path)
    first = push_salesforce(world.warehouse, world.salesforce, world.mapping, "run-1")
    assert (first.attempted, first.succeeded, first.failed) == (3, 2, 0)

    created = contact_of(world, identity_id(2))
    assert created is not None and created.get("Email") is None
    assert created["LastName"] == "Family2" and created["Phone"] == "+49300000002"
    with duckdb.connect(str(world.warehouse)) as con:
        assert con.execute("""select record_key, dropped_fields from reverse_etl.sync_state
                              where dropped_fields is not null""").fetchall() == [(f"b2c:{identity_id(2)}", "Email")]
        assert con.execute("""select outcome, error_code, error_message from reverse_etl.sync_log
                              where record_key = ?""", [f"b2c:{identity_id(2)}"]).fetchall() == [
            ("succeeded_without_fields", "INVALID_EMAIL_ADDRESS",
             "accepted without the fields it rejected; fields: Email")]
        assert con.execute("select count(*) from reverse_etl.pending").fetchone() == (0,)

    # the required family name cannot be left out: dead-lettered on the first attempt, not after three runs
    assert first.dead_lettered == 1 and contact_of(world, identity_id(3)) is None
    second = push_salesforce(world.warehouse, world.salesforce, world.mapping, "run-2")
    assert (second.attempted, second.skipped, second.parked) == (0, 2, 1)
    text = audit_text(world.warehouse)
    assert "STRING_TOO_LONG" in text and "LastName" in text
    assert "zoë" not in text and "Oberstaats" not in text


def test_under_the_dead_letter_policy_a_refused_value_is_dead_lettered_at_once(sandbox_factory, tmp_path):
    world = refused_world(sandbox_factory, tmp_path)
    result = push_salesforce(world.warehouse, world.salesforce, world.mapping, "run-1",
                             validation_policy=ValidationPolicy.DEAD_LETTER)
    assert (result.succeeded, result.dead_lettered, result.pending_after) == (1, 2, 0)
    assert contact_of(world, identity_id(2)) is None
    with duckdb.connect(str(world.warehouse)) as con:
        assert con.execute("""select record_key, error_code, error_message, attempts from reverse_etl.dead_letters
                              order by record_key""").fetchall() == [
            (f"b2c:{identity_id(2)}", "INVALID_EMAIL_ADDRESS", "fields: Email", 1),
            (f"b2c:{identity_id(3)}", "STRING_TOO_LONG", "fields: LastName", 1)]
    text = audit_text(world.warehouse)
    assert "zoë" not in text and "Oberstaats" not in text


def test_the_sandbox_quotes_the_refused_value_as_salesforce_does(sandbox_factory, tmp_path):
    world = refused_world(sandbox_factory, tmp_path)
    sf = world.sandbox.client
    token = sf.post(world.salesforce.login_url + "/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": world.salesforce.client_id,
        "client_secret": world.salesforce.client_secret}).json()
    answer = sf.patch(f"{token['instance_url']}/services/data/v{world.salesforce.api_version}/composite/sobjects/"
                      "Contact/External_User_Id__c", headers={"Authorization": f"Bearer {token['access_token']}"},
                      json={"allOrNone": False, "records": [{"attributes": {"type": "Contact"},
                            "External_User_Id__c": "x-1", "LastName": "Lee", "Email": NON_ASCII_EMAIL}]})
    (error,) = answer.json()[0]["errors"]
    assert error["statusCode"] == "INVALID_EMAIL_ADDRESS" and NON_ASCII_EMAIL in error["message"]
