"""Quarantine of records that cannot be represented, and PII-free summaries of what a load flagged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from clients.json_bodies import has_invalid_text
from ingestion.columns import QUARANTINE, arrow_schema, routed, table_from_columns
from ingestion.normalize import as_text, excerpt_keys

QUARANTINE_TABLE = "quarantine"
QUARANTINE_SCHEMA = arrow_schema(QUARANTINE)

NOT_AN_OBJECT = "not_an_object"
MISSING_ID = "missing_id"
INVALID_TEXT = "invalid_text"  # a lone surrogate or invalid UTF-8: the value cannot be stored as text


def keyed_records(
    records: list[Any],
    key_field: str,
    page_key: str,
    quarantine: Quarantine,
    missing_key_location: Callable[[int, dict], str] | None = None,
    screen_text: bool = False,
) -> Iterator[tuple[str, dict]]:
    """`(key, record)` for each record of a page that is an object with a usable key; the others are
    quarantined under `<page_key>/<position>` (or the location `missing_key_location` gives) with the reason.

    ``screen_text`` (the page held text that is not valid Unicode, see ``clients.json_bodies``) also
    quarantines the records carrying such text; one whose key is readable is noted in ``quarantine.held_keys``
    so its last good row is kept rather than taken for gone."""
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            quarantine.add(f"{page_key}/{position}", NOT_AN_OBJECT, record)
            continue
        key, _ = as_text(record.get(key_field))
        key = key.strip() if key else None
        if screen_text and has_invalid_text(record):
            quarantine.add(f"{page_key}/{position}", INVALID_TEXT, record)
            if key and not has_invalid_text(key):
                quarantine.held_keys.append(key)
            continue
        if not key:
            location = missing_key_location(position, record) if missing_key_location else str(position)
            quarantine.add(f"{page_key}/{location}", MISSING_ID, record)
            continue
        yield key, record


@dataclass
class Quarantine:
    """Collects unrepresentable records of one page: a location key and a reason, never the values."""

    source: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    held_keys: list[str] = field(default_factory=list)  # quarantined records known to exist (see keyed_records)

    def add(self, record_key: str, reason: str, record: Any) -> None:
        self.rows.append((record_key, reason, excerpt_keys(record)))

    def extend(self, rows: list[tuple[str, str, str]]) -> None:
        """Adds rows collected elsewhere (e.g. by a worker process)."""
        self.rows.extend(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def item(self, now: datetime) -> Any:
        """The collected rows as a dlt item routed to the ``quarantine`` table (appended, never merged)."""
        data = {
            "source": [self.source] * len(self.rows),
            "record_key": [r[0] for r in self.rows],
            "reason": [r[1] for r in self.rows],
            "payload_excerpt": [r[2] for r in self.rows],
            "quarantined_at": [now] * len(self.rows),
        }
        # as rows, not an Arrow table: an incremental resource (Salesforce's cursor on system_modstamp) lets
        # rows without the cursor column through, where an Arrow table without it fails the extract
        rows = table_from_columns(QUARANTINE_SCHEMA, data).to_pylist()
        self.rows = []
        return routed(rows, QUARANTINE_TABLE, QUARANTINE, write_disposition="append")


@dataclass
class LoadCounts:
    """What one extraction did, for logs and run metadata: counts only, never values."""

    fetched: int = 0
    emitted: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    pages: int = 0
    flagged: int = 0
    flags: Counter = field(default_factory=Counter)

    def count_flags(self, flag_texts: list[str]) -> None:
        for text in flag_texts:
            if text:
                self.flagged += 1
                self.flags.update(text.split(","))

    def as_dict(self) -> dict[str, int]:
        data = {
            "records_fetched": self.fetched,
            "rows_emitted": self.emitted,
            "rows_unchanged": self.unchanged,
            "rows_deleted": self.deleted,
            "records_quarantined": self.quarantined,
            "pages": self.pages,
            "rows_flagged": self.flagged,
        }
        data.update({f"flag_{name}": count for name, count in sorted(self.flags.items())})
        return data


def table_summary(warehouse_path: str, dataset: str, table: str) -> dict[str, int]:
    """Row, deletion and quality-flag counts of a loaded raw table (read-only; counts only, no values)."""
    con = duckdb.connect(warehouse_path, read_only=True)
    try:
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [dataset, table],
        ).fetchall()[0][0]
        if not exists:
            return {}
        total, deleted, flagged = con.execute(
            f"select count(*), count(*) filter (where is_deleted), "
            f"count(*) filter (where coalesce(quality_flags, '') <> '') from \"{dataset}\".\"{table}\""
        ).fetchall()[0]
        per_flag = con.execute(
            f"select flag, count(*) from (select unnest(string_split(quality_flags, ',')) as flag "
            f"from \"{dataset}\".\"{table}\" where coalesce(quality_flags, '') <> '') group by flag"
        ).fetchall()
        quarantined = 0
        if con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [dataset, QUARANTINE_TABLE],
        ).fetchall()[0][0]:
            quarantined = con.execute(f'select count(*) from "{dataset}"."{QUARANTINE_TABLE}"').fetchall()[0][
                0
            ]
    finally:
        con.close()
    summary = {
        "rows_total": int(total),
        "rows_deleted": int(deleted),
        "rows_flagged": int(flagged),
        "rows_quarantined_total": int(quarantined),
    }
    summary.update({f"flag_{name}": int(count) for name, count in sorted(per_flag)})
    return summary
