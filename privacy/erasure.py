"""Erasing a person: their personal data leaves the warehouse; only keys and the fact and time of erasure stay.

A request (``python -m privacy erase``, or an identity its provider deleted when ``IDLINK_ERASE_DELETED``
is on) is applied by the next run, in two steps around the dbt build:

1. ``apply_erasures`` (before dbt): records the erasure in ``privacy.erasures``; the identity and, unless the
   CRM policy only clears the external id, every contact it was linked to (or that carries its id) join
   ``privacy.erased_subjects``; their rows leave every raw table (every table of a ``raw_<system>`` schema and
   of dlt's ``raw_<system>_staging``, by its ``id`` or, in quarantine tables, its ``record_key``: a new source
   is covered by its schema's name) and dlt's completed load packages
   and the reverse-ETL state keyed by them; their inbox events are deleted; the CRM policy becomes
   ``privacy.crm_erasure_actions`` for the reverse ETL (delete the contact, anonymise it, or clear its
   external id). Staging leaves out erased subjects and ingestion never loads them again.
2. ``compact_warehouse`` (after dbt rebuilt every model without them): DuckDB keeps the blocks of deleted rows
   and dropped tables in the file until they are reused, so the warehouse is copied into a fresh file that
   replaces it; on Postgres the tables that held them are rewritten (VACUUM FULL). Only a run that erased someone
   pays for this.

Tables (schema ``privacy``, keys only): ``erasures (identity_provider, identity_id, requested_by,
requested_at, erased_at, crm_policy, compacted_at)``, ``erased_subjects (system, record_id, erased_at)``,
``crm_erasure_actions (crm, contact_id, action, identity_provider, identity_id, erased_at)``.
"""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

import pyarrow as pa

from inbox import Inbox
from privacy.tables import RAW_PREFIX, raw_tables, rewrite_storage
from warehouse import Connection, Warehouse

log = logging.getLogger(__name__)

SCHEMA = "privacy"

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.erasures (
    identity_provider VARCHAR NOT NULL, identity_id VARCHAR NOT NULL, requested_by VARCHAR NOT NULL,
    requested_at TIMESTAMP NOT NULL, erased_at TIMESTAMP NOT NULL, crm_policy VARCHAR NOT NULL,
    compacted_at TIMESTAMP, PRIMARY KEY (identity_provider, identity_id));
CREATE TABLE IF NOT EXISTS {SCHEMA}.erased_subjects (
    system VARCHAR NOT NULL, record_id VARCHAR NOT NULL, erased_at TIMESTAMP NOT NULL,
    PRIMARY KEY (system, record_id));
CREATE TABLE IF NOT EXISTS {SCHEMA}.crm_erasure_actions (
    crm VARCHAR NOT NULL, contact_id VARCHAR NOT NULL, action VARCHAR NOT NULL, identity_provider VARCHAR NOT NULL,
    identity_id VARCHAR NOT NULL, erased_at TIMESTAMP NOT NULL, PRIMARY KEY (crm, contact_id));
"""


class CrmPolicy(str, Enum):
    """What an erasure does to the person's CRM contacts."""

    DELETE = "delete"  # delete the contact (it and its re-ingestion are erased here too)
    ANONYMISE = "anonymise"  # overwrite its personal fields with placeholders
    CLEAR_EXTERNAL_ID = "clear_external_id"  # only unlink it: the CRM keeps its own record, and so does idlink


@dataclass(frozen=True)
class ErasureRequest:
    provider: str
    identity_id: str
    requested_by: str  # the command's operator, or "provider_deletion"
    requested_at: datetime
    inbox_id: int | None = None


@dataclass(frozen=True)
class ErasureResult:
    erased: int  # people erased by this run
    contacts: int  # CRM contacts the policy applies to
    raw_rows: int  # rows removed from raw tables
    inbox_events: int  # inbox events removed


