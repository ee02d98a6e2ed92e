"""One audit trail: every write to an outside system - by a run, the fast lane, the sign-up connector or a
command - lands in reverse_etl.sync_log with who (actor, run_id), why (rule), the outcome and the time, keys only."""
from __future__ import annotations

import duckdb
import pytest

from gateway.crm_contacts import SalesforceContactDirectory, SignUpIdentity
from reverse_etl import mapping_for
from reverse_etl.state import (
    ACTOR_COMMAND,
    SUCCEEDED,
    Outcome,
    StateStore,
    SyncRecord,
    append_external_log,
    external_write,
)
from settings import load_settings
from warehouse import DuckDBConnection


@pytest.fixture
def con():
    with DuckDBConnection(duckdb.connect()) as connection:
        yield connection


def _log(con) -> list[tuple]:
    return con.execute("select actor, run_id, system, operation, record_key, rule, outcome from reverse_etl.sync_log "
                       "order by actor, record_key")


def test_a_run_logs_each_write_with_its_rule(con):
    store = StateStore(con, "salesforce", "run-1")
    record = SyncRecord(key="003A:External_User_Id__c", operation="set_external_id",
                        payload={"External_User_Id__c": "u1"}, target="003A", rule="link:email")
    store.record_intent([record])
    store.record_outcomes([(record, Outcome.success(record.key, "003A"), 1)])
    assert _log(con) == [("run", "run-1", "salesforce", "set_external_id", "003A:External_User_Id__c",
                          "link:email", "succeeded")]


def test_a_command_is_its_own_actor(con):
    store = StateStore(con, "b2c", "cli-7", actor=ACTOR_COMMAND)
    record = SyncRecord(key="u1:CrmContactId", operation="set_attribute", payload={"x": "003A"}, rule="link:email")
    store.record_intent([record])
    store.record_outcomes([(record, Outcome.success(record.key), 1)])
    assert _log(con)[0][:2] == ("command", "cli-7")


def test_writes_outside_runs_keep_their_actor_and_rule_and_are_copied_once(con):
    rows = [
        {**external_write("salesforce", "create_contact", "akamai:u1", {"Email": "x"}, SUCCEEDED,
                          rule="consented_without_contact"), "logged_at": "2026-01-01T10:00:00+00:00"},
        {**external_write("salesforce", "create_contact", "b2c:u2", {"Email": "y"}, SUCCEEDED, actor="connector",
                          rule="signup_with_consent"), "logged_at": "2026-01-01T10:00:01+00:00"},
    ]
    assert "Email" not in str(rows[0].values()) and rows[0]["payload_hash"], "keys and a hash, never the payload"
    append_external_log(con, "fast_lane", rows)
    append_external_log(con, "fast_lane", rows)  # a copy repeated after a crash
    assert _log(con) == [
        ("connector", "connector", "salesforce", "create_contact", "b2c:u2", "signup_with_consent", "succeeded"),
        ("fast_lane", "fast_lane", "salesforce", "create_contact", "akamai:u1", "consented_without_contact",
         "succeeded"),
    ]


OBJECT_ID = "6f1c2b9e-3d4a-4f5b-8c7d-9e0f1a2b3c4d"


def test_a_contact_the_sign_up_connector_creates_is_audited(inbox, sandbox):
    settings = load_settings(sandbox.env)
    directory = SalesforceContactDirectory.within_budget(settings.salesforce, 10.0, mapping_for(settings.field_mapping),
                                                         b"connector-secret", audit=inbox.record_audit)
    contact_id = directory.find_or_create(SignUpIdentity(email="new@example.org", given_name="New",
                                                         surname="Person", object_id=OBJECT_ID))
    assert contact_id
    [row] = inbox.unimported_audit()
    assert (row["actor"], row["operation"], row["record_key"], row["outcome"], row["remote_id"], row["rule"]) == (
        "connector", "create_contact", f"b2c:{OBJECT_ID}", "succeeded", contact_id, "signup_with_consent",
    )
    assert "new@example.org" not in str(row)
