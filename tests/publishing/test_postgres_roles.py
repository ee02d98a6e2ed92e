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
    ("alice", "personal.identities", False),
    ("alice", "audit.writes", False),
    ("alice", "marts.contacts_to_create", False),
    ("sam", "links.link_conflicts", True),
    ("sam", "personal.identities", True),
    ("sam", "audit.writes", False),
    ("cora", "audit.writes", True),
    ("cora", "links.identity_contact_links", False),
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
