"""Durable event inbox: a SQLite file (WAL, synchronous=FULL) that the gateway writes and the sensors drain.

It lives apart from the DuckDB warehouse on purpose: DuckDB admits one writing process, and the gateway
must keep accepting events while a Dagster run holds the warehouse.

Writes go through one writer thread that commits whatever has queued up in a single transaction
(group commit): each caller still waits until its event is on disk, but one fsync covers many events.
Events are idempotent by ``id`` (the SET's ``jti`` or the connector's request id).

A caller may stop waiting (its own deadline is shorter than SQLite's wait for a lock another process holds):
its event is still stored, and nothing a caller does can stop the writer. ``ready`` says whether the inbox can
store an event now, by taking the write lock through the same writer.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, InvalidStateError
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    source       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT,
    payload      TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    processed_at TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE processed_at IS NULL;
-- how far each consumer that reads every event (not just unprocessed ones) has got
CREATE TABLE IF NOT EXISTS consumers (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
-- writes made outside Dagster runs (the fast lane), copied into the warehouse's sync_log by the next run
CREATE TABLE IF NOT EXISTS audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    logged_at    TEXT NOT NULL,
    system       TEXT NOT NULL,
    operation    TEXT NOT NULL,
    record_key   TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    error_code   TEXT,
    remote_id    TEXT,
    imported_at  TEXT,
    actor        TEXT,
    rule         TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_unimported ON audit_log (id) WHERE imported_at IS NULL;
-- people to erase (python -m privacy erase, or a provider deletion flagged for erasure): keys only; the next
-- run applies each request and marks it applied
CREATE TABLE IF NOT EXISTS erasure_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    provider     TEXT NOT NULL,
    identity_id  TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    applied_at   TEXT,
    UNIQUE (provider, identity_id)
);
CREATE TABLE IF NOT EXISTS run_failures (
    run_id     TEXT PRIMARY KEY,
    job        TEXT NOT NULL,
    error_type TEXT NOT NULL,
    failed_at  TEXT NOT NULL,
    alerted    INTEGER NOT NULL DEFAULT 0
);
"""


class InboxUnavailable(Exception):
    """The inbox could not store an event durably; the sender must retry later."""


@dataclass(frozen=True)
class InboxEvent:
    """One event. ``payload`` holds identifiers and outcomes only, never personal data."""

    id: str
    source: str  # "akamai" | "b2c"
    kind: str  # e.g. "entityCreated", "entityDeleted", "signUp"
    subject: str | None  # identity id (Akamai uuid / B2C objectId) when known
    payload: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    received_at: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


_STOP = object()
_PROBE = None  # a queued "event" that only takes the write lock: readiness


