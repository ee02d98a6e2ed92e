"""One warehouse interface over the DuckDB file and Postgres: the same SQL and the same Python rows on both, and
write locks that are the whole file on DuckDB but one scope each on Postgres."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from warehouse import Warehouse, load_scope, push_scope, redacted


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path):
    if request.param == "duckdb":
        return Warehouse(tmp_path / "warehouse.duckdb")
    return Warehouse(tmp_path / "local" / "warehouse.duckdb", request.getfixturevalue("postgres_url"))


def test_the_same_sql_with_python_rows_runs_on_either_engine(warehouse):
    rows = pa.table({"id": ["a", "b", None], "n": pa.array([1, 2, 3], pa.int64())})
    with warehouse.connect() as con:
        con.execute("create schema if not exists t")
        con.execute("create table t.kept (id text, n bigint)")
        with con.input_table("incoming", rows), con.transaction():
            con.execute("insert into t.kept select id, n from incoming where n >= ?", [2])
        assert sorted(con.execute("select coalesce(id, '-'), n from t.kept"), key=str) == [("-", 3), ("b", 2)]
        assert con.table_exists("t", "kept") and not con.table_exists("t", "missing")
        assert con.columns("t", "kept") == ["id", "n"]
        assert con.arrow("select n from t.kept where id = ?", ["b"]).column(0).to_pylist() == [2]


def test_a_failed_transaction_leaves_nothing_behind(warehouse):
    with warehouse.connect() as con:
        con.execute("create schema if not exists t")
        con.execute("create table t.atomic (n bigint)")
        with pytest.raises(RuntimeError), con.transaction():
            con.execute("insert into t.atomic values (1)")
            raise RuntimeError("interrupted")
        assert con.scalar("select count(*) from t.atomic") == 0


def _acquired_within(warehouse, scope, seconds: float, release: threading.Event) -> bool:
    acquired = threading.Event()

    def hold():
        with warehouse.exclusive(scope):
            acquired.set()
            release.wait(10)

    threading.Thread(target=hold, daemon=True).start()
    return acquired.wait(seconds)


def test_on_postgres_only_steps_of_the_same_scope_wait_for_each_other(postgres_url, tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", postgres_url)
    release = threading.Event()
    with warehouse.exclusive(push_scope("salesforce")):
        assert _acquired_within(warehouse, load_scope("raw_b2c"), 5, release), "another scope runs alongside"
        waiting = threading.Event()
        assert not _acquired_within(warehouse, push_scope("salesforce"), 1, waiting), "the same scope waits"
        started = time.monotonic()
    assert _acquired_within(warehouse, push_scope("b2c"), 5, release)
    waiting.set()
    release.set()
    assert time.monotonic() - started < 5


def test_on_duckdb_every_writing_step_waits_for_the_one_holding_the_file(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    release = threading.Event()
    with warehouse.exclusive(push_scope("salesforce")):
        assert not _acquired_within(warehouse, load_scope("raw_b2c"), 1, release)
    release.set()


def test_the_postgres_password_never_shows():
    warehouse = Warehouse(Path("w.duckdb"), "postgresql://idlink:s3cret@db.internal:5432/idlink")
    assert "s3cret" not in repr(warehouse) and "s3cret" not in str(warehouse) and "s3cret" not in warehouse.key
    assert redacted("postgresql://idlink:s3cret@db.internal:5432/idlink") == \
        "postgresql://idlink:***@db.internal:5432/idlink"
