"""Erasure without a sandbox: what apply_erasures removes and keeps, the CRM policy it records, which requests it
takes, that any raw_<system> table is covered, and that only a rewrite of the DuckDB file drops the old blocks."""
from __future__ import annotations

import shutil

import duckdb
import pyarrow as pa
import pytest
from dlt.extract import DltResource

from inbox import Inbox, InboxEvent
from ingestion.suppression import leave_out
from privacy import CrmPolicy, apply_erasures, compact_warehouse, erased_record_ids
from privacy.__main__ import main as privacy_command
from tests.publishing.support import build_warehouse


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_warehouse(tmp_path_factory.mktemp("erasure"), size=150, seed=4)


@pytest.fixture
def warehouse(built, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built.path, path)
    return path


def _linked_person(path) -> tuple[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select identity_id, contact_id from marts.identity_contact_links "
                           "where identity_provider = 'b2c' and crm = 'salesforce' and status = 'active' "
                           "order by identity_id limit 1").fetchone()


def _count(path, sql, params=()) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchone()[0]


def _request(tmp_path, identity_id) -> Inbox:
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    assert inbox.request_erasure("b2c", identity_id, "ticket-1")
    assert not inbox.request_erasure("b2c", identity_id, "ticket-1"), "a repeated request is one request"
    return inbox


def test_an_erasure_removes_the_person_and_their_contact_from_raw_and_keeps_keys_and_time(warehouse, tmp_path):
    identity_id, contact_id = _linked_person(warehouse)
    inbox = _request(tmp_path, identity_id)
    inbox.put(InboxEvent(id="e1", source="b2c", kind="signUp", subject=identity_id, payload={"outcome": "linked"}))
    inbox.put(InboxEvent(id="e2", source="b2c", kind="signUp", subject="someone-else", payload={}))
    inbox.close()
    result = apply_erasures(warehouse, tmp_path / "inbox.sqlite3", CrmPolicy.DELETE)
    assert (result.erased, result.contacts, result.inbox_events) == (1, 1, 1)
    assert _count(warehouse, "select count(*) from raw_b2c.users where id = ?", [identity_id]) == 0
    assert _count(warehouse, "select count(*) from raw_salesforce.contact where id = ?", [contact_id]) == 0
    assert _count(warehouse, "select count(*) from raw_b2c.users") > 0, "nobody else is touched"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select identity_id, requested_by, crm_policy from privacy.erasures").fetchall() == [
            (identity_id, "ticket-1", "delete")]
        assert con.execute("select crm, contact_id, action from privacy.crm_erasure_actions").fetchall() == [
            ("salesforce", contact_id, "delete")]
    assert erased_record_ids(warehouse, "b2c") == {identity_id}
    assert erased_record_ids(warehouse, "salesforce") == {contact_id}
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    try:
        assert [e.id for e in inbox.after(0)] == ["e2"]
        assert inbox.pending_erasures() == []
    finally:
        inbox.close()
    again = apply_erasures(warehouse, tmp_path / "inbox.sqlite3", CrmPolicy.DELETE)
    assert again.erased == 0, "an applied request is not applied twice"


def test_clearing_only_the_external_id_leaves_the_contact_to_the_crm(warehouse, tmp_path):
    identity_id, contact_id = _linked_person(warehouse)
    _request(tmp_path, identity_id).close()
    apply_erasures(warehouse, tmp_path / "inbox.sqlite3", CrmPolicy.CLEAR_EXTERNAL_ID)
    assert _count(warehouse, "select count(*) from raw_salesforce.contact where id = ?", [contact_id]) == 1
    assert erased_record_ids(warehouse, "salesforce") == frozenset()
    assert _count(warehouse, "select count(*) from privacy.crm_erasure_actions "
                             "where action = 'clear_external_id'") == 1


def test_a_provider_deletion_is_an_erasure_only_when_configured(warehouse, tmp_path):
    with duckdb.connect(str(warehouse)) as con:
        deleted = con.execute("update raw_b2c.users set is_deleted = true where id = (select min(id) from "
                              "raw_b2c.users) returning id").fetchone()[0]
    assert apply_erasures(warehouse, None, CrmPolicy.ANONYMISE).erased == 0
    result = apply_erasures(warehouse, None, CrmPolicy.ANONYMISE, erase_deleted=True)
    assert result.erased == 1
    assert _count(warehouse, "select count(*) from privacy.erasures where identity_id = ? "
                             "and requested_by = 'provider_deletion'", [deleted]) == 1


