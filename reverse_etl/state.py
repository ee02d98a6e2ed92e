"""Bookkeeping of the reverse ETL in schema ``reverse_etl`` of the warehouse, shared by every system's writer.

Tables (keys, hashes and error codes only; payloads never leave the marts):

* ``sync_state``   last payload accepted by the remote system per (system, record_key) -- the diff baseline --
                   and the fields it was accepted without (``dropped_fields``, see the validation policy);
* ``pending``      intent written before a request, removed when the outcome is known; survives crashes;
* ``dead_letters`` records that failed permanently and are no longer retried while their payload is unchanged;
* ``sync_log``     one row per record per attempt: the one audit trail of every write idlink makes to an outside
                   system, whoever made it (``actor``: a Dagster run, the fast lane, the sign-up connector, a
                   command; ``run_id`` names which) and why (``rule``: the match rule, consent purpose or
                   erasure policy behind it).

Error messages stored there are idlink's own words plus the names of the fields the remote system rejected:
never the remote system's message, which may quote the rejected value (Salesforce does for
``STRING_TOO_LONG`` and ``INVALID_EMAIL_ADDRESS``).
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import pyarrow as pa

from warehouse import Connection

SCHEMA = "reverse_etl"
DEFAULT_MAX_ATTEMPTS = 3
_MESSAGE_LIMIT = 500

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.sync_state (
    system VARCHAR NOT NULL, record_key VARCHAR NOT NULL, payload_hash VARCHAR NOT NULL,
    remote_id VARCHAR, accepted_at TIMESTAMP NOT NULL, PRIMARY KEY (system, record_key));
CREATE TABLE IF NOT EXISTS {SCHEMA}.pending (
    system VARCHAR NOT NULL, record_key VARCHAR NOT NULL, payload_hash VARCHAR NOT NULL,
    attempts INTEGER NOT NULL, next_attempt_at TIMESTAMP NOT NULL, last_error_code VARCHAR,
    PRIMARY KEY (system, record_key));
CREATE TABLE IF NOT EXISTS {SCHEMA}.dead_letters (
    system VARCHAR NOT NULL, record_key VARCHAR NOT NULL, payload_hash VARCHAR NOT NULL,
    error_code VARCHAR, error_message VARCHAR, attempts INTEGER NOT NULL,
    first_failed_at TIMESTAMP NOT NULL, last_failed_at TIMESTAMP NOT NULL, PRIMARY KEY (system, record_key));
CREATE TABLE IF NOT EXISTS {SCHEMA}.sync_log (
    run_id VARCHAR NOT NULL, system VARCHAR NOT NULL, operation VARCHAR NOT NULL, record_key VARCHAR NOT NULL,
    payload_hash VARCHAR NOT NULL, outcome VARCHAR NOT NULL, error_code VARCHAR, error_message VARCHAR,
    attempt INTEGER NOT NULL, logged_at TIMESTAMP NOT NULL);
ALTER TABLE {SCHEMA}.sync_state ADD COLUMN IF NOT EXISTS dropped_fields VARCHAR;
ALTER TABLE {SCHEMA}.sync_log ADD COLUMN IF NOT EXISTS actor VARCHAR;
ALTER TABLE {SCHEMA}.sync_log ADD COLUMN IF NOT EXISTS rule VARCHAR;
"""

# sync_log.actor values: who made the write
ACTOR_RUN = "run"  # a Dagster run (run_id = its id)
ACTOR_FAST_LANE = "fast_lane"  # the near-real-time fast lane (copied from the inbox's audit log)
ACTOR_CONNECTOR = "connector"  # the B2C sign-up API connector (likewise)
ACTOR_COMMAND = "command"  # an operator's command (python -m reverse_etl ...)
_SYNC_LOG_COLUMNS = ("run_id, system, operation, record_key, payload_hash, outcome, error_code, error_message, "
                     "attempt, logged_at, actor, rule")