def _settle(future: Future, result: Any = None, error: BaseException | None = None) -> None:
    """Complete a caller's future unless the caller gave up on it (cancelled): never raises."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass  # the caller stopped waiting; its event is stored all the same


@contextmanager
def _immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE (the write lock up front, so concurrent writers queue instead of failing mid-way),
    COMMIT on success, ROLLBACK on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class Inbox:
    """Durable, idempotent event store. Safe to share between threads; several processes may open one file."""

    def __init__(self, path: str | os.PathLike[str], *, max_batch: int = 512) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._closed = False
        self._local = threading.local()
        conn = _connect(self.path)
        try:
            conn.executescript(_SCHEMA)
            # files made before the audit log said who wrote and why
            present = {row[1] for row in conn.execute("PRAGMA table_info(audit_log)").fetchall()}
            for column in ("actor", "rule"):
                if column not in present:
                    conn.execute(f"ALTER TABLE audit_log ADD COLUMN {column} TEXT")
        finally:
            conn.close()

    # ---- writing -------------------------------------------------------------------------------------

    def put(self, event: InboxEvent, timeout_s: float = 10.0) -> bool:
        """Store ``event`` durably; False when an event with the same id was stored before.

        Raises InboxUnavailable when the write fails or does not finish within ``timeout_s``.
        """
        future = self._submit(event)
        try:
            return future.result(timeout=timeout_s)
        except InboxUnavailable:
            raise
        except Exception as exc:  # timeout or a failure raised in the writer
            raise InboxUnavailable(type(exc).__name__) from exc

    async def aput(self, event: InboxEvent, timeout_s: float = 10.0) -> bool:
        """``put`` for the event loop: waits without blocking other requests."""
        future = self._submit(event)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except InboxUnavailable:
            raise
        except Exception as exc:
            raise InboxUnavailable(type(exc).__name__) from exc

    def ready(self, timeout_s: float = 1.0) -> bool:
        """True when the inbox can store an event now: the writer takes the write lock within ``timeout_s``."""
        try:
            future = self._submit(_PROBE)
            return bool(future.result(timeout=timeout_s))
        except Exception:  # noqa: BLE001 - closed, timed out or failed: not ready
            return False

    def _submit(self, event: InboxEvent | None) -> Future[bool]:
        if self._closed:
            raise InboxUnavailable("inbox closed")
        self._ensure_writer()
        future: Future[bool] = Future()
        self._queue.put((event, future))
        return future

    def _ensure_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="inbox-writer", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            stop_after = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop_after = True
                    break
                batch.append(nxt)
            try:
                if conn is None:
                    conn = _connect(self.path)
                results = self._write_batch(conn, [event for event, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - every waiting caller must hear of it; the writer lives on
                log.error("inbox write failed for %d events: %s", len(batch), type(exc).__name__)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None  # reopen next time: the file may come back
                for _, future in batch:
                    _settle(future, error=InboxUnavailable(type(exc).__name__))
            else:
                for (_, future), stored in zip(batch, results):
                    _settle(future, stored)
            if stop_after:
                break
        if conn is not None:
            conn.close()

    @staticmethod
    def _write_batch(conn: sqlite3.Connection, events: list[InboxEvent | None]) -> list[bool]:
        received_at = _now()
        results: list[bool] = []
        seen: set[str] = set()
        with _immediate_transaction(conn):
            for event in events:
                if event is _PROBE:  # the write lock is held: the inbox can store
                    results.append(True)
                    continue
                if event.id in seen:  # a duplicate within the same batch
                    results.append(False)
                    continue
                seen.add(event.id)
                cur = conn.execute(
                    "INSERT OR IGNORE INTO events (event_id, source, kind, subject, payload, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (event.id, event.source, event.kind, event.subject,
                     orjson.dumps(event.payload).decode(), received_at),
                )
                results.append(cur.rowcount == 1)
        return results

    # ---- reading (sensors) ---------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
        return conn

    def pending(self, after_seq: int = 0, limit: int = 500) -> list[InboxEvent]:
        """Unprocessed events with a sequence number above ``after_seq``, oldest first."""
        rows = self._reader().execute(
            "SELECT seq, event_id, source, kind, subject, payload, received_at FROM events"
            " WHERE processed_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [
            InboxEvent(id=r[1], source=r[2], kind=r[3], subject=r[4], payload=orjson.loads(r[5]),
                       seq=r[0], received_at=r[6])
            for r in rows
        ]

    def after(self, seq: int, limit: int = 500, sources: Iterable[str] | None = None) -> list[InboxEvent]:
        """Every event (handed on or not) with a sequence number above ``seq``, oldest first: for consumers
        that keep their own cursor and must not depend on what the sensors have marked."""
        sql = "SELECT seq, event_id, source, kind, subject, payload, received_at FROM events WHERE seq > ?"
        params: list[Any] = [seq]
        if sources is not None:
            wanted = list(sources)
            sql += f" AND source IN ({','.join('?' * len(wanted))})"
            params.extend(wanted)
        rows = self._reader().execute(sql + " ORDER BY seq LIMIT ?", (*params, limit)).fetchall()
        return [
            InboxEvent(id=r[1], source=r[2], kind=r[3], subject=r[4], payload=orjson.loads(r[5]),
                       seq=r[0], received_at=r[6])
            for r in rows
        ]

    def consumer_seq(self, name: str) -> int | None:
        """The consumer's cursor; None before its first commit."""
        row = self._reader().execute("SELECT seq FROM consumers WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_consumer_seq(self, name: str, seq: int) -> None:
        self._reader().execute(
            "INSERT INTO consumers (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
            (name, seq))

    def last_seq(self) -> int:
        return self._reader().execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def mark_processed(self, ids: Iterable[str]) -> int:
        """Mark events as handed to a run; returns how many changed state."""
        ids = list(ids)
        if not ids:
            return 0
        conn = self._reader()
        processed_at = _now()
        changed = 0
        with _immediate_transaction(conn):
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                changed += conn.execute(
                    f"UPDATE events SET processed_at = ? WHERE processed_at IS NULL AND event_id IN ({marks})",
                    (processed_at, *chunk),
                ).rowcount
        return changed

    def stats(self) -> dict[str, Any]:
        total, pending, last_seq = self._reader().execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE processed_at IS NULL), COALESCE(MAX(seq), 0) FROM events"
        ).fetchone()
        failures = self._reader().execute("SELECT COUNT(*) FROM run_failures").fetchone()[0]
        return {"total": total, "pending": pending, "processed": total - pending, "last_seq": last_seq,
                "run_failures": failures}

    # ---- audit of writes made outside runs ------------------------------------------------------------

    AUDIT_COLUMNS = ("system", "operation", "record_key", "payload_hash", "outcome", "error_code", "remote_id",
                     "actor", "rule")

    def record_audit(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append audit rows (identifiers, hashes and codes only); returns how many were stored."""
        values = [(_now(), *(row.get(column) for column in self.AUDIT_COLUMNS)) for row in rows]
        if not values:
            return 0
        with _immediate_transaction(self._reader()) as conn:
            conn.executemany(
                f"INSERT INTO audit_log (logged_at, {', '.join(self.AUDIT_COLUMNS)})"
                f" VALUES (?, {', '.join('?' * len(self.AUDIT_COLUMNS))})",
                values)
        return len(values)

    def unimported_audit(self, limit: int = 10_000) -> list[dict[str, Any]]:
        rows = self._reader().execute(
            f"SELECT id, logged_at, {', '.join(self.AUDIT_COLUMNS)} FROM audit_log WHERE imported_at IS NULL"
            " ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [dict(zip(("id", "logged_at", *self.AUDIT_COLUMNS), row)) for row in rows]

    def mark_audit_imported(self, ids: Iterable[int]) -> None:
        with _immediate_transaction(self._reader()) as conn:
            conn.executemany("UPDATE audit_log SET imported_at = ? WHERE id = ?", [(_now(), i) for i in ids])

    # ---- erasure requests and forgetting a person ----------------------------------------------------

    def request_erasure(self, provider: str, identity_id: str, requested_by: str) -> bool:
        """Record that a person is to be erased at the next run; False when already requested."""
        with _immediate_transaction(self._reader()) as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO erasure_requests (provider, identity_id, requested_by, requested_at)"
                " VALUES (?, ?, ?, ?)", (provider, identity_id, requested_by, _now()))
        return cur.rowcount == 1

    def pending_erasures(self) -> list[dict[str, Any]]:
        rows = self._reader().execute(
            "SELECT id, provider, identity_id, requested_by, requested_at FROM erasure_requests"
            " WHERE applied_at IS NULL ORDER BY id").fetchall()
        return [dict(zip(("id", "provider", "identity_id", "requested_by", "requested_at"), r)) for r in rows]

    def forget(self, subjects: Iterable[str], request_ids: Iterable[int] = ()) -> int:
        """Delete every event about ``subjects`` (identity ids) and mark the erasure requests applied, with the
        freed pages overwritten and the write-ahead log emptied, so nothing of them stays in the file."""
        subjects, request_ids = list(subjects), list(request_ids)
        conn = self._reader()
        conn.execute("PRAGMA secure_delete = ON")
        deleted = 0
        with _immediate_transaction(conn):
            for start in range(0, len(subjects), 500):
                chunk = subjects[start:start + 500]
                deleted += conn.execute(f"DELETE FROM events WHERE subject IN ({','.join('?' * len(chunk))})",
                                        chunk).rowcount
            conn.executemany("UPDATE erasure_requests SET applied_at = ? WHERE id = ?",
                             [(_now(), i) for i in request_ids])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    def purge_before(self, cutoff: str) -> int:
        """Retention: events handed on and received before ``cutoff`` (ISO 8601, UTC), imported audit rows and
        recorded run failures of the same age go, overwritten on disk; returns how many events went."""
        conn = self._reader()
        conn.execute("PRAGMA secure_delete = ON")
        with _immediate_transaction(conn):
            events = conn.execute("DELETE FROM events WHERE processed_at IS NOT NULL AND received_at < ?",
                                  (cutoff,)).rowcount
            conn.execute("DELETE FROM audit_log WHERE imported_at IS NOT NULL AND logged_at < ?", (cutoff,))
            conn.execute("DELETE FROM run_failures WHERE failed_at < ?", (cutoff,))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return events

    # ---- run failures (written by the run-failure sensor) --------------------------------------------

    def record_run_failure(self, run_id: str, job: str, error_type: str) -> bool:
        """Remember a failed run once; False when it was recorded already."""
        cur = self._reader().execute(
            "INSERT OR IGNORE INTO run_failures (run_id, job, error_type, failed_at) VALUES (?, ?, ?, ?)",
            (run_id, job, error_type, _now()),
        )
        return cur.rowcount == 1

    def mark_failure_alerted(self, run_id: str) -> None:
        self._reader().execute("UPDATE run_failures SET alerted = 1 WHERE run_id = ?", (run_id,))

    def run_failures(self) -> list[dict[str, Any]]:
        rows = self._reader().execute(
            "SELECT run_id, job, error_type, failed_at, alerted FROM run_failures ORDER BY failed_at"
        ).fetchall()
        return [dict(zip(("run_id", "job", "error_type", "failed_at", "alerted"), r)) for r in rows]

    # ---- lifecycle -----------------------------------------------------------------------------------

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush queued writes, then stop the writer."""
        self._closed = True
        writer = self._writer
        if writer is not None and writer.is_alive():
            self._queue.put(_STOP)
            deadline = time.monotonic() + timeout_s
            writer.join(max(0.0, deadline - time.monotonic()))
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