def ensure_schema(con: Connection) -> None:
    con.execute(_DDL)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def provider_deletions(con: Connection, providers: Iterable[str]) -> list[ErasureRequest]:
    """Identities their provider deleted and that are not erased yet: requests when deletions mean erasure."""
    requests = []
    for provider in providers:
        if not con.table_exists(RAW_PREFIX + provider, "users"):
            continue
        rows = con.execute(f"""
            select id, coalesce(deleted_at, ingested_at) from {RAW_PREFIX}{provider}.users as u
            where coalesce(is_deleted, false) and not exists (
                select 1 from {SCHEMA}.erasures as e
                where e.identity_provider = ? and e.identity_id = u.id)""", [provider])
        requests += [ErasureRequest(provider, identity_id, "provider_deletion", at or _now())
                     for identity_id, at in rows]
    return requests


def linked_contacts(con: Connection, requests: Sequence[ErasureRequest]) -> list[tuple]:
    """(crm, contact_id, identity_provider, identity_id) of every contact each person was ever linked to or that
    carries their id, from the golden table, its history and the raw CRM tables."""
    people = pa.table({"identity_provider": [r.provider for r in requests],
                       "identity_id": [r.identity_id for r in requests]})
    with con.input_table("erased_people", people):
        sources = []
        for schema, table in (("marts", "identity_contact_links"), ("snapshots", "identity_contact_links_snapshot")):
            if con.table_exists(schema, table):
                sources.append(f"""select l.crm, l.contact_id, p.identity_provider, p.identity_id
                    from {schema}.{table} as l inner join erased_people as p
                    on p.identity_provider = l.identity_provider and p.identity_id = l.identity_id""")
        for system, schema, table, key in raw_tables(con):
            columns = set(con.columns(schema, table))
            if key == "id" and "external_user_id" in columns:  # a CRM's contacts
                sources.append(f"""select '{system}', c.id, p.identity_provider, p.identity_id
                    from {schema}."{table}" as c inner join erased_people as p on c.external_user_id = p.identity_id""")
        if not sources:
            return []
        return con.execute("select distinct * from (" + " union all ".join(sources) + ") as found "
                           "where contact_id is not null")


def _forget_rows(con: Connection, subjects: pa.Table, *, state: bool = True) -> int:
    """Delete every raw row (and, with ``state``, every reverse-ETL state row) of the subjects; returns the raw
    rows deleted."""
    with con.input_table("forgotten", subjects):
        deleted = 0
        for system, schema, table, key in raw_tables(con):
            deleted += con.modify(f"""delete from {schema}."{table}" where "{key}" in
                (select record_id from forgotten where system = ?)""", [system])
        if state and con.table_exists("reverse_etl", "sync_log"):
            # record keys are '<provider>:<identity id>' or '<record id>:<field>': keys stay, what was sent does not
            matches = "(record_key = f.system || ':' || f.record_id or record_key like f.record_id || ':%')"
            for table in ("sync_state", "pending", "dead_letters"):
                if con.table_exists("reverse_etl", table):
                    con.modify(f"delete from reverse_etl.{table} as t using forgotten as f where {matches}")
            con.modify(f"update reverse_etl.sync_log as t set payload_hash = 'erased' from forgotten as f "
                       f"where {matches}")
        return deleted


def remove_load_packages(warehouse: Warehouse) -> int:
    """dlt keeps each completed load package (the records as loaded) in its pipelines folder in the warehouse's
    local folder (``ingestion.pipeline``); they go, so no record of an erased person outlives the load. Returns
    how many."""
    removed = 0
    for package in (warehouse.path.parent / "dlt_pipelines").glob("*/load/loaded/*"):
        shutil.rmtree(package, ignore_errors=True)
        removed += 1
    return removed


