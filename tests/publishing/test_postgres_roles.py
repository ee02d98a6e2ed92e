"""Publishing on Postgres: the published schemas are swapped in and granted to real roles; a role reads what the
matrix grants it and is refused everything else, and a reader mid-transaction neither holds up a publication
nor sees anything but one complete run."""
from __future__ import annotations

import threading
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from publishing import publish_schemas
from sandbox.synthetic import generate
from tests.dbt.dbt_cli import run_dbt
from tests.dbt.raw_loader import raw_tables
from tests.dbt.test_postgres_build import load_into_postgres

pytestmark = pytest.mark.postgres

PEOPLE = {"alice": "idlink_analyst", "sam": "idlink_steward", "cora": "idlink_compliance", "mallory": None}


def _as(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port}"))


@pytest.fixture(scope="module")
def published(postgres_url, tmp_path_factory):
    data = generate(120, seed=9)
    dsn = psycopg2.extensions.parse_dsn(postgres_url)
    conn = psycopg2.connect(postgres_url)
    load_into_postgres(conn, raw_tables(data.users, data.contacts, data.akamai_users))
    env = {"DBT_TARGET": "postgres", "DBT_POSTGRES_HOST": dsn.get("host", "localhost"),
           "DBT_POSTGRES_PORT": str(dsn.get("port", 5432)), "DBT_POSTGRES_USER": dsn.get("user", "postgres"),
           "DBT_POSTGRES_PASSWORD": dsn.get("password", ""), "DBT_POSTGRES_DBNAME": dsn["dbname"]}
    run = run_dbt(["build", "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"],
                  tmp_path_factory.mktemp("pg-publish") / "target", env)
    assert run.returncode == 0, run.output[-4000:]
    publish_schemas(conn, "run-1", "salt")
    with conn, conn.cursor() as cur:
        for person, role in PEOPLE.items():
            cur.execute(f"create role {person} login")
            if role:
                cur.execute(f"grant {role} to {person}")
    yield conn
    conn.close()


def _reads(url: str, person: str, relation: str) -> bool:
    conn = psycopg2.connect(_as(url, person))
    try:
        with conn.cursor() as cur:
            cur.execute(f"select count(*) from {relation}")
            return True
    except psycopg2.errors.InsufficientPrivilege:
        return False
    finally:
        conn.close()


@pytest.mark.parametrize(("person", "relation", "allowed"), [
    ("alice", "links.identity_contact_links", True),
    ("alice", "links.contacts_to_create", True),
    ("alice", "links.link_evidence", True),
    ("alice", "personal.identities", False),
    ("alice", "audit.writes", False),
    ("alice", "marts.contacts_to_create", False),
    ("sam", "links.link_conflicts", True),
    ("sam", "personal.identities", True),
    ("sam", "audit.writes", False),
    ("cora", "audit.writes", True),
    ("cora", "links.identity_contact_links", False),
    ("cora", "links.link_evidence", False),
    ("cora", "personal.identities", False),
    ("mallory", "links.identity_contact_links", False),
    ("mallory", "personal.identities", False),
    ("mallory", "audit.writes", False),
])
def test_each_role_reads_what_it_is_granted_and_is_refused_the_rest(published, postgres_url, person, relation,
                                                                   allowed):
    assert _reads(postgres_url, person, relation) is allowed


def test_the_published_tables_carry_the_run_and_mask_personal_fields(published):
    with published.cursor() as cur:
        cur.execute("select distinct published_run_id from links.identity_contact_links")
        assert cur.fetchall() == [("run-1",)]
        cur.execute("select email_masked, email_key from links.contacts_to_create where email_masked is not null")
        masked, key = cur.fetchone()
        cur.execute("select count(*) from personal.contacts_to_create where email like %s", [masked[0] + "%"])
        assert "***@" in masked and len(key) == 64 and cur.fetchone()[0] >= 1