# sync_log.outcome values
SUCCEEDED = "succeeded"
SUCCEEDED_WITHOUT_FIELDS = "succeeded_without_fields"  # accepted once the fields it rejected were left out
FAILED = "failed"  # stays pending, retried next run
DEAD_LETTERED = "dead_lettered"


def ensure_schema(con: Connection) -> None:
    """Create the bookkeeping tables if they do not exist (safe to call on every run)."""
    con.execute(_DDL)


def payload_hash(operation: str, payload: Mapping[str, Any]) -> str:
    """Stable hash of what would be sent: key order and formatting do not matter, values and operation do."""
    body = orjson.dumps([operation, payload], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(body).hexdigest()


_FIELDS_PREFIX = "fields: "


def audit_message(message: str | None, fields: Sequence[str] = ()) -> str | None:
    """What the audit tables keep of a failure: idlink's own explanation and the rejected fields' names."""
    parts = [message] if message else []
    if fields:
        parts.append(_FIELDS_PREFIX + ", ".join(fields))
    return "; ".join(parts)[:_MESSAGE_LIMIT] or None


def audited_fields(message: str | None) -> tuple[str, ...]:
    """The rejected fields' names an ``audit_message`` holds (none when it names none)."""
    for part in (message or "").split("; "):
        if part.startswith(_FIELDS_PREFIX):
            return tuple(name.strip() for name in part[len(_FIELDS_PREFIX):].split(",") if name.strip())
    return ()


@dataclass(frozen=True)
class SyncRecord:
    """One write to a remote system. ``key`` identifies it in the bookkeeping (ids only, never PII);
    ``target`` is the remote record written on when it is addressed by its own id (e.g. a Contact Id)."""

    key: str
    operation: str
    payload: Mapping[str, Any]
    target: str | None = None
    rule: str | None = field(default=None, compare=False)  # why it is written, for the audit trail
    payload_hash: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload_hash", payload_hash(self.operation, self.payload))


@dataclass(frozen=True)
class Outcome:
    """What the remote system answered for one record. ``permanent`` failures (e.g. a duplicate rule) are
    dead-lettered after the configured number of attempts; ``give_up`` ones (record gone, a value the system
    refuses) at once; other failures stay pending and are retried on the next run.

    ``error_message`` is idlink's own text, never the remote message (it may quote values); ``fields`` names
    the fields the remote system rejected. A success may have left ``dropped_fields`` out (with the
    ``error_code`` that rejected them)."""

    key: str
    ok: bool
    remote_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    permanent: bool = False
    give_up: bool = False
    fields: tuple[str, ...] = ()
    dropped_fields: tuple[str, ...] = ()

    @classmethod
    def success(cls, key: str, remote_id: str | None = None, *, dropped_fields: Sequence[str] = (),
                code: str | None = None) -> Outcome:
        return cls(key=key, ok=True, remote_id=remote_id, error_code=code, dropped_fields=tuple(dropped_fields))

    @classmethod
    def failure(cls, key: str, code: str | None, message: str | None = None, *, permanent: bool = False,
                give_up: bool = False, fields: Sequence[str] = ()) -> Outcome:
        return cls(key=key, ok=False, error_code=code, error_message=message, permanent=permanent or give_up,
                   give_up=give_up, fields=tuple(fields))

    @property
    def audit_text(self) -> str | None:
        if self.ok:
            return audit_message("accepted without the fields it rejected", self.dropped_fields) \
                if self.dropped_fields else None
        return audit_message(self.error_message, self.fields)


class Writer(Protocol):
    """A system the reverse ETL writes to (see the package docstring)."""

    system: str

    def batches(self, records: Sequence[SyncRecord]) -> list[list[SyncRecord]]: ...

    def send(self, batch: list[SyncRecord]) -> list[Outcome]: ...

    @property
    def api_calls(self) -> int: ...


@dataclass(frozen=True)
class Plan:
    to_send: list[SyncRecord]
    skipped: int  # payload unchanged since last accepted
    parked: int  # dead-lettered with this very payload: not retried until the payload changes
    duplicates: int  # same key twice in the input: only the first is sent


@dataclass
class OutcomeCounts:
    succeeded: int = 0
    failed: int = 0
    dead_lettered: int = 0


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class StateStore:
    """Diff, intent and outcome bookkeeping of one system within one run; use from one thread."""

    def __init__(self, con: Connection, system: str, run_id: str,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, actor: str = ACTOR_RUN) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.con, self.system, self.run_id, self.max_attempts = con, system, run_id, max_attempts
        self.actor = actor
        ensure_schema(con)

    def _with_table(self, name: str, table: pa.Table, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.con.input_table(name, table):
            return self.con.execute(sql, params)

    def plan(self, records: Iterable[SyncRecord]) -> Plan:
        """Keep the records whose payload differs from the last accepted one and is not parked as a dead letter."""
        unique: dict[str, SyncRecord] = {}
        duplicates = 0
        for record in records:
            if record.key in unique:
                duplicates += 1
                continue
            unique[record.key] = record
        if not unique:
            return Plan([], 0, 0, duplicates)
        table = pa.table({"record_key": list(unique), "payload_hash": [r.payload_hash for r in unique.values()]})
        rows = self._with_table("plan_input", table, f"""
            SELECT i.record_key, s.record_key IS NOT NULL AS unchanged
            FROM plan_input i
            LEFT JOIN {SCHEMA}.sync_state s
              ON s.system = ? AND s.record_key = i.record_key AND s.payload_hash = i.payload_hash
            LEFT JOIN {SCHEMA}.dead_letters d
              ON d.system = ? AND d.record_key = i.record_key AND d.payload_hash = i.payload_hash
            WHERE s.record_key IS NOT NULL OR d.record_key IS NOT NULL""", [self.system, self.system])
        skipped = {key for key, unchanged in rows if unchanged}
        parked = {key for key, unchanged in rows if not unchanged}
        to_send = [r for k, r in unique.items() if k not in skipped and k not in parked]
        return Plan(to_send, len(skipped), len(parked), duplicates)

    def forget_obsolete(self, current_keys: Iterable[str]) -> int:
        """Drop pending rows whose record left the marts (e.g. the contact got linked meanwhile): nothing
        wants them written any more. Returns how many were dropped."""
        table = pa.table({"record_key": pa.array(list(current_keys), pa.string())})
        rows = self._with_table("current_input", table, f"""
            DELETE FROM {SCHEMA}.pending WHERE system = ?
            AND record_key NOT IN (SELECT record_key FROM current_input) RETURNING record_key""", [self.system])
        return len(rows)

    def record_intent(self, records: Sequence[SyncRecord]) -> dict[str, int]:
        """Write the pending rows *before* sending; returns the attempt number of each record."""
        if not records:
            return {}
        table = pa.table({"record_key": [r.key for r in records], "payload_hash": [r.payload_hash for r in records]})
        with self.con.input_table("intent_input", table), self.con.transaction():
            self.con.execute(f"""
                INSERT INTO {SCHEMA}.pending (system, record_key, payload_hash, attempts, next_attempt_at)
                SELECT ?, record_key, payload_hash, 1, ? FROM intent_input
                ON CONFLICT (system, record_key) DO UPDATE SET
                    attempts = CASE WHEN pending.payload_hash = excluded.payload_hash
                                    THEN pending.attempts + 1 ELSE 1 END,
                    payload_hash = excluded.payload_hash,
                    next_attempt_at = excluded.next_attempt_at""", [self.system, _now()])
            rows = self.con.execute(f"""
                SELECT p.record_key, p.attempts FROM {SCHEMA}.pending p
                JOIN intent_input i ON i.record_key = p.record_key WHERE p.system = ?""", [self.system])
        return dict(rows)

    def release_unsent(self, records: Sequence[SyncRecord], reason_code: str) -> None:
        """Undo the attempt counted for records whose request never went out (e.g. API limit reached)."""
        if not records:
            return
        table = pa.table({"record_key": [r.key for r in records]})
        self._with_table("unsent_input", table, f"""
            UPDATE {SCHEMA}.pending SET attempts = greatest(attempts - 1, 0), last_error_code = ?
            WHERE system = ? AND record_key IN (SELECT record_key FROM unsent_input)""",
                         [reason_code, self.system])

    def record_outcomes(self, pairs: Sequence[tuple[SyncRecord, Outcome, int]]) -> OutcomeCounts:
        """Apply (record, outcome, attempt) triples in one transaction: state, pending, dead letters, sync log."""
        counts = OutcomeCounts()
        if not pairs:
            return counts
        now = _now()
        log_rows: dict[str, list] = {k: [] for k in (
            "operation", "record_key", "payload_hash", "outcome", "error_code", "error_message", "attempt", "rule")}
        ok_rows: dict[str, list] = {"record_key": [], "payload_hash": [], "remote_id": [], "dropped_fields": []}
        retry_rows: dict[str, list] = {"record_key": [], "error_code": []}
        dead_rows: dict[str, list] = {k: [] for k in (
            "record_key", "payload_hash", "error_code", "error_message", "attempts")}
        for record, outcome, attempt in pairs:
            message = outcome.audit_text
            if outcome.ok:
                verdict = SUCCEEDED_WITHOUT_FIELDS if outcome.dropped_fields else SUCCEEDED
                counts.succeeded += 1
                ok_rows["record_key"].append(record.key)
                ok_rows["payload_hash"].append(record.payload_hash)
                ok_rows["remote_id"].append(outcome.remote_id)
                ok_rows["dropped_fields"].append(",".join(outcome.dropped_fields) or None)
            elif outcome.give_up or (outcome.permanent and attempt >= self.max_attempts):
                verdict = DEAD_LETTERED
                counts.dead_lettered += 1
                for name, value in (("record_key", record.key), ("payload_hash", record.payload_hash),
                                    ("error_code", outcome.error_code), ("error_message", message),
                                    ("attempts", attempt)):
                    dead_rows[name].append(value)
            else:
                verdict = FAILED
                counts.failed += 1
                retry_rows["record_key"].append(record.key)
                retry_rows["error_code"].append(outcome.error_code)
            for name, value in (("operation", record.operation), ("record_key", record.key),
                                ("payload_hash", record.payload_hash), ("outcome", verdict),
                                ("error_code", outcome.error_code), ("error_message", message),
                                ("attempt", attempt), ("rule", record.rule)):
                log_rows[name].append(value)

        tables = {
            "log_input": pa.table(log_rows, schema=pa.schema([
                ("operation", pa.string()), ("record_key", pa.string()), ("payload_hash", pa.string()),
                ("outcome", pa.string()), ("error_code", pa.string()), ("error_message", pa.string()),
                ("attempt", pa.int32()), ("rule", pa.string())])),
            "ok_input": pa.table(ok_rows, schema=pa.schema([
                ("record_key", pa.string()), ("payload_hash", pa.string()), ("remote_id", pa.string()),
                ("dropped_fields", pa.string())])),
            "retry_input": pa.table(retry_rows, schema=pa.schema([
                ("record_key", pa.string()), ("error_code", pa.string())])),
            "dead_input": pa.table(dead_rows, schema=pa.schema([
                ("record_key", pa.string()), ("payload_hash", pa.string()), ("error_code", pa.string()),
                ("error_message", pa.string()), ("attempts", pa.int32())])),
        }
        system = self.system
        with contextlib.ExitStack() as inputs:
            for name, table in tables.items():
                inputs.enter_context(self.con.input_table(name, table))
            with self.con.transaction():
                self._apply_outcomes(system, now, ok=bool(ok_rows["record_key"]),
                                     retry=bool(retry_rows["record_key"]), dead=bool(dead_rows["record_key"]))
        return counts

    def _apply_outcomes(self, system: str, now: datetime, *, ok: bool, retry: bool, dead: bool) -> None:
        """The statements of ``record_outcomes`` over its input relations (log, ok, retry, dead)."""
        self.con.execute(f"""
            INSERT INTO {SCHEMA}.sync_log ({_SYNC_LOG_COLUMNS})
            SELECT ?, ?, operation, record_key, payload_hash, outcome, error_code, error_message, attempt, ?,
                ?, rule
            FROM log_input""", [self.run_id, system, now, self.actor])
        if ok:
            self.con.execute(f"""
                INSERT INTO {SCHEMA}.sync_state (system, record_key, payload_hash, remote_id, accepted_at,
                    dropped_fields)
                SELECT ?, record_key, payload_hash, remote_id, ?, dropped_fields FROM ok_input
                ON CONFLICT (system, record_key) DO UPDATE SET payload_hash = excluded.payload_hash,
                    remote_id = coalesce(excluded.remote_id, sync_state.remote_id),
                    accepted_at = excluded.accepted_at, dropped_fields = excluded.dropped_fields""",
                             [system, now])
            # a record that succeeds (e.g. after its payload was corrected) is no longer a dead letter
            for table_name in ("pending", "dead_letters"):
                self.con.execute(f"""
                    DELETE FROM {SCHEMA}.{table_name} WHERE system = ?
                    AND record_key IN (SELECT record_key FROM ok_input)""", [system])
        if retry:
            self.con.execute(f"""
                UPDATE {SCHEMA}.pending SET last_error_code = r.error_code
                FROM retry_input r WHERE pending.system = ? AND pending.record_key = r.record_key""", [system])
        if dead:
            self.con.execute(f"""
                INSERT INTO {SCHEMA}.dead_letters (system, record_key, payload_hash, error_code, error_message,
                    attempts, first_failed_at, last_failed_at)
                SELECT ?, record_key, payload_hash, error_code, error_message, attempts, ?, ? FROM dead_input
                ON CONFLICT (system, record_key) DO UPDATE SET payload_hash = excluded.payload_hash,
                    error_code = excluded.error_code, error_message = excluded.error_message,
                    attempts = excluded.attempts, last_failed_at = excluded.last_failed_at""",
                             [system, now, now])
            self.con.execute(f"""
                DELETE FROM {SCHEMA}.pending WHERE system = ?
                AND record_key IN (SELECT record_key FROM dead_input)""", [system])

    def dead_letter_count(self) -> int:
        return self.con.scalar(f"SELECT count(*) FROM {SCHEMA}.dead_letters WHERE system = ?", [self.system])

    def pending_count(self) -> int:
        return self.con.scalar(f"SELECT count(*) FROM {SCHEMA}.pending WHERE system = ?", [self.system])


def external_write(system: str, operation: str, record_key: str, payload: Mapping[str, Any], outcome: str,
                   error_code: str | None = None, remote_id: str | None = None, *, actor: str = ACTOR_FAST_LANE,
                   rule: str | None = None) -> dict[str, Any]:
    """One write made outside a sync run (by the fast lane or the sign-up connector), as
    ``append_external_log`` takes it: keys, the payload's hash, the outcome, who wrote and why; never the
    payload itself."""
    return {"system": system, "operation": operation, "record_key": record_key,
            "payload_hash": payload_hash(operation, payload), "outcome": outcome, "error_code": error_code,
            "remote_id": remote_id, "actor": actor, "rule": rule}


REPLAY = "replay"  # sync_log.operation of a dead letter handed back to the next push
REPLAY_REQUESTED = "replay_requested"  # its sync_log.outcome


def replay_dead_letters(con: Connection, run_id: str, *, system: str | None = None,
                        error_code: str | None = None, keys: Sequence[str] = ()) -> dict[str, int]:
    """Hand dead letters back to the next push: each matching one (every filter given must match; none given
    = all) leaves ``dead_letters`` for ``pending`` with its attempts counted afresh, and ``sync_log`` records
    the replay under ``run_id``. The next push sends the record if it is still in the marts. Returns the count
    replayed per system."""
    ensure_schema(con)
    where, params = ["true"], []
    for column, value in (("system", system), ("error_code", error_code)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    wanted = pa.table({"record_key": pa.array(list(keys), pa.string())})
    if keys:
        where.append("record_key IN (SELECT record_key FROM wanted_keys)")
    with con.input_table("wanted_keys", wanted):
        chosen = con.execute(f"""SELECT system, record_key, payload_hash, error_code FROM {SCHEMA}.dead_letters
                                 WHERE {' AND '.join(where)}""", params)
    if not chosen:
        return {}
    replayed = pa.table({name: pa.array([row[i] for row in chosen], pa.string())
                         for i, name in enumerate(("system", "record_key", "payload_hash", "error_code"))})
    now = _now()
    with con.input_table("replayed", replayed), con.transaction():
        con.execute(f"""
            INSERT INTO {SCHEMA}.sync_log ({_SYNC_LOG_COLUMNS})
            SELECT ?, system, '{REPLAY}', record_key, payload_hash, '{REPLAY_REQUESTED}', error_code, NULL, 0, ?,
                '{ACTOR_COMMAND}', 'replay'
            FROM replayed""", [run_id, now])
        con.execute(f"""
            INSERT INTO {SCHEMA}.pending (system, record_key, payload_hash, attempts, next_attempt_at, last_error_code)
            SELECT system, record_key, payload_hash, 0, ?, error_code FROM replayed
            ON CONFLICT (system, record_key) DO UPDATE SET payload_hash = excluded.payload_hash, attempts = 0,
                next_attempt_at = excluded.next_attempt_at, last_error_code = excluded.last_error_code""", [now])
        con.execute(f"""
            DELETE FROM {SCHEMA}.dead_letters AS d
            WHERE EXISTS (SELECT 1 FROM replayed AS r WHERE r.system = d.system AND r.record_key = d.record_key)""")
    counts: dict[str, int] = {}
    for replayed_system, *_ in chosen:
        counts[replayed_system] = counts.get(replayed_system, 0) + 1
    return counts


def append_external_log(con: Connection, run_id: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Copy writes made outside a sync run (the fast lane, the sign-up connector) into ``sync_log``, keeping the
    time each was made; rows carry system, operation, record_key, payload_hash, outcome, error_code, logged_at
    and their actor and rule (a row without an actor is the fast lane's). ``run_id`` is the fast lane's; the
    connector's rows are logged under its own name."""
    if not rows:
        return 0
    ensure_schema(con)
    table = pa.table({
        "system": [str(r["system"]) for r in rows],
        "operation": [str(r["operation"]) for r in rows],
        "record_key": [str(r["record_key"]) for r in rows],
        "payload_hash": [str(r["payload_hash"]) for r in rows],
        "outcome": [str(r["outcome"]) for r in rows],
        "error_code": [r.get("error_code") for r in rows],
        "logged_at": [datetime.fromisoformat(str(r["logged_at"])).astimezone(UTC).replace(tzinfo=None)
                      for r in rows],
        "actor": [r.get("actor") or ACTOR_FAST_LANE for r in rows],
        "rule": [r.get("rule") for r in rows],
    })
    # idempotent: a copy repeated after a crash adds nothing
    with con.input_table("external_log_input", table):
        con.execute(f"""
            INSERT INTO {SCHEMA}.sync_log ({_SYNC_LOG_COLUMNS})
            SELECT CASE WHEN i.actor = '{ACTOR_FAST_LANE}' THEN ? ELSE i.actor END, i.system, i.operation,
                i.record_key, i.payload_hash, i.outcome, i.error_code, NULL, 1, i.logged_at, i.actor, i.rule
            FROM external_log_input AS i
            WHERE NOT EXISTS (
                SELECT 1 FROM {SCHEMA}.sync_log AS s
                WHERE s.actor = i.actor AND s.system = i.system AND s.operation = i.operation
                    AND s.record_key = i.record_key AND s.logged_at = i.logged_at)""", [run_id])
    return len(rows)
