"""The generic diff / intent / outcome framework, driven by a scripted in-memory writer."""
from __future__ import annotations

import threading
from collections import Counter

import duckdb
import pytest

from clients.http import RequestLimitExceeded
from inbox import Inbox
from orchestration.defs.reverse_etl import FAST_LANE_RUN_ID, record_fast_lane_writes
from reverse_etl.runner import run_sync
from reverse_etl.state import Outcome, StateStore, SyncRecord, audit_message
from warehouse import DuckDBConnection, Warehouse


class ScriptedWriter:
    """Idempotent in-memory target: ``remote[key] = payload``; ``script(record, send_no)`` may return a failure."""

    system = "fake"

    def __init__(self, script=None, batch_size: int = 3, limit_after_calls: int | None = None) -> None:
        self.script = script or (lambda record, n: None)
        self.batch_size = batch_size
        self.limit_after_calls = limit_after_calls
        self.remote: dict[str, dict] = {}
        self.sends: Counter = Counter()
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        return self._calls

    def batches(self, records):
        return [list(records[i:i + self.batch_size]) for i in range(0, len(records), self.batch_size)]

    def send(self, batch):
        with self._lock:
            if self.limit_after_calls is not None and self._calls >= self.limit_after_calls:
                raise RequestLimitExceeded("limit", status=403, code="REQUEST_LIMIT_EXCEEDED")
            self._calls += 1
            outcomes = []
            for record in batch:
                self.sends[record.key] += 1
                failure = self.script(record, self.sends[record.key])
                if failure is None:
                    self.remote[record.key] = dict(record.payload)
                    outcomes.append(Outcome.success(record.key, f"remote-{record.key}"))
                else:
                    outcomes.append(failure)
            return outcomes


def records(n: int, version: int = 1) -> list[SyncRecord]:
    return [SyncRecord(key=f"id-{i}", operation="write", payload={"value": f"v{version}-{i}"}) for i in range(n)]


@pytest.fixture
def con():
    with DuckDBConnection(duckdb.connect()) as connection:
        yield connection


def rows(con, sql):
    return con.execute(sql)


def test_first_run_sends_every_record_and_records_it_as_accepted(con):
    writer = ScriptedWriter()
    result = run_sync(con, writer, records(7), "run-1", max_workers=2)
    assert (result.attempted, result.succeeded, result.failed, result.skipped) == (7, 7, 0, 0)
    assert result.api_calls == 3  # batches of 3
    assert len(writer.remote) == 7
    assert rows(con, "select count(*) from reverse_etl.sync_state where system = 'fake'") == [(7,)]
    assert rows(con, "select count(*) from reverse_etl.pending") == [(0,)]


def test_unchanged_records_are_skipped_on_the_next_run(con):
    run_sync(con, ScriptedWriter(), records(5), "run-1")
    writer = ScriptedWriter()
    result = run_sync(con, writer, records(5), "run-2")
    assert (result.attempted, result.skipped, writer.api_calls) == (0, 5, 0)


def test_only_records_whose_payload_changed_are_sent_again(con):
    run_sync(con, ScriptedWriter(), records(5), "run-1")
    changed = records(5)
    changed[2] = SyncRecord(key="id-2", operation="write", payload={"value": "corrected"})
    writer = ScriptedWriter()
    result = run_sync(con, writer, changed, "run-2")
    assert (result.attempted, result.skipped) == (1, 4)
    assert writer.remote == {"id-2": {"value": "corrected"}}


