"""Retention with a controlled clock: each kind of record goes once it is older than its own period, and not a
day before; a purged tombstone's personal data leaves the DuckDB file too."""
from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from inbox import Inbox, InboxEvent
from privacy import purge_expired
from reverse_etl.state import ensure_schema
from settings import RetentionSettings
from tests.publishing.support import build_warehouse

NOW = datetime.now(UTC).replace(tzinfo=None)  # the inbox stamps events with the real clock
PERIODS = RetentionSettings(tombstone_days=30, snapshot_days=365, sync_log_days=180, dead_letter_days=90,
                            inbox_days=7)
GONE_EMAIL = "long.gone@example.org"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_warehouse(tmp_path_factory.mktemp("retention"), size=80, seed=6)


@pytest.fixture
def world(built, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built.path, path)
    day = timedelta(days=1)
    with duckdb.connect(str(path)) as con:
        ensure_schema(con)
        ids = [i for (i,) in con.execute("select id from raw_b2c.users order by id limit 2").fetchall()]
        # a tombstone deleted 31 days ago (with its last known email) and one deleted 29 days ago
        con.execute("update raw_b2c.users set is_deleted = true, deleted_at = ?, mail = ?, sign_in_email = ? "
                    "where id = ?", [NOW - 31 * day, GONE_EMAIL, GONE_EMAIL, ids[0]])
        con.execute("update raw_b2c.users set is_deleted = true, deleted_at = ? where id = ?", [NOW - 29 * day, ids[1]])
        con.execute("checkpoint")
        for age in (181, 179):
            con.execute("insert into reverse_etl.sync_log (run_id, system, operation, record_key, payload_hash, "
                        "outcome, error_code, error_message, attempt, logged_at) values ('r', 'salesforce', "
                        "'create_contact', ?, 'h', "
                        "'succeeded', null, null, 1, ?)", [f"k{age}", NOW - age * day])
        for age in (91, 89):
            con.execute("insert into reverse_etl.dead_letters values ('salesforce', ?, 'h', 'E', 'm', 3, ?, ?)",
                        [f"d{age}", NOW - 200 * day, NOW - age * day])
        con.execute("update snapshots.identity_contact_links_snapshot set dbt_valid_to = ? where identity_id = "
                    "(select min(identity_id) from snapshots.identity_contact_links_snapshot)", [NOW - 366 * day])
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    for event_id in ("old", "unhandled"):
        inbox.put(InboxEvent(id=event_id, source="b2c", kind="signUp", subject=event_id))
    inbox.mark_processed(["old"])
    inbox.close()
    return path, ids, tmp_path / "inbox.sqlite3"


def _ids(path, sql) -> set:
    with duckdb.connect(str(path), read_only=True) as con:
        return {row[0] for row in con.execute(sql).fetchall()}


def test_each_kind_of_record_goes_after_its_own_period_and_not_before(world):
    path, ids, inbox_path = world
    assert GONE_EMAIL.encode() in path.read_bytes()
    versions_before = len(_ids(path, "select dbt_scd_id from snapshots.identity_contact_links_snapshot"))
    result = purge_expired(path, inbox_path, PERIODS, now=NOW + timedelta(days=8))
    # the clock moved 8 days: the inbox event handed on today is past its 7 days, and the younger tombstone
    # (29 days) past its 30
    assert result.inbox_events == 1
    remaining = _ids(path, "select id from raw_b2c.users")
    assert ids[0] not in remaining and ids[1] not in remaining, "both tombstones are past 30 days at NOW + 8"
    assert _ids(path, "select record_key from reverse_etl.sync_log") == set()
    assert _ids(path, "select record_key from reverse_etl.dead_letters") == set()
    assert len(_ids(path, "select dbt_scd_id from snapshots.identity_contact_links_snapshot")) == versions_before - 1
    assert GONE_EMAIL.encode() not in path.read_bytes(), "the purged tombstone's data left the file"
    assert result.rewritten
    inbox = Inbox(inbox_path)
    try:
        assert [e.id for e in inbox.after(0)] == ["unhandled"], "an event not handed on yet is kept"
    finally:
        inbox.close()


def test_nothing_younger_than_its_period_goes(world):
    path, ids, inbox_path = world
    result = purge_expired(path, inbox_path, PERIODS, now=NOW)
    assert (result.tombstones, result.sync_log, result.dead_letters, result.snapshot_versions,
            result.inbox_events) == (1, 1, 1, 1, 0)
    remaining = _ids(path, "select id from raw_b2c.users")
    assert ids[0] not in remaining and ids[1] in remaining
    assert _ids(path, "select record_key from reverse_etl.sync_log") == {"k179"}
    assert _ids(path, "select record_key from reverse_etl.dead_letters") == {"d89"}