EVIDENCE = ("identity_provider, identity_id, crm, contact_id, model_version, decision, match_probability, "
            "match_weight, position, comparison, level, level_name, level_weight, term_frequency_adjustment, weight")


def test_link_evidence_is_a_view_over_the_published_scores_with_the_warehouse_rows(published):
    with published, published.cursor() as cur:
        cur.execute("select table_type from information_schema.tables where table_schema = 'links' "
                    "and table_name = 'link_evidence'")
        assert cur.fetchall() == [("VIEW",)]
        cur.execute(f"select count(*) from (select {EVIDENCE} from links.link_evidence "
                    f"except all select {EVIDENCE} from marts.link_evidence) as extra")
        extra = cur.fetchone()[0]
        cur.execute(f"select count(*) from (select {EVIDENCE} from marts.link_evidence "
                    f"except all select {EVIDENCE} from links.link_evidence) as missing")
        missing = cur.fetchone()[0]
        cur.execute("select count(*), count(distinct published_run_id) from links.link_evidence")
        rows, runs = cur.fetchone()
    assert (extra, missing) == (0, 0) and rows > 0 and runs == 1


def test_keyed_hashes_are_the_same_on_postgres_and_duckdb(published):
    import duckdb

    with published.cursor() as cur:
        cur.execute("select set_config('idlink.hash_salt', 'salt', false)")
        cur.execute("select encode(sha256(convert_to(current_setting('idlink.hash_salt', true) || ':' || "
                    "'someone@example.com', 'UTF8')), 'hex')")
        on_postgres = cur.fetchone()[0]
    with duckdb.connect() as con:
        con.execute("set variable idlink_hash_salt = 'salt'")
        on_duckdb = con.execute("select sha256(getvariable('idlink_hash_salt') || ':' || "
                                "'someone@example.com')").fetchone()[0]
    assert on_postgres == on_duckdb


def test_a_reader_mid_transaction_keeps_its_run_and_does_not_hold_up_the_next_publication(published,
                                                                                       postgres_url):
    reader = psycopg2.connect(_as(postgres_url, "alice"))
    try:
        with reader.cursor() as cur:
            cur.execute("begin isolation level repeatable read")
            cur.execute("select distinct published_run_id from links.identity_contact_links")
            assert cur.fetchall() == [("run-1",)]
            cur.execute("select count(*) from links.link_evidence")  # a published view read too
            done = threading.Event()
            worker = threading.Thread(target=lambda: (publish_schemas(published, "run-2", "salt",
                                                                      lock_timeout_s=1.0), done.set()))
            worker.start()
            worker.join(timeout=60)
            assert done.is_set(), "the publication waited for the reader"
            cur.execute("select distinct published_run_id from links.identity_contact_links")
            assert cur.fetchall() == [("run-1",)], "a reader's transaction sees one complete run"
            cur.execute("commit")
            cur.execute("select distinct published_run_id from links.identity_contact_links")
            assert cur.fetchall() == [("run-2",)]
    finally:
        reader.close()


def test_a_published_view_whose_definition_changed_is_created_again_and_one_no_longer_recorded_goes(published):
    with published, published.cursor() as cur:
        cur.execute("insert into publishing.views values ('links', 'prior_weights', "
                    "'select model_version, level_weight from links.comparison_levels where position = 0', now())")
    publish_schemas(published, "run-3", "salt")
    with published, published.cursor() as cur:
        cur.execute("select count(*) from links.prior_weights")
        assert cur.fetchone()[0] >= 1
        cur.execute("update publishing.views set definition = 'select 1 as one' where name = 'prior_weights'")
    publish_schemas(published, "run-4", "salt")
    with published, published.cursor() as cur:
        cur.execute("select * from links.prior_weights")
        assert cur.fetchall() == [(1,)]
        cur.execute("delete from publishing.views where name = 'prior_weights'")
    publish_schemas(published, "run-5", "salt")
    with published, published.cursor() as cur:
        cur.execute("select to_regclass('links.prior_weights')")
        assert cur.fetchone() == (None,)
