"""Contact records of the simulated org: writes with validation, unique indexes, timestamps and rollback.

Records live in ``ctx.state["salesforce"]["Contact"]`` (id -> native record) so the state dump shows them as
they are. Every write replaces the record dict (copy on write), which keeps rollback a matter of putting the
previous dict back. Change events go to ``ctx.emit`` only after a transaction commits.
"""
from __future__ import annotations

import itertools
import re
import string
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.context import SandboxContext, gc_paused
from sandbox.salesforce.ids import CONTACT_PREFIX, SUFFIX_ALPHABET, IdGenerator, to_18
from sandbox.salesforce.schema import (
    BOOLEAN_DEFAULTS,
    CANONICAL_TIMESTAMP,
    CONTACT_FIELDS,
    EXTERNAL_ID_FIELD,
    FIELDS_BY_LOWER,
    TIMESTAMP_FIELDS,
    FieldError,
    ValidationFailed,
    clean_payload,
    full_name,
    normalise_timestamp,
)
from sandbox.salesforce.soql import format_datetime


class ModstampClock:
    """Millisecond timestamps that strictly increase within the process, even within one millisecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0

    def next(self) -> str:
        with self._lock:
            self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
            ms = self._last_ms
        return format_datetime(datetime.fromtimestamp(ms / 1000, tz=UTC))

    def advance_past(self, stamp: str) -> None:
        """Never hand out a stamp at or before one already stored (seed data may come from the future)."""
        parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")
        with self._lock:
            self._last_ms = max(self._last_ms, round(parsed.timestamp() * 1000))


CLOCK = ModstampClock()
# every field present (null unless defaulted), so reads and state dumps show the full native shape
EMPTY_CONTACT: dict[str, Any] = {f.name: None for f in CONTACT_FIELDS} | BOOLEAN_DEFAULTS


class MultipleMatches(Exception):
    """An upsert or external-id lookup matched several records (HTTP 300)."""

    def __init__(self, ids: list[str]):
        super().__init__(f"{len(ids)} records match")
        self.ids = ids


def not_found() -> ValidationFailed:
    return ValidationFailed([FieldError("NOT_FOUND", "The requested resource does not exist")])


def http_status_of(failure: ValidationFailed) -> int:
    return 404 if any(e.status_code in ("NOT_FOUND", "ENTITY_IS_DELETED") for e in failure.errors) else 400


@dataclass
class Transaction:
    undo: list[tuple[str, dict | None]] = field(default_factory=list)
    events: list[tuple[str, dict]] = field(default_factory=list)
    rolled_back: bool = False


class ContactStore:
    def __init__(self, ctx: SandboxContext):
        self.ctx = ctx
        self.ids = IdGenerator(CONTACT_PREFIX)
        self._indexed: dict | None = None
        self._by_external_id: dict[str, set[str]] = {}
        self._by_email: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ records and indexes

    @property
    def records(self) -> dict[str, dict]:
        return self.ctx.state.setdefault("salesforce", {}).setdefault("Contact", {})

    def _sync_indexes(self) -> None:
        records = self.records
        if records is self._indexed:
            return
        # the record dict was replaced from outside (e.g. a state reset): rebuild the indexes
        self._by_external_id, self._by_email = {}, {}
        for record in records.values():
            self._index(record)
        self._indexed = records

    def _index(self, record: Mapping[str, Any]) -> None:
        if record.get("IsDeleted"):
            return  # deleted records neither match upserts nor count as duplicates
        if record.get(EXTERNAL_ID_FIELD):
            self._by_external_id.setdefault(record[EXTERNAL_ID_FIELD].casefold(), set()).add(record["Id"])
        if record.get("Email"):
            self._by_email.setdefault(record["Email"].casefold(), set()).add(record["Id"])

    def _unindex(self, record: Mapping[str, Any]) -> None:
        for index, value in ((self._by_external_id, record.get(EXTERNAL_ID_FIELD)), (self._by_email, record.get("Email"))):
            if value:
                ids = index.get(value.casefold())
                if ids is not None:
                    ids.discard(record["Id"])
                    if not ids:
                        del index[value.casefold()]

    def _put(self, tx: Transaction, record: dict) -> None:
        records = self.records
        old = records.get(record["Id"])
        if old is not None:
            self._unindex(old)
        records[record["Id"]] = record
        self._index(record)
        tx.undo.append((record["Id"], old))

    def _new_id(self) -> str:
        records = self.records
        while True:
            candidate = self.ids.next()
            if candidate not in records:
                return candidate

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the sandbox lock for a group of writes; roll all back on an exception or ``rollback``."""
        tx = Transaction()
        with self.ctx.lock:
            self._sync_indexes()
            try:
                yield tx
            except BaseException:
                self.rollback(tx)
                raise
        for event, record in tx.events:
            self.ctx.emit("salesforce", event, dict(record))

    def rollback(self, tx: Transaction) -> None:
        records = self.records
        for record_id, old in reversed(tx.undo):
            current = records.get(record_id)
            if current is not None:
                self._unindex(current)
            if old is None:
                records.pop(record_id, None)
            else:
                records[record_id] = old
                self._index(old)
        tx.undo.clear()
        tx.events.clear()
        tx.rolled_back = True

    # ------------------------------------------------------------------ reads

    def get(self, record_id: str, *, include_deleted: bool = False) -> dict:
        full = to_18(record_id)
        if full is None or not full.startswith(CONTACT_PREFIX):
            raise ValidationFailed([FieldError("MALFORMED_ID", "Contact ID: id value of incorrect type")])
        record = self.records.get(full)
        if record is None:
            raise not_found()
        if record.get("IsDeleted") and not include_deleted:
            raise ValidationFailed([FieldError("ENTITY_IS_DELETED", "entity is deleted")])
        return record

    def find_by_external_id(self, field_name: str, value: str) -> list[str]:
        """Ids of live records whose external-id field equals ``value`` (case-insensitive)."""
        spec = FIELDS_BY_LOWER.get(field_name.lower())
        if spec is None or not (spec.external_id or spec.name == "Id"):
            raise ValidationFailed([FieldError(
                "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field_name}")])
        with self.ctx.lock:
            self._sync_indexes()
            if spec.name == "Id":
                full = to_18(value)
                record = self.records.get(full) if full else None
                return [full] if record is not None and not record.get("IsDeleted") else []
            return sorted(self._by_external_id.get(value.casefold(), ()))

    # ------------------------------------------------------------------ writes (call inside a transaction)

    def create(self, tx: Transaction, payload: Mapping[str, Any]) -> str:
        cleaned = clean_payload(payload, creating=True)
        self._check_constraints(cleaned, None)
        now = CLOCK.next()
        record: dict[str, Any] = dict(EMPTY_CONTACT)
        record.update(cleaned)
        record.update(Id=self._new_id(), CreatedDate=now, LastModifiedDate=now, SystemModstamp=now)
        record["Name"] = full_name(record)
        self._put(tx, record)
        tx.events.append(("created", record))
        return record["Id"]

    def update(self, tx: Transaction, record_id: str, payload: Mapping[str, Any]) -> str:
        current = self.get(record_id)
        payload = {k: v for k, v in payload.items() if k.lower() != "id"}  # collections carry Id in the body
        cleaned = clean_payload(payload, creating=False)
        self._check_constraints(cleaned, current["Id"])
        now = CLOCK.next()
        record = {**current, **cleaned, "LastModifiedDate": now, "SystemModstamp": now}
        record["Name"] = full_name(record)
        self._put(tx, record)
        tx.events.append(("updated", record))
        return record["Id"]

    def delete(self, tx: Transaction, record_id: str) -> str:
        current = self.get(record_id)
        now = CLOCK.next()
        record = {**current, "IsDeleted": True, "LastModifiedDate": now, "SystemModstamp": now}
        self._put(tx, record)
        tx.events.append(("deleted", record))
        return record["Id"]

    def merge(self, tx: Transaction, master_id: str, loser_ids: Iterable[str]) -> str:
        """What Salesforce's merge does to the contacts: each loser is deleted (queryAll still finds it) with
        ``MasterRecordId`` naming the master, which is kept (and counts as modified)."""
        master = self.get(master_id)
        for loser_id in loser_ids:
            loser = self.get(loser_id)
            if loser["Id"] == master["Id"]:
                raise ValidationFailed([FieldError("INVALID_ID_FIELD", "a record cannot be merged into itself")])
            now = CLOCK.next()
            record = {**loser, "IsDeleted": True, "MasterRecordId": master["Id"], "LastModifiedDate": now,
                      "SystemModstamp": now}
            self._put(tx, record)
            tx.events.append(("deleted", record))
        now = CLOCK.next()
        master = {**master, "LastModifiedDate": now, "SystemModstamp": now}
        self._put(tx, master)
        tx.events.append(("updated", master))
        return master["Id"]

    def upsert(self, tx: Transaction, field_name: str, value: str, payload: Mapping[str, Any]) -> tuple[str, bool]:
        """Update the one record whose external id is ``value`` or create it; returns (id, created)."""
        if value is None or str(value).strip() == "":
            raise ValidationFailed([FieldError(
                "MISSING_ARGUMENT", f"{field_name} not specified", (field_name,))])
        value = str(value)
        matches = self.find_by_external_id(field_name, value)
        spec = FIELDS_BY_LOWER[field_name.lower()]
        body = {k: v for k, v in payload.items() if k.lower() != spec.name.lower()}
        in_body = next((v for k, v in payload.items() if k.lower() == spec.name.lower()), None)
        if in_body is not None and str(in_body).casefold() != value.casefold():
            raise ValidationFailed([FieldError(
                "INVALID_FIELD", f"{spec.name} in the body differs from the external id in the URL", (spec.name,))])
        if len(matches) > 1:
            raise MultipleMatches(matches)
        if matches:
            return self.update(tx, matches[0], body), False
        if spec.name == "Id":
            raise not_found()
        return self.create(tx, {**body, spec.name: value}), True

    def _check_constraints(self, cleaned: Mapping[str, Any], own_id: str | None) -> None:
        external_id = cleaned.get(EXTERNAL_ID_FIELD)
        if external_id:
            others = self._by_external_id.get(external_id.casefold(), set()) - {own_id}
            if others:
                raise ValidationFailed([FieldError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {EXTERNAL_ID_FIELD} duplicates value on record with id: {min(others)}",
                    (EXTERNAL_ID_FIELD,),
                )])
        email = cleaned.get("Email")
        blocking = getattr(self.ctx.config, "duplicate_rule", "off") == "block"
        if email and blocking and self._by_email.get(email.casefold(), set()) - {own_id}:
            raise ValidationFailed([FieldError(
                "DUPLICATES_DETECTED",
                "Use one of these records? A contact with the same email address already exists.",
            )])

    # ------------------------------------------------------------------ seeding

    def load(self, contacts: Iterable[Mapping[str, Any]]) -> int:
        """Store native records as given, filling id, defaults and timestamps; no events (seeding is not a change).

        Seeding a million contacts is on the sandbox's start-up path, so the loop is inlined: canonical
        timestamps are recognised without parsing, and the unique indexes are filled in the same pass (bulk,
        without the per-write bookkeeping of transactions).
        """
        loaded = 0
        with self.ctx.lock, gc_paused():
            records = self.records
            self._sync_indexes()
            by_external_id, by_email = self._by_external_id, self._by_email
            canonical = CANONICAL_TIMESTAMP.fullmatch
            empty = EMPTY_CONTACT
            latest = None
            now = CLOCK.next()  # one stamp for every seed record that comes without timestamps
            for position, raw in enumerate(contacts):
                if type(raw) is not dict and not isinstance(raw, Mapping):
                    raise TypeError(f"Contact seed #{position} is not a JSON object")
                record: dict[str, Any] = {**empty, **raw}
                if "attributes" in raw:  # never a field (not in EMPTY_CONTACT)
                    del record["attributes"]
                # the API never returns empty strings: blank means null
                if "" in raw.values():
                    record.update({k: None for k, v in raw.items() if v == "" and k != "attributes"})
                record_id = record.get("Id")
                if record_id:
                    full = _seed_id(str(record_id))
                    if full is None:
                        raise ValueError(f"Contact seed #{position} has a malformed Id")
                    record["Id"] = record_id = full
                else:
                    record["Id"] = record_id = self._new_id()
                checked = None  # the stamps are often one string: check it once
                for name in TIMESTAMP_FIELDS:
                    value = record.get(name)
                    if value is checked:
                        continue
                    if type(value) is str and canonical(value):
                        checked = value
                    elif value:
                        try:
                            record[name] = normalise_timestamp(value)
                        except ValueError:
                            raise ValueError(f"Contact seed {record_id}: {name} is not a datetime") from None
                # missing stamps inherit from the one before: created -> last modified -> system modstamp
                created = record["CreatedDate"] = record["CreatedDate"] or now
                modified = record["LastModifiedDate"] = record["LastModifiedDate"] or created
                modstamp = record["SystemModstamp"] = record["SystemModstamp"] or modified
                deleted = record["IsDeleted"] = bool(record.get("IsDeleted"))
                name = record.get("Name")
                if not name:
                    first, last = record.get("FirstName"), record.get("LastName")
                    if type(first) is str and type(last) is str:  # as ``full_name``, without the join
                        name = f"{first} {last}" if first and last else first or last
                    else:
                        name = full_name(record)
                record["Name"] = name
                old = records.get(record_id)
                if old is not None:
                    self._unindex(old)
                records[record_id] = record
                if not deleted:  # as ``_index``: deleted records neither match upserts nor count as duplicates
                    value = record.get(EXTERNAL_ID_FIELD)
                    if value:
                        ids = by_external_id.get(key := value.casefold())
                        if ids is None:
                            by_external_id[key] = {record_id}
                        else:
                            ids.add(record_id)
                    value = record.get("Email")
                    if value:
                        ids = by_email.get(key := value.casefold())
                        if ids is None:
                            by_email[key] = {record_id}
                        else:
                            ids.add(record_id)
                if latest is None or modstamp > latest:
                    latest = modstamp
                loaded += 1
            if latest:
                CLOCK.advance_past(latest)
        return loaded


# ``to_18`` for seeding: same answers, a regular expression instead of a set per id and the case-safe suffix
# looked up per 5-character case pattern (a million seed ids would otherwise cost seconds).
_SEED_ID_SHAPE = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")
_CASE_PATTERN = str.maketrans(
    {c: ("1" if c in string.ascii_uppercase else "0") for c in string.ascii_letters + string.digits}
)
_SUFFIX_BY_PATTERN = {
    pattern: SUFFIX_ALPHABET[int(pattern[::-1], 2)]
    for pattern in ("".join(bits) for bits in itertools.product("01", repeat=5))
}


def _seed_id(record_id: str) -> str | None:
    """The 18-character form of a 15- or 18-character id; None if malformed (exactly as ``to_18``)."""
    if not _SEED_ID_SHAPE.fullmatch(record_id):
        return None
    id15 = record_id[:15]
    pattern = id15.translate(_CASE_PATTERN)
    by_pattern = _SUFFIX_BY_PATTERN
    suffix = by_pattern[pattern[:5]] + by_pattern[pattern[5:10]] + by_pattern[pattern[10:]]
    if len(record_id) == 18 and record_id[15:].upper() != suffix:
        return None
    return id15 + suffix
