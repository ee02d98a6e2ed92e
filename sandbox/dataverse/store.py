"""Contacts of the simulated Dataverse environment with what change tracking needs: a row version per record
(``versionnumber``), a log of deletions, and an index of the alternate key (case-insensitive, like the SQL
index behind it). Records are replaced on change, never mutated in place."""
from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sandbox.context import SandboxContext
from sandbox.dataverse.schema import DUPLICATE_KEY, EXTERNAL_ID_FIELD, PRIMARY_ID, WriteRefused

_RUNTIME = "dataverse.store"


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ContactStore:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.records: dict[str, dict] = ctx.state.setdefault("dynamics", {}).setdefault("contacts", {})
        self.ids: list[str] = sorted(self.records)  # primary-key order: what paging follows
        self.by_key: dict[str, str] = {}
        self.deleted: list[tuple[int, str]] = []  # (version at deletion, id)
        self.version = max((int(r.get("versionnumber") or 0) for r in self.records.values()), default=0)
        for record in self.records.values():
            self._index(record)

    def _index(self, record: dict) -> None:
        key = record.get(EXTERNAL_ID_FIELD)
        if key:
            self.by_key[str(key).lower()] = record[PRIMARY_ID]

    def find(self, key_value: str) -> dict | None:
        record_id = self.by_key.get(key_value.lower())
        return self.records.get(record_id) if record_id else None

    def _next_version(self) -> int:
        self.version += 1
        return self.version

    def _claim_key(self, record_id: str, key: Any) -> None:
        if key:
            holder = self.by_key.get(str(key).lower())
            if holder and holder != record_id:
                raise WriteRefused(412, DUPLICATE_KEY, "A record with matching key values already exists.")

    def save(self, record_id: str | None, values: dict, *, seed: bool = False) -> tuple[dict, bool]:
        """Create or update; returns (the stored record, created). Caller holds ``ctx.lock``."""
        current = self.records.get(record_id) if record_id else None
        created = current is None
        record_id = str(record_id or values.get(PRIMARY_ID) or uuid.uuid4()).lower()
        self._claim_key(record_id, values.get(EXTERNAL_ID_FIELD))
        record = {**(current or {"statecode": 0, "merged": False, "_masterid_value": None,
                                 "_parentcustomerid_value": None}), **values, PRIMARY_ID: record_id}
        if seed and record.get("versionnumber"):
            self.version = max(self.version, int(record["versionnumber"]))
        else:
            record["versionnumber"] = self._next_version()
        if created and not (seed and record.get("createdon")):
            record["createdon"] = now_text()
        if not (seed and record.get("modifiedon")):
            record["modifiedon"] = now_text()
        record["fullname"] = " ".join(p for p in (record.get("firstname"), record.get("lastname")) if p) or None
        if current is not None and current.get(EXTERNAL_ID_FIELD):
            self.by_key.pop(str(current[EXTERNAL_ID_FIELD]).lower(), None)
        self.records[record_id] = record
        self._index(record)
        if created:
            bisect.insort(self.ids, record_id)
        return record, created

    def merge(self, target_id: str, subordinate_id: str, update_content: dict) -> None:
        """Dataverse's ``Merge``: the target takes ``update_content``; the subordinate is deactivated with
        ``merged`` true and ``masterid`` pointing at the target (it is not deleted). Caller holds ``ctx.lock``."""
        self.save(target_id, update_content)
        self.save(subordinate_id, {"statecode": 1, "merged": True, "_masterid_value": target_id})

    def delete(self, record_id: str) -> bool:
        record = self.records.pop(record_id, None)
        if record is None:
            return False
        self.ids.pop(bisect.bisect_left(self.ids, record_id))
        if record.get(EXTERNAL_ID_FIELD):
            self.by_key.pop(str(record[EXTERNAL_ID_FIELD]).lower(), None)
        self.deleted.append((self._next_version(), record_id))
        return True

    def changes_since(self, version: int) -> tuple[list[dict], list[str]]:
        """Records changed after ``version`` (current state) and ids deleted after it that do not exist now."""
        changed = [r for r in (self.records[i] for i in self.ids) if int(r["versionnumber"]) > version]
        start = bisect.bisect_right(self.deleted, (version, "\uffff"))
        gone = list(dict.fromkeys(i for _, i in self.deleted[start:] if i not in self.records))
        return changed, gone


def store_of(ctx: SandboxContext) -> ContactStore:
    with ctx.lock:
        store = ctx.runtime.get(_RUNTIME)
        if store is None:
            store = ctx.runtime[_RUNTIME] = ContactStore(ctx)
        return store


def load_contacts(ctx: SandboxContext, contacts: Iterable[dict[str, Any]]) -> int:
    """Seed native contact records (``contactid``, row version and dates filled in when missing)."""
    store = store_of(ctx)
    loaded = 0
    with ctx.lock:
        for contact in contacts:
            values = {k: v for k, v in contact.items() if not k.startswith("@")}
            store.save(values.get(PRIMARY_ID), values, seed=True)
            loaded += 1
    return loaded
