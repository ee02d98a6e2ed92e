"""Retention: nothing is kept longer than configured. ``purge_expired`` (the scheduled asset
``privacy/retention_purge``, daily) removes, each by its own period:

* tombstones: raw rows of identities and contacts their system deleted, ``deleted_at`` (else the load that saw
  it) older than ``RETENTION_TOMBSTONE_DAYS`` (every ``raw_<system>`` table with ``is_deleted``, dlt's staging
  copies included);
* snapshots: link and consent versions that ended (``dbt_valid_to``) longer than ``RETENTION_SNAPSHOT_DAYS`` ago;
* the sync log: ``reverse_etl.sync_log`` rows older than ``RETENTION_SYNC_LOG_DAYS``;
* dead letters: last failed longer than ``RETENTION_DEAD_LETTER_DAYS`` ago;
* inbox events: handed on and received longer than ``RETENTION_INBOX_DAYS`` ago, with the imported fast-lane audit
  rows and recorded run failures of the same age.

The fact and time of each erasure is kept (the proof it happened). When tombstones went, the warehouse is
rewritten so their personal data leaves the file too. ``now`` is a parameter: tests move the clock.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from inbox import Inbox
from privacy.tables import raw_tables, rewrite_storage
from settings import RetentionSettings
from warehouse import Connection, Warehouse

log = logging.getLogger(__name__)

SNAPSHOTS = (("snapshots", "identity_contact_links_snapshot"), ("snapshots", "identity_consents_snapshot"))


@dataclass(frozen=True)
class PurgeResult:
    tombstones: int
    snapshot_versions: int
    sync_log: int
    dead_letters: int
    inbox_events: int
    rewritten: bool


def _delete(con: Connection, sql: str, cutoff: datetime) -> int:
    return con.modify(sql, [cutoff])


def purge_expired(location: Warehouse | str | os.PathLike, inbox_path: str | os.PathLike | None,
                  periods: RetentionSettings, *, now: datetime | None = None) -> PurgeResult:
    now = now or datetime.now(UTC).replace(tzinfo=None)
    cutoff = {name: now - timedelta(days=days) for name, days in (
        ("tombstones", periods.tombstone_days), ("snapshots", periods.snapshot_days),
        ("sync_log", periods.sync_log_days), ("dead_letters", periods.dead_letter_days))}
    tombstones = versions = log_rows = dead = 0
    warehouse = Warehouse.of(location)
    if warehouse.exists():
        with warehouse.connect() as con:
            for _, schema, table, key in raw_tables(con):
                columns = set(con.columns(schema, table))
                if key != "id" or "is_deleted" not in columns:
                    continue
                seen = "coalesce(deleted_at, ingested_at)" if "deleted_at" in columns else "ingested_at"
                tombstones += _delete(con, f'delete from {schema}."{table}" where coalesce(is_deleted, false) '
                                           f"and {seen} < ?", cutoff["tombstones"])
            for schema, table in SNAPSHOTS:
                if con.table_exists(schema, table):
                    versions += _delete(con, f"delete from {schema}.{table} where dbt_valid_to < ?",
                                        cutoff["snapshots"])
            if con.table_exists("reverse_etl", "sync_log"):
                log_rows = _delete(con, "delete from reverse_etl.sync_log where logged_at < ?", cutoff["sync_log"])
            if con.table_exists("reverse_etl", "dead_letters"):
                dead = _delete(con, "delete from reverse_etl.dead_letters where last_failed_at < ?",
                               cutoff["dead_letters"])
        if tombstones:  # their personal data must leave the storage, not only the tables
            rewrite_storage(warehouse)
    events = 0
    if inbox_path is not None and Path(inbox_path).exists():
        inbox = Inbox(inbox_path)
        try:
            events = inbox.purge_before((now - timedelta(days=periods.inbox_days)).replace(tzinfo=UTC).isoformat())
        finally:
            inbox.close()
    result = PurgeResult(tombstones, versions, log_rows, dead, events, bool(tombstones))
    log.info("retention purge: %s", result)
    return result