def apply_erasures(location: Warehouse | str | os.PathLike, inbox_path: str | os.PathLike | None, policy: CrmPolicy,
                   *, erase_deleted: bool = False, providers: Sequence[str] = ("b2c", "akamai", "scim"),
                   now: datetime | None = None) -> ErasureResult:
    """Apply every pending erasure request (see the module docstring, step 1)."""
    now = now or _now()
    warehouse = Warehouse.of(location)
    inbox = Inbox(inbox_path) if inbox_path is not None and Path(inbox_path).exists() else None
    try:
        pending = [ErasureRequest(r["provider"], r["identity_id"], r["requested_by"],
                                  datetime.fromisoformat(r["requested_at"]).astimezone(UTC).replace(tzinfo=None),
                                  r["id"]) for r in (inbox.pending_erasures() if inbox else [])]
        with warehouse.connect() as con:
            ensure_schema(con)
            requests = {(r.provider, r.identity_id): r for r in pending}
            if erase_deleted:
                for request in provider_deletions(con, providers):
                    requests.setdefault((request.provider, request.identity_id), request)
            if not requests:
                # whatever reached a raw table again since (ingestion leaves erased records out) goes again
                again = con.arrow(f"select system, record_id from {SCHEMA}.erased_subjects")
                return ErasureResult(0, 0, _forget_rows(con, again, state=False), 0)
            requests_list = list(requests.values())
            contacts = linked_contacts(con, requests_list)
            subjects = [(r.provider, r.identity_id) for r in requests_list]
            if policy is not CrmPolicy.CLEAR_EXTERNAL_ID:
                subjects += [(crm, contact_id) for crm, contact_id, *_ in contacts]
            with con.transaction():
                for sql, rows in (
                        (f"insert into {SCHEMA}.erasures values (?, ?, ?, ?, ?, ?, null) on conflict do nothing",
                         [(r.provider, r.identity_id, r.requested_by, r.requested_at, now, policy.value)
                          for r in requests_list]),
                        (f"insert into {SCHEMA}.erased_subjects values (?, ?, ?) on conflict do nothing",
                         [(system, record_id, now) for system, record_id in subjects]),
                        (f"insert into {SCHEMA}.crm_erasure_actions values (?, ?, ?, ?, ?, ?) on conflict do nothing",
                         [(crm, contact_id, policy.value, provider, identity_id, now)
                          for crm, contact_id, provider, identity_id in contacts])):
                    if rows:
                        con.executemany(sql, rows)
                raw_rows = _forget_rows(con, pa.table({
                    "system": pa.array([system for system, _ in subjects], pa.string()),
                    "record_id": pa.array([record_id for _, record_id in subjects], pa.string())}))
        remove_load_packages(warehouse)
        events = inbox.forget([r.identity_id for r in requests_list],
                              [r.inbox_id for r in requests_list if r.inbox_id is not None]) if inbox else 0
    finally:
        if inbox is not None:
            inbox.close()
    log.info("erased %d people (%d CRM contacts, policy %s)", len(requests_list), len(contacts), policy.value)
    return ErasureResult(len(requests_list), len(contacts), raw_rows, events)


def erased_record_ids(location: Warehouse | str | os.PathLike, system: str) -> frozenset[str]:
    """Ids of a system's erased records, which ingestion must never load again (read-only look)."""
    warehouse = Warehouse.of(location)
    if not warehouse.exists():
        return frozenset()
    with warehouse.connect(read_only=True) as con:
        if not con.table_exists(SCHEMA, "erased_subjects"):
            return frozenset()
        return frozenset(r for (r,) in con.execute(
            f"select record_id from {SCHEMA}.erased_subjects where system = ?", [system]))


def compact_warehouse(location: Warehouse | str | os.PathLike, *, now: datetime | None = None) -> bool:
    """After an erasure (see the module docstring, step 2): rewrite the warehouse so it holds only live data.
    Returns whether it did; a run that erased nobody returns at once."""
    warehouse = Warehouse.of(location)
    if not warehouse.exists():
        return False
    with warehouse.connect(read_only=True) as con:
        if not con.table_exists(SCHEMA, "erasures") or not con.scalar(
                f"select count(*) from {SCHEMA}.erasures where compacted_at is null"):
            return False
    rewrite_storage(warehouse, f"update {SCHEMA}.erasures set compacted_at = ? where compacted_at is null",
                      [now or _now()])
    log.info("warehouse rewritten without the erased people's old blocks")
    return True