def test_transient_failures_stay_pending_and_succeed_on_a_later_run(con):
    flaky = {"id-1", "id-4"}
    failing = ScriptedWriter(lambda r, n: Outcome.failure(r.key, "UNABLE_TO_LOCK_ROW", "busy") if r.key in flaky
                             else None)
    first = run_sync(con, failing, records(6), "run-1")
    assert (first.succeeded, first.failed, first.dead_lettered, first.pending_after) == (4, 2, 0, 2)
    assert rows(con, "select record_key, attempts, last_error_code from reverse_etl.pending order by 1") == [
        ("id-1", 1, "UNABLE_TO_LOCK_ROW"), ("id-4", 1, "UNABLE_TO_LOCK_ROW")]

    healthy = ScriptedWriter()
    second = run_sync(con, healthy, records(6), "run-2")
    assert (second.attempted, second.succeeded, second.skipped, second.pending_after) == (2, 2, 4, 0)
    assert set(healthy.remote) == flaky


def test_transient_failures_are_never_dead_lettered(con):
    writer = ScriptedWriter(lambda r, n: Outcome.failure(r.key, "SERVER_UNAVAILABLE", "down"))
    for run in range(5):
        result = run_sync(con, writer, records(2), f"run-{run}", max_attempts=3)
    assert (result.attempted, result.failed, result.dead_letters_after) == (2, 2, 0)
    assert rows(con, "select max(attempts) from reverse_etl.pending") == [(5,)]


def test_permanent_failure_is_dead_lettered_after_max_attempts_and_then_no_longer_sent(con):
    def reject_id_0(record, n):
        if record.key == "id-0":
            return Outcome.failure(record.key, "DUPLICATES_DETECTED", permanent=True)
        return None

    writer = ScriptedWriter(reject_id_0)
    outcomes = [run_sync(con, writer, records(3), f"run-{i}", max_attempts=3) for i in range(4)]
    assert [r.dead_lettered for r in outcomes] == [0, 0, 1, 0]
    assert outcomes[3].attempted == 0 and outcomes[3].parked == 1
    assert writer.sends["id-0"] == 3
    assert rows(con, "select record_key, error_code, attempts from reverse_etl.dead_letters") == [
        ("id-0", "DUPLICATES_DETECTED", 3)]
    assert rows(con, "select count(*) from reverse_etl.pending") == [(0,)]


def test_dead_letter_is_retried_and_cleared_once_its_payload_is_corrected(con):
    writer = ScriptedWriter(lambda r, n: Outcome.failure(r.key, "STRING_TOO_LONG", "too long", permanent=True)
                            if r.payload["value"] == "bad" else None)
    bad = [SyncRecord(key="id-0", operation="write", payload={"value": "bad"})]
    run_sync(con, writer, bad, "run-1", max_attempts=1)
    assert rows(con, "select count(*) from reverse_etl.dead_letters") == [(1,)]
    fixed = [SyncRecord(key="id-0", operation="write", payload={"value": "good"})]
    result = run_sync(con, writer, fixed, "run-2", max_attempts=1)
    assert (result.succeeded, result.dead_letters_after) == (1, 0)


def test_a_record_that_is_gone_is_dead_lettered_at_once(con):
    writer = ScriptedWriter(lambda r, n: Outcome.failure(r.key, "IDENTITY_GONE", "gone", give_up=True))
    result = run_sync(con, writer, records(1), "run-1", max_attempts=3)
    assert (result.dead_lettered, result.failed) == (1, 0)


def test_request_limit_stops_the_run_cleanly_and_the_next_run_resumes(con):
    limited = ScriptedWriter(limit_after_calls=2)
    first = run_sync(con, limited, records(12), "run-1", max_workers=1)
    assert first.limit_reached
    assert (first.succeeded, first.failed, first.dead_lettered) == (6, 0, 0)
    assert first.attempted == 6
    # the unsent records of the batch that hit the limit do not count an attempt
    assert rows(con, "select max(attempts) from reverse_etl.pending") in ([(0,)], [(None,)])

    resumed = ScriptedWriter()
    second = run_sync(con, resumed, records(12), "run-2")
    assert not second.limit_reached
    assert (second.attempted, second.succeeded, second.skipped) == (6, 6, 6)
    assert set(limited.remote) | set(resumed.remote) == {f"id-{i}" for i in range(12)}