def test_every_raw_system_schema_is_covered_without_code_change(warehouse, tmp_path):
    identity_id, _ = _linked_person(warehouse)
    with duckdb.connect(str(warehouse)) as con:  # a source added later, and dlt's merge staging copy of it
        for schema in ("raw_b2c_staging", "raw_newsource"):
            con.execute(f"create schema if not exists {schema}")
        con.execute("create table raw_b2c_staging.users as select id, given_name from raw_b2c.users")
        con.execute("create table raw_newsource.users (id varchar, email varchar)")
        con.execute("insert into raw_newsource.users values ('n1', 'n1@example.org')")
        con.execute("create table raw_newsource.quarantine (record_key varchar, reason varchar)")
        con.execute("insert into raw_newsource.quarantine values ('n1', 'invalid_text')")
    _request(tmp_path, identity_id).close()
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    inbox.request_erasure("newsource", "n1", "ticket-2")
    inbox.close()
    apply_erasures(warehouse, tmp_path / "inbox.sqlite3", CrmPolicy.DELETE, providers=())
    assert _count(warehouse, "select count(*) from raw_b2c_staging.users where id = ?", [identity_id]) == 0
    assert _count(warehouse, "select count(*) from raw_newsource.users") == 0
    assert _count(warehouse, "select count(*) from raw_newsource.quarantine") == 0


def test_deleted_rows_stay_in_the_duckdb_file_until_it_is_rewritten(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    secret = "someone.unique@example.org"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema privacy")
        con.execute("create table privacy.erasures (identity_provider varchar, identity_id varchar, "
                    "requested_by varchar, requested_at timestamp, erased_at timestamp, crm_policy varchar, "
                    "compacted_at timestamp)")
        con.execute("create table people as select 'p' || i as id, case when i = 7 then ? else 'x' || i || "
                    "'@example.org' end as email from range(5000) t(i)", [secret])
        con.execute("checkpoint")
        con.execute("delete from people where email = ?", [secret])
        con.execute("checkpoint")
    assert secret.encode() in path.read_bytes(), "DuckDB keeps the deleted value's old block"
    assert not compact_warehouse(path), "nothing to do while no erasure waits for it"
    with duckdb.connect(str(path)) as con:
        con.execute("insert into privacy.erasures values ('b2c', 'p7', 't', now(), now(), 'delete', null)")
    assert compact_warehouse(path)
    assert secret.encode() not in path.read_bytes()
    assert _count(path, "select count(*) from people") == 4999
    assert _count(path, "select count(*) from privacy.erasures where compacted_at is not null") == 1


def test_ingestion_leaves_erased_records_out_of_arrow_pages_and_dict_items():
    source_items = [pa.table({"id": ["a", "b", None], "v": [1, 2, 3]}), {"id": "b", "v": 4}, {"id": "c", "v": 5}]

    class Source:  # the part of a dlt source leave_out uses
        def __init__(self) -> None:
            self.resources = {"users": DltResource.from_data(source_items, name="users")}

    loaded = list(leave_out(Source(), {"b"}).resources["users"])
    tables = [item for item in loaded if isinstance(item, pa.Table)]
    assert tables[0].column("id").to_pylist() == ["a", None]
    assert [item for item in loaded if isinstance(item, dict)] == [{"id": "c", "v": 5}]


def test_the_command_records_a_request_once_and_lists_what_waits(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GATEWAY_INBOX_PATH", str(tmp_path / "inbox.sqlite3"))
    assert privacy_command(["erase", "--provider", "b2c", "--identity-id", "u-1", "--requested-by", "t-9"]) == 0
    assert privacy_command(["erase", "--provider", "b2c", "--identity-id", "u-1", "--requested-by", "t-9"]) == 0
    assert privacy_command(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert '"requested":true' in lines[0] and '"already_requested":true' in lines[1]
    assert '"identity_id":"u-1"' in lines[2] and '"requested_by":"t-9"' in lines[2]
