"""The linking project is portable: the same raw tables loaded into a real Postgres server build with
`dbt build --target postgres` (models, seed, snapshot, data tests, unit tests) and link the same people."""
from __future__ import annotations

import duckdb
import psycopg2
import psycopg2.extras
import pyarrow as pa
import pytest

from sandbox.synthetic import generate
from tests.dbt.dbt_cli import run_dbt
from tests.dbt.raw_loader import raw_tables

pytestmark = pytest.mark.postgres

_PG_TYPES = {pa.string(): "text", pa.bool_(): "boolean"}


def _pg_type(dtype: pa.DataType) -> str:
    if pa.types.is_timestamp(dtype):
        return "timestamptz" if dtype.tz else "timestamp"
    return _PG_TYPES[dtype]


def _pg_value(value):
    # Postgres text cannot hold NUL; the synthetic data's control-character defects carry some
    return value.replace("\x00", "") if isinstance(value, str) else value


def load_into_postgres(conn, tables) -> None:
    with conn, conn.cursor() as cur:
        for (dataset, table), rows in tables.items():
            columns = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in rows.schema)
            cur.execute(f'create schema if not exists "{dataset}"')
            cur.execute(f'create table "{dataset}"."{table}" ({columns})')
            names = ", ".join(f'"{n}"' for n in rows.schema.names)
            psycopg2.extras.execute_values(
                cur, f'insert into "{dataset}"."{table}" ({names}) values %s',
                [tuple(_pg_value(v) for v in r.values()) for r in rows.to_pylist()], page_size=1000)


@pytest.fixture(scope="module")
def postgres_build(postgres_url, tmp_path_factory):
    data = generate(400, seed=5)
    dsn = psycopg2.extensions.parse_dsn(postgres_url)
    conn = psycopg2.connect(postgres_url)
    try:
        load_into_postgres(conn, raw_tables(data.users, data.contacts, data.akamai_users))
        env = {"DBT_TARGET": "postgres", "DBT_POSTGRES_HOST": dsn.get("host", "localhost"),
               "DBT_POSTGRES_PORT": str(dsn.get("port", 5432)), "DBT_POSTGRES_USER": dsn.get("user", "postgres"),
               "DBT_POSTGRES_PASSWORD": dsn.get("password", ""), "DBT_POSTGRES_DBNAME": dsn["dbname"]}
        run = run_dbt(["build"], tmp_path_factory.mktemp("pg") / "target", env)
        yield data, conn, run
    finally:
        conn.close()


def test_dbt_build_on_postgres_passes_every_node(postgres_build):
    _, _, run = postgres_build
    assert run.returncode == 0, run.output[-4000:]
    assert {r["unique_id"].split(".")[0] for r in run.results} >= {"model", "test", "unit_test", "snapshot"}
    assert run.failures() == []


def test_postgres_links_are_true_pairs_of_consented_identities(postgres_build):
    data, conn, run = postgres_build
    assert run.returncode == 0, run.output[-4000:]
    truth = {(p.identity_id, p.contact_id) for p in data.truth}
    with conn.cursor() as cur:
        cur.execute("select identity_id, contact_id from marts.identity_contact_links where status = 'active'")
        active = set(cur.fetchall())
        cur.execute("select identity_id, duplicate_contact_id from marts.crm_duplicate_contacts")
        duplicates = set(cur.fetchall())
    linkable = {(p.identity_id, p.contact_id) for p in data.truth
                if p.evidence != "none" and data.identity_consent.get(p.identity_id) == "granted"}
    assert len(active) > 50
    assert active <= truth
    assert len((active | duplicates) & linkable) / len(linkable) >= 0.9


NAME_PAIRS = [("martha", "marhta"), ("katherine", "katherinr"), ("zoe", "zeo"), ("michelle", "michael"),
              ("dixon", "dicksonx"), ("ry", "roy"), ("anna", "peter"), ("calder crescent", "caldor road"),
              ("a", "a"), ("jose", "josef"), ("abc", "cba"), ("crosswell", "cooper")]


def test_postgres_compares_names_and_edits_exactly_as_duckdb(postgres_build):
    """The engine setup gives Postgres the Jaro-Winkler similarity and the edit distance DuckDB has built in, so a
    comparison level's threshold means the same on both (on the ASCII match keys staging makes of names and
    streets)."""
    _, conn, run = postgres_build
    assert run.returncode == 0, run.output[-4000:]
    with conn.cursor() as cur:
        postgres = []
        for a, b in NAME_PAIRS:
            cur.execute("select public.idlink_jaro_winkler(%s, %s), public.idlink_damerau_levenshtein(%s, %s)",
                        [a, b, a, b])
            postgres.append(cur.fetchone())
    with duckdb.connect() as con:
        duck = [con.execute("select jaro_winkler_similarity(?, ?), damerau_levenshtein(?, ?)", [a, b, a, b]).fetchone()
                for a, b in NAME_PAIRS]
    for (a, b), (pg_similarity, pg_edits), (duck_similarity, duck_edits) in zip(NAME_PAIRS, postgres, duck):
        assert pg_similarity == pytest.approx(duck_similarity, abs=1e-9), (a, b)
        assert pg_edits == duck_edits, (a, b)