def test_crash_between_request_and_bookkeeping_resends_without_duplicates(con, monkeypatch):
    writer = ScriptedWriter()
    original = StateStore.record_outcomes

    def crash(self, pairs):
        raise KeyboardInterrupt("killed after the requests went out")

    monkeypatch.setattr(StateStore, "record_outcomes", crash)
    with pytest.raises(KeyboardInterrupt):
        run_sync(con, writer, records(4), "run-1", max_workers=1)
    # intent survived: every record sent is still pending
    assert rows(con, "select count(*) from reverse_etl.pending") == [(4,)]
    monkeypatch.setattr(StateStore, "record_outcomes", original)

    result = run_sync(con, writer, records(4), "run-2")
    assert (result.attempted, result.succeeded, result.pending_after) == (4, 4, 0)
    assert len(writer.remote) == 4  # the idempotent target holds each record once
    assert rows(con, "select max(attempt) from reverse_etl.sync_log where run_id = 'run-2'") == [(2,)]


def test_a_writer_error_keeps_the_batch_pending_instead_of_losing_it(con):
    class Broken(ScriptedWriter):
        def send(self, batch):
            raise RuntimeError("unexpected answer")

    result = run_sync(con, Broken(), records(3), "run-1")
    assert (result.failed, result.pending_after) == (3, 3)
    assert rows(con, "select distinct error_code from reverse_etl.sync_log") == [("RuntimeError",)]


def test_dry_run_sends_nothing_and_leaves_the_bookkeeping_untouched(con):
    writer = ScriptedWriter()
    result = run_sync(con, writer, records(25), "run-1", dry_run=True)
    assert (result.would_send, writer.api_calls, len(writer.remote)) == (25, 0, 0)
    assert len(result.sample_keys) == 20 and result.sample_keys[0] == "id-0"
    assert rows(con, "select count(*) from reverse_etl.pending") == [(0,)]
    assert rows(con, "select count(*) from reverse_etl.sync_log") == [(0,)]


def test_invalid_rows_are_dead_lettered_with_a_reason_once_and_the_rest_flows_on(con):
    bad = SyncRecord(key="c-1:Unknown", operation="write", payload={"Unknown": "x"})
    writer = ScriptedWriter()
    first = run_sync(con, writer, records(2), "run-1", invalid=[(bad, "UNMAPPED_ATTRIBUTE", "not mapped")])
    assert (first.succeeded, first.invalid, first.dead_lettered) == (2, 1, 1)
    second = run_sync(con, writer, records(2), "run-2", invalid=[(bad, "UNMAPPED_ATTRIBUTE", "not mapped")])
    assert (second.invalid, second.dead_lettered, second.parked) == (0, 0, 0)
    assert rows(con, "select record_key, error_code from reverse_etl.dead_letters") == [
        ("c-1:Unknown", "UNMAPPED_ATTRIBUTE")]


def test_sync_log_has_one_row_per_record_per_attempt_and_no_payload_columns(con):
    writer = ScriptedWriter(lambda r, n: Outcome.failure(r.key, "UNABLE_TO_LOCK_ROW", "busy")
                            if r.key == "id-0" and n == 1 else None)
    run_sync(con, writer, records(3), "run-1")
    run_sync(con, writer, records(3), "run-2")
    assert rows(con, """select run_id, record_key, attempt, outcome from reverse_etl.sync_log
                        order by run_id, record_key""") == [
        ("run-1", "id-0", 1, "failed"), ("run-1", "id-1", 1, "succeeded"), ("run-1", "id-2", 1, "succeeded"),
        ("run-2", "id-0", 2, "succeeded")]
    columns = [c[0] for c in con.execute("describe reverse_etl.sync_log")]
    assert columns == ["run_id", "system", "operation", "record_key", "payload_hash", "outcome", "error_code",
                       "error_message", "attempt", "logged_at", "actor", "rule"]
    logged = " ".join(str(v) for row in rows(con, "select * from reverse_etl.sync_log") for v in row)
    assert "v1-" not in logged  # payload values never reach the log


