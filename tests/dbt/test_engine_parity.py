"""DuckDB and Postgres make the same keys of the same names and compare them alike: the normalised key of any text,
and the project's Jaro-Winkler and Damerau-Levenshtein functions on Postgres against DuckDB's built-ins, so one set
of thresholds links the same people on both engines."""
from __future__ import annotations

import random
import unicodedata

import duckdb
import psycopg2
import psycopg2.extras
import pyarrow as pa
import pytest

from tests.dbt.dbt_cli import run_dbt

pytestmark = pytest.mark.postgres


def _pairs() -> list[tuple[str, str]]:
    """Names with the typos people make (swapped, dropped, doubled, replaced letters), unrelated names, empty and
    one-letter strings, and random strings over a small alphabet (many repeated letters, the hard cases)."""
    rng = random.Random(3)
    names = ["martha", "marhta", "dwayne", "duane", "dixon", "dicksonx", "jones", "johnson", "müller", "mueller",
             "o'brien", "obrien", "jean-luc", "jeanluc", "crate", "trace", "abc", "bca", "ca", "abc", "", "a"]
    pairs = [(a, b) for a in names for b in names]
    for _ in range(1500):
        a = "".join(rng.choice("abcab") for _ in range(rng.randint(0, 9)))
        b = list(a)
        for _ in range(rng.randint(0, 3)):
            op, k = rng.choice("sdit"), rng.randint(0, max(len(b) - 1, 0))
            if op == "s" and b:
                b[k] = rng.choice("abcd")
            elif op == "d" and b:
                del b[k]
            elif op == "i":
                b.insert(k, rng.choice("abcd"))
            elif op == "t" and len(b) > k + 1:
                b[k], b[k + 1] = b[k + 1], b[k]
        pairs.append((a, "".join(b)))
    return pairs


def _postgres_target(postgres_url: str) -> dict[str, str]:
    dsn = psycopg2.extensions.parse_dsn(postgres_url)
    return {"DBT_TARGET": "postgres", "DBT_POSTGRES_HOST": dsn.get("host", "localhost"),
            "DBT_POSTGRES_PORT": str(dsn.get("port", 5432)), "DBT_POSTGRES_USER": dsn.get("user", "postgres"),
            "DBT_POSTGRES_PASSWORD": dsn.get("password", ""), "DBT_POSTGRES_DBNAME": dsn["dbname"]}


def test_postgres_similarity_functions_equal_duckdb_builtins(postgres_url, tmp_path):
    run = run_dbt(["seed"], tmp_path / "target", _postgres_target(postgres_url))  # on-run-start creates them
    assert run.returncode == 0, run.output[-3000:]
    pairs = _pairs()
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("create temporary table pairs (n int, a text, b text)")
        psycopg2.extras.execute_values(cur, "insert into pairs values %s", [(n, a, b) for n, (a, b) in
                                                                             enumerate(pairs)])
        cur.execute("select n, public.idlink_jaro_winkler(a, b), public.idlink_damerau_levenshtein(a, b) "
                    "from pairs order by n")
        on_postgres = cur.fetchall()
    with duckdb.connect() as con:
        con.execute("create table pairs (n int, a text, b text)")
        con.executemany("insert into pairs values (?, ?, ?)", [(n, a, b) for n, (a, b) in enumerate(pairs)])
        on_duckdb = con.execute("select n, jaro_winkler_similarity(a, b), damerau_levenshtein(a, b) from pairs "
                                "order by n").fetchall()
    differing = [(pairs[p[0]], p[1:], d[1:]) for p, d in zip(on_postgres, on_duckdb)
                 if p[2] != d[2] or abs(p[1] - d[1]) > 1e-12]
    assert differing == []


# the combining blocks every script shares, which Postgres strips (macro postgres__strip_accents)
SHARED_MARKS = ((0x0300, 0x036F), (0x1AB0, 0x1ACE), (0x1DC0, 0x1DFF), (0x20D0, 0x20F0), (0xFE20, 0xFE2F))


def _texts() -> list[str]:
    """Every assigned character between two Latin letters (combining marks of one script's own block aside: they
    follow that script's letters, never a Latin one), and names spelt with and without their accents and letters."""
    texts = []
    for code in range(0x80, 0x110000):
        category = unicodedata.category(chr(code))
        if category in ("Cn", "Cs", "Co") or (category.startswith("M") and not any(
                low <= code <= high for low, high in SHARED_MARKS)):
            continue
        texts.append(f"a{chr(code)}b")
    return texts + ["Gudestraße 12", "Gudestrasse 12", "GEISSLER", "Geißler", "Łódź", "Lodz", "Ærø", "Aero",
                    "José", "Jose\u0301", "Noël", "ØRESUND", "Þórunn", "Œuvre", "Ǆurić", "İstanbul", "Ǿ", "Σοφία",
                    "Ж", "山田", "  Anna-Lena  O'Neil ", "x" * 201]


# each text's name key and its place in the order training draws its samples by
KEYED = "select n, {{ idlink.normalize_name('v') }}, row_number() over (order by {{ idlink.draw_order(['v']) }}) from texts"


def _compiled(env: dict[str, str], tmp_path) -> str:
    run = run_dbt(["compile", "--quiet", "--inline", KEYED], tmp_path, env)
    assert run.returncode == 0, run.output[-3000:]
    return run.output.strip()


def test_any_text_gets_the_same_name_key_and_place_in_trainings_draw_on_duckdb_and_postgres(postgres_url, tmp_path):
    texts = _texts()
    rows = list(enumerate(texts))
    on_duckdb_sql = _compiled({"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(tmp_path / "w.duckdb")},
                              tmp_path / "duckdb")
    on_postgres_sql = _compiled(_postgres_target(postgres_url), tmp_path / "postgres")
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("create temporary table texts (n int, v text)")
        psycopg2.extras.execute_values(cur, "insert into texts values %s", rows, page_size=10_000)
        cur.execute(on_postgres_sql)
        on_postgres = {n: (key, drawn) for n, key, drawn in cur.fetchall()}
    with duckdb.connect() as con:
        con.register("texts", pa.table({"n": range(len(texts)), "v": texts}))
        on_duckdb = {n: (key, drawn) for n, key, drawn in con.execute(on_duckdb_sql).fetchall()}
    differing = [(texts[n], on_duckdb[n], on_postgres[n]) for n in on_duckdb if on_duckdb[n] != on_postgres[n]]
    assert differing == []
    keys = [on_duckdb[n][0] for n in range(len(texts) - 22, len(texts))]
    assert keys == ["gudestrasse 12", "gudestrasse 12", "geissler", "geissler", "lodz", "lodz", "aero", "aero",
                    "jose", "jose", "noel", "oresund", "thorunn", "oeuvre", "dzuric", "istanbul", "o", None, None,
                    None, "anna lena o neil", None]
