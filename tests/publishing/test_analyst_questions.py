"""The README's questions analysts ask are SQL that runs, as written, against the published analyst database (and
against the Postgres schema `links`: tests/orchestration/test_postgres_warehouse.py)."""
from __future__ import annotations

import duckdb
import pytest

from publishing import ANALYST, publish_files
from reverse_etl.state import Outcome, StateStore, SyncRecord
from tests.publishing.support import build_warehouse, questions
from warehouse import DuckDBConnection


@pytest.fixture(scope="module")
def analyst_db(tmp_path_factory):
    def an_earlier_push_refused_one_contact(con):  # for "what failed to sync"
        store = StateStore(DuckDBConnection(con), "salesforce", "run-1")
        record = SyncRecord(key="b2c:u1", operation="create_contact", payload={"Email": "x"},
                            rule="consented_without_contact")
        store.record_intent([record])
        store.record_outcomes([(record, Outcome.failure(record.key, "INVALID_EMAIL_ADDRESS", "email refused"), 1)])

    workdir = tmp_path_factory.mktemp("questions")
    built = build_warehouse(workdir, size=600, seed=8, before_build=an_earlier_push_refused_one_contact)
    path = workdir / "analyst.duckdb"
    publish_files(built.path, {ANALYST: path}, "run-2", "salt")
    return path


def test_the_readme_asks_every_question_the_issue_names():
    assert len(questions()) >= 5


@pytest.mark.parametrize("sql", questions(), ids=lambda sql: sql.split("from ")[1].split()[0])
def test_each_question_runs_against_the_analyst_database_and_answers(analyst_db, sql):
    with duckdb.connect(str(analyst_db), read_only=True) as con:
        rows = con.execute(sql).fetchall()
    assert rows, "each question has an answer in a small synthetic world"


def test_what_failed_to_sync_names_the_error(analyst_db):
    failed = next(sql for sql in questions() if "sync_outcomes" in sql)
    with duckdb.connect(str(analyst_db), read_only=True) as con:
        assert con.execute(failed).fetchall()[0][:3] == ("salesforce", "create_contact", "INVALID_EMAIL_ADDRESS")
