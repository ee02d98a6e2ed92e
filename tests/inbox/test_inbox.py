"""The durable inbox: idempotent, ordered, group-committed, and loud when it cannot store."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from inbox import Inbox, InboxEvent, InboxUnavailable
from tests.inbox.support import FlakyInbox


def event(n: int, source: str = "akamai") -> InboxEvent:
    return InboxEvent(id=f"{source}:{n}", source=source, kind="entityCreated", subject=f"uuid-{n}",
                      payload={"n": n})


def test_an_event_is_stored_once_and_a_replay_reports_false(inbox: Inbox) -> None:
    assert inbox.put(event(1)) is True
    assert inbox.put(event(1)) is False
    assert inbox.stats()["total"] == 1


def test_pending_lists_unprocessed_events_after_a_sequence_in_order(inbox: Inbox) -> None:
    for n in range(5):
        inbox.put(event(n))
    first = inbox.pending(after_seq=0, limit=3)
    assert [e.id for e in first] == ["akamai:0", "akamai:1", "akamai:2"]
    rest = inbox.pending(after_seq=first[-1].seq, limit=10)
    assert [e.id for e in rest] == ["akamai:3", "akamai:4"]
    assert rest[0].payload == {"n": 3} and rest[0].subject == "uuid-3"


def test_processed_events_leave_the_pending_list(inbox: Inbox) -> None:
    for n in range(3):
        inbox.put(event(n))
    assert inbox.mark_processed(["akamai:0", "akamai:2"]) == 2
    assert [e.id for e in inbox.pending()] == ["akamai:1"]
    assert inbox.stats() | {"last_seq": 0} == {"total": 3, "pending": 1, "processed": 2, "last_seq": 0,
                                               "run_failures": 0}


def test_stored_events_survive_a_new_process_opening_the_file(tmp_path) -> None:
    first = Inbox(tmp_path / "box.sqlite3")
    first.put(event(7))
    first.close()
    reopened = Inbox(tmp_path / "box.sqlite3")
    assert [e.id for e in reopened.pending()] == ["akamai:7"]
    reopened.close()


def test_the_file_is_in_wal_mode_with_full_synchronous_writes(inbox: Inbox) -> None:
    inbox.put(event(1))
    conn = sqlite3.connect(inbox.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_concurrent_writers_are_group_committed_and_all_stored(inbox: Inbox) -> None:
    n_threads, per_thread = 16, 150
    results: list[bool] = []
    lock = threading.Lock()

    def writer(t: int) -> None:
        for i in range(per_thread):
            stored = inbox.put(event(t * 1000 + i))
            with lock:
                results.append(stored)

    started = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert results.count(True) == n_threads * per_thread
    assert inbox.stats()["total"] == n_threads * per_thread
    # durable one-by-one commits would take several seconds; group commit is far faster
    assert n_threads * per_thread / elapsed > 500


def test_duplicates_inside_one_batch_are_stored_once(inbox: Inbox) -> None:
    futures = [inbox._submit(event(1)) for _ in range(20)]
    assert sorted(f.result(5) for f in futures) == [False] * 19 + [True]


def test_a_failing_write_raises_inbox_unavailable_and_a_retry_after_recovery_is_stored(tmp_path) -> None:
    box = FlakyInbox(tmp_path / "box.sqlite3")
    FlakyInbox.broken = True
    try:
        with pytest.raises(InboxUnavailable):
            box.put(event(1))
        assert box.stats()["total"] == 0
    finally:
        FlakyInbox.broken = False
    assert box.put(event(1)) is True
    assert box.stats()["total"] == 1
    box.close()


def test_a_closed_inbox_refuses_new_events(tmp_path) -> None:
    box = Inbox(tmp_path / "box.sqlite3")
    box.close()
    with pytest.raises(InboxUnavailable):
        box.put(event(1))


def test_a_run_failure_is_recorded_once(inbox: Inbox) -> None:
    assert inbox.record_run_failure("run-1", "full_sync", "ApiError") is True
    assert inbox.record_run_failure("run-1", "full_sync", "ApiError") is False
    inbox.mark_failure_alerted("run-1")
    [failure] = inbox.run_failures()
    assert failure["job"] == "full_sync" and failure["error_type"] == "ApiError" and failure["alerted"] == 1


def test_a_consumer_with_its_own_cursor_sees_events_the_sensors_already_handed_on(inbox: Inbox) -> None:
    for n in range(3):
        inbox.put(event(n))
    inbox.put(event(7, source="b2c"))
    inbox.mark_processed(["akamai:0", "akamai:1"])

    assert inbox.consumer_seq("reader") is None
    assert [e.id for e in inbox.after(0, sources=["akamai"])] == ["akamai:0", "akamai:1", "akamai:2"]
    inbox.set_consumer_seq("reader", 2)
    inbox.set_consumer_seq("reader", 3)
    assert inbox.consumer_seq("reader") == 3
    assert [e.id for e in inbox.after(inbox.consumer_seq("reader"))] == ["b2c:7"]
    assert inbox.last_seq() == 4


def test_audit_rows_wait_until_marked_imported(inbox: Inbox) -> None:
    row = {"system": "salesforce", "operation": "create_contact", "record_key": "akamai:u1", "payload_hash": "h",
           "outcome": "succeeded", "error_code": None, "remote_id": "003A"}
    assert inbox.record_audit([row, {**row, "record_key": "akamai:u2"}]) == 2
    assert inbox.record_audit([]) == 0

    waiting = inbox.unimported_audit()
    assert [(r["record_key"], r["remote_id"]) for r in waiting] == [("akamai:u1", "003A"), ("akamai:u2", "003A")]
    assert all(r["logged_at"] for r in waiting)
    inbox.mark_audit_imported([waiting[0]["id"]])
    assert [r["record_key"] for r in inbox.unimported_audit()] == ["akamai:u2"]


def test_a_caller_that_stopped_waiting_never_stops_the_writer(inbox: Inbox) -> None:
    import asyncio

    holder = sqlite3.connect(inbox.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a sensor or a second worker holds the write lock longer than callers wait

    async def impatient() -> None:
        with pytest.raises(InboxUnavailable):
            await inbox.aput(event(1), timeout_s=0.2)

    asyncio.run(impatient())
    later: list[bool] = []
    waiting = threading.Thread(target=lambda: later.append(inbox.put(event(2), timeout_s=10)))
    waiting.start()
    time.sleep(0.2)
    holder.execute("ROLLBACK")  # the lock is released
    waiting.join()
    assert later == [True], "an event queued behind the abandoned one is stored"
    assert inbox.put(event(3), timeout_s=5) is True
    assert inbox.put(event(1), timeout_s=5) is False  # the abandoned event was stored all the same
    holder.close()


def test_readiness_says_whether_the_inbox_can_store_now(inbox: Inbox) -> None:
    assert inbox.ready(timeout_s=2)
    holder = sqlite3.connect(inbox.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    assert not inbox.ready(timeout_s=0.3)
    holder.execute("ROLLBACK")
    assert inbox.ready(timeout_s=5)
    holder.close()
