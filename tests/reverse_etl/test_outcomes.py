"""What one run's pushes did, read back from the audit trail for the run log and the demo: counts per system and
operation, and each kind of refusal with the system's code, the fields it named and what it means in plain
words; keys only, never a value."""
from __future__ import annotations

from datetime import datetime

import pytest

from reverse_etl.outcomes import run_pushes
from reverse_etl.salesforce_writer import CREATE_CONTACT, SET_EXTERNAL_ID
from reverse_etl.state import (
    DEAD_LETTERED,
    FAILED,
    SCHEMA,
    SUCCEEDED,
    SUCCEEDED_WITHOUT_FIELDS,
    audit_message,
    ensure_schema,
)
from warehouse import Warehouse


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path):
    """An empty warehouse on either engine (one database per module on Postgres: each test drops its schema)."""
    if request.param == "duckdb":
        return Warehouse(tmp_path / "warehouse.duckdb")
    return Warehouse(tmp_path / "warehouse.duckdb", request.getfixturevalue("postgres_url"))


@pytest.fixture
def con(warehouse):
    with warehouse.connect() as con:
        ensure_schema(con)
        yield con
        con.execute(f"drop schema {SCHEMA} cascade")


def log(con, run_id, operation, key, outcome, code=None, message=None, system="salesforce"):
    con.execute(f"insert into {SCHEMA}.sync_log (run_id, system, operation, record_key, payload_hash, outcome, "
                "error_code, error_message, attempt, logged_at) values (?, ?, ?, ?, 'h', ?, ?, ?, 1, ?)",
                [run_id, system, operation, key, outcome, code, message, datetime(2026, 1, 1)])


def test_a_run_is_told_by_what_it_wrote_and_why_each_refused_record_failed(con):
    for n in range(3):
        log(con, "r1", CREATE_CONTACT, f"b2c:u{n}", SUCCEEDED)
    log(con, "r1", SET_EXTERNAL_ID, "003A", SUCCEEDED)
    log(con, "r1", CREATE_CONTACT, "b2c:u7", DEAD_LETTERED, "REQUIRED_FIELD_MISSING",
        audit_message("the contact was refused", ["LastName"]))
    log(con, "r1", CREATE_CONTACT, "b2c:u8", FAILED, "UNABLE_TO_LOCK_ROW")
    log(con, "r0", CREATE_CONTACT, "b2c:u9", DEAD_LETTERED, "DUPLICATES_DETECTED")  # another run's

    pushes = run_pushes(con, "r1")
    assert pushes.summary("salesforce") == "3 contacts created, 1 contact given the identity id, 2 failed"
    missing, locked = sorted(pushes.failures, key=lambda f: f.outcome)
    assert missing.code() == "REQUIRED_FIELD_MISSING [LastName]" and missing.sample_keys == ("b2c:u7",)
    assert missing.explain() == ("1 contact not created in Salesforce: Salesforce requires a last name and the "
                                 "identity has none; failed for good (reverse_etl.dead_letters)")
    assert locked.explain().endswith("another update held the record at the same time; retried next run")


def test_a_contact_created_without_a_refused_field_counts_as_created_and_says_which(con):
    log(con, "r1", CREATE_CONTACT, "b2c:u1", SUCCEEDED_WITHOUT_FIELDS, "INVALID_EMAIL_ADDRESS",
        audit_message("accepted without the fields it rejected", ["Email"]))
    pushes = run_pushes(con, "r1")
    assert pushes.summary("salesforce") == "1 contact created"
    [partial] = pushes.failures
    assert partial.explain() == ("1 contact created in Salesforce without an email address: Salesforce refused "
                                 "the email address as invalid; flagged in reverse_etl.sync_state")


def test_a_warehouse_without_pushes_has_nothing_to_tell(warehouse):
    with warehouse.connect() as con:
        assert run_pushes(con, "r1").summary("salesforce") == "nothing to write"


def test_the_systems_code_can_follow_the_systems_name(con):
    log(con, "r1", CREATE_CONTACT, "b2c:u7", DEAD_LETTERED, "REQUIRED_FIELD_MISSING",
        audit_message("the contact was refused", ["LastName"]))
    [missing] = run_pushes(con, "r1").failures
    assert missing.explain(with_code=True).startswith(
        "1 contact not created in Salesforce (REQUIRED_FIELD_MISSING [LastName]): Salesforce requires a last name")