def test_the_audit_keeps_idlink_s_explanation_and_the_refused_field_names_only():
    assert audit_message("the request was refused as a whole") == "the request was refused as a whole"
    assert audit_message(None, ("Email", "Phone")) == "fields: Email, Phone"
    assert audit_message(None) is None
    refused = Outcome.failure("k", "INVALID_EMAIL_ADDRESS", fields=("Email",), give_up=True)
    assert (refused.audit_text, refused.permanent) == ("fields: Email", True)


def test_payload_hash_ignores_key_order_but_not_values_or_operation():
    a = SyncRecord("k", "create", {"a": 1, "b": 2})
    assert a.payload_hash == SyncRecord("k", "create", {"b": 2, "a": 1}).payload_hash
    assert a.payload_hash != SyncRecord("k", "create", {"a": 1, "b": 3}).payload_hash
    assert a.payload_hash != SyncRecord("k", "update", {"a": 1, "b": 2}).payload_hash


def test_pending_records_that_left_the_marts_are_dropped_instead_of_lingering(con):
    run_sync(con, ScriptedWriter(lambda r, n: Outcome.failure(r.key, "UNABLE_TO_LOCK_ROW", "busy")), records(3), "r1")
    assert rows(con, "select count(*) from reverse_etl.pending") == [(3,)]
    result = run_sync(con, ScriptedWriter(), records(1), "r2")  # id-1 and id-2 were linked meanwhile
    assert (result.succeeded, result.pending_after) == (1, 0)


def test_writes_made_outside_a_run_join_the_sync_log_once_with_their_own_time(con, tmp_path):
    inbox_path = tmp_path / "inbox.sqlite3"
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    assert record_fast_lane_writes(warehouse, inbox_path) == 0  # no inbox yet: nothing to copy, and no file created
    assert not inbox_path.exists()
    inbox = Inbox(inbox_path)
    inbox.record_audit([{"system": "salesforce", "operation": "create_contact", "record_key": "akamai:u1",
                         "payload_hash": "h1", "outcome": "succeeded", "remote_id": "003A"},
                        {"system": "akamai", "operation": "set_attribute", "record_key": "u1:crmContactId",
                         "payload_hash": "h2", "outcome": "failed", "error_code": "HTTP_503"}])
    logged_at = inbox.unimported_audit()[0]["logged_at"]

    assert record_fast_lane_writes(warehouse, inbox_path) == 2
    assert record_fast_lane_writes(warehouse, inbox_path) == 0  # copied once
    with warehouse.connect(read_only=True) as db:
        rows = db.execute("SELECT run_id, system, operation, record_key, outcome, error_code, logged_at "
                          "FROM reverse_etl.sync_log ORDER BY system")
    assert [r[:6] for r in rows] == [
        (FAST_LANE_RUN_ID, "akamai", "set_attribute", "u1:crmContactId", "failed", "HTTP_503"),
        (FAST_LANE_RUN_ID, "salesforce", "create_contact", "akamai:u1", "succeeded", None)]
    assert rows[1][6].isoformat()[:19] == logged_at[:19]
    inbox.close()


def test_copying_external_writes_again_after_a_crash_adds_no_duplicates(con):
    from reverse_etl.state import append_external_log

    row = {"system": "salesforce", "operation": "create_contact", "record_key": "akamai:u1", "payload_hash": "h",
           "outcome": "succeeded", "logged_at": "2026-11-23T08:00:00.000001+00:00"}
    assert append_external_log(con, "fast_lane", [row]) == 1
    append_external_log(con, "fast_lane", [row])
    assert con.scalar("SELECT count(*) FROM reverse_etl.sync_log") == 1
