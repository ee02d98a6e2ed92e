"""Dead letters are replayed by a command, never by editing SQL: chosen by system, error code or key (or all),
handed back to the next push, and audited in sync_log."""
from __future__ import annotations

import duckdb
import orjson
import pytest

from reverse_etl.__main__ import main
from reverse_etl.runner import push_salesforce, run_sync
from reverse_etl.state import Outcome, SyncRecord
from tests.reverse_etl.marts import contact_row, write_marts
from tests.reverse_etl.scenario import build_world, identity_id
from tests.reverse_etl.test_sync_framework import ScriptedWriter
from warehouse import DuckDBConnection, Warehouse


class OtherSystem(ScriptedWriter):
    system = "other"


def dead_letter_world(path) -> None:
    """Two systems with dead letters of two codes: fake id-0 (LOCKED) and id-1 (REFUSED), other id-0 (REFUSED)."""
    codes = {"id-0": "LOCKED", "id-1": "REFUSED"}
    with Warehouse(path).connect() as con:
        run_sync(con, ScriptedWriter(lambda r, n: Outcome.failure(r.key, codes[r.key], give_up=True)),
                 [SyncRecord(k, "write", {"v": k}) for k in codes], "run-1")
        run_sync(con, OtherSystem(lambda r, n: Outcome.failure(r.key, "REFUSED", give_up=True)),
                 [SyncRecord("id-0", "write", {"v": 1})], "run-1")


def replay(path, *args: str, capsys) -> dict:
    assert main(["replay", "--warehouse", str(path), "--run-id", "replay-1", *args]) == 0
    return orjson.loads(capsys.readouterr().out.splitlines()[-1])


def remaining(path) -> list[tuple]:
    with duckdb.connect(str(path)) as con:
        return con.execute("select system, record_key from reverse_etl.dead_letters order by 1, 2").fetchall()


@pytest.mark.parametrize(("args", "left"), [
    (("--error-code", "REFUSED"), [("fake", "id-0")]),
    (("--system", "fake"), [("other", "id-0")]),
    (("--system", "fake", "--error-code", "REFUSED"), [("fake", "id-0"), ("other", "id-0")]),
    (("--key", "id-0"), [("fake", "id-1")]),
    (("--all",), []),
])
def test_replay_takes_the_dead_letters_every_given_filter_matches(tmp_path, capsys, args, left):
    path = tmp_path / "wh.duckdb"
    dead_letter_world(path)
    result = replay(path, *args, capsys=capsys)
    assert result["replayed"] == 3 - len(left) and remaining(path) == left


def test_replay_without_a_filter_or_all_is_refused(tmp_path, capsys):
    path = tmp_path / "wh.duckdb"
    dead_letter_world(path)
    assert main(["replay", "--warehouse", str(path)]) == 2
    assert len(remaining(path)) == 3


def test_a_replayed_record_is_audited_and_sent_again_by_the_next_push(tmp_path, capsys):
    path = tmp_path / "wh.duckdb"
    dead_letter_world(path)
    replay(path, "--system", "fake", "--error-code", "LOCKED", capsys=capsys)
    with duckdb.connect(str(path)) as con:
        assert con.execute("""select run_id, system, operation, record_key, outcome, error_code, attempt
                              from reverse_etl.sync_log where run_id = 'replay-1'""").fetchall() == [
            ("replay-1", "fake", "replay", "id-0", "replay_requested", "LOCKED", 0)]
        assert con.execute("select record_key, attempts from reverse_etl.pending").fetchall() == [("id-0", 0)]
        writer = ScriptedWriter()
        result = run_sync(DuckDBConnection(con), writer, [SyncRecord(k, "write", {"v": k}) for k in ("id-0", "id-1")],
                          "run-2")
    assert (result.attempted, result.succeeded, result.parked) == (1, 1, 1)
    assert writer.sends == {"id-0": 1}


def test_a_contact_refused_by_a_duplicate_rule_is_created_after_the_rule_is_lifted_and_it_is_replayed(
        sandbox_factory, tmp_path, capsys):
    world = build_world(sandbox_factory, tmp_path, creates=0, links=1)
    world.sandbox.configure(duplicate_rule="block")
    ident = identity_id(91)
    write_marts(world.warehouse, contacts=[contact_row(ident, 91, email="existing0@example.org")])
    for run in range(3):
        push_salesforce(world.warehouse, world.salesforce, world.mapping, f"run-{run}")
    assert remaining(world.warehouse) == [("salesforce", f"b2c:{ident}")]

    world.sandbox.configure(duplicate_rule="off")  # the CRM team lifted the rule
    assert push_salesforce(world.warehouse, world.salesforce, world.mapping, "run-3").attempted == 0
    replay(world.warehouse, "--error-code", "DUPLICATES_DETECTED", capsys=capsys)
    result = push_salesforce(world.warehouse, world.salesforce, world.mapping, "run-4")
    assert (result.attempted, result.succeeded, result.dead_letters_after) == (1, 1, 0)
    assert [c for c in world.contacts() if c.get("External_User_Id__c") == ident]
