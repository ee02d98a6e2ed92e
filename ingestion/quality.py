"""Quarantine of records that cannot be represented, and PII-free summaries of what a load flagged."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clients.json_bodies import has_invalid_text
from ingestion.columns import QUARANTINE, arrow_schema, routed, table_from_columns
from ingestion.normalize import as_text, excerpt_keys
from warehouse import Warehouse

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


def table_summary(warehouse: Warehouse, dataset: str, table: str) -> dict[str, int]:
    """Row, deletion and quality-flag counts of a loaded raw table (read-only; counts only, no values)."""
    with warehouse.connect(read_only=True) as con:
        if not con.table_exists(dataset, table):
            return {}
        total, deleted, flagged = con.fetchone(
            f"select count(*), count(*) filter (where is_deleted), "
            f"count(*) filter (where coalesce(quality_flags, '') <> '') from \"{dataset}\".\"{table}\""
        )
        per_flag = con.execute(
            f"select flag, count(*) from (select unnest(string_to_array(quality_flags, ',')) as flag "
            f"from \"{dataset}\".\"{table}\" where coalesce(quality_flags, '') <> '') as flags group by flag"
        )
        quarantined = 0
        if con.table_exists(dataset, QUARANTINE_TABLE):
            quarantined = con.scalar(f'select count(*) from "{dataset}"."{QUARANTINE_TABLE}"')
    summary = {
        "rows_total": int(total),
        "rows_deleted": int(deleted),
        "rows_flagged": int(flagged),
        "rows_quarantined_total": int(quarantined),
    }
    summary.update({f"flag_{name}": int(count) for name, count in sorted(per_flag)})
    return summary


# A load may remove at most this share of a raw table's live rows before the linking stops for a person to look:
# a directory or CRM does not lose half its users between two runs, a broken filter, tenant or permission does.
MAX_LIVE_ROW_DROP = 0.5
# Below this many rows a drop says little (a test tenant, a new system, the last user of a directory deleted):
# smaller tables and loads are not judged.
MIN_ROWS_TO_JUDGE = 100


@dataclass(frozen=True)
class VolumeVerdict:
    """Whether a raw table's live rows after a load are plausible, why, and the count later loads compare to."""

    passed: bool
    reason: str
    baseline: int | None  # live rows of the last accepted load (this one's when it passed); None before any
    previous: int | None = None  # the baseline this load was judged against


# beside each raw dataset's tables: the live rows of the last accepted load of each, so the baseline lives and
# dies with the data it describes (a new or rebuilt warehouse starts without one)
BASELINES_TABLE = "volume_baselines"


def judge_load(location: Warehouse | str | os.PathLike, dataset: str, table: str, live: int, loaded: int, *,
               accept_drop: bool = False) -> VolumeVerdict:
    """Judge a load of ``dataset.table`` against the baseline the warehouse keeps for it (``judge_volume``), and
    keep the verdict's baseline for the next load."""
    with Warehouse.of(location).connect() as con:
        con.execute(f'create schema if not exists "{dataset}"')
        con.execute(f'create table if not exists "{dataset}".{BASELINES_TABLE} (table_name varchar primary key, '
                    "live_rows bigint not null, judged_at timestamp not null)")
        baseline = con.scalar(f'select live_rows from "{dataset}".{BASELINES_TABLE} where table_name = ?', [table])
        verdict = judge_volume(live, loaded, baseline, accept_drop=accept_drop)
        if verdict.baseline is not None:
            con.execute(f'insert into "{dataset}".{BASELINES_TABLE} values (?, ?, ?) on conflict (table_name) '
                        "do update set live_rows = excluded.live_rows, judged_at = excluded.judged_at",
                        [table, verdict.baseline, datetime.now()])
    return verdict


def judge_volume(live: int, loaded: int, baseline: int | None, *, accept_drop: bool = False,
                 max_drop: float = MAX_LIVE_ROW_DROP, min_rows: int = MIN_ROWS_TO_JUDGE) -> VolumeVerdict:
    """Judge the live (not deleted) rows a load left against the live rows of the last accepted load
    (``baseline``; None before the first). ``loaded`` is the rows this load wrote; ``accept_drop`` is a person's
    word that a large removal is real: the load passes and becomes the new baseline."""
    problem = None
    if live == 0 and loaded >= min_rows:
        problem = f"the load wrote {loaded} rows and left none live"
    elif baseline and baseline >= min_rows and live == 0:
        problem = f"live rows fell from {baseline} to 0"
    elif baseline and baseline >= min_rows and live < baseline * (1 - max_drop):
        problem = (f"live rows fell from {baseline} to {live} (-{1 - live / baseline:.0%}), more than the "
                   f"{max_drop:.0%} one load may remove")
    if problem is None:
        return VolumeVerdict(True, f"{live} live rows" + (" (first load)" if baseline is None
                                                          else f" (last accepted load: {baseline})"), live, baseline)
    if accept_drop:
        return VolumeVerdict(True, f"{problem} (accepted)", live, baseline)
    return VolumeVerdict(False, problem, baseline, baseline)
