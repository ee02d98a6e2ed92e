"""WAREHOUSE_URL=postgresql://… moves every stage to Postgres: full_sync against the sandbox loads (judged
against volume baselines kept there), links (with the match model's probability bands in the golden table's
metadata), pushes, records its reverse-ETL state and publishes the analyst schema there (the README's analyst
questions run against it as written), and links the same people into the same golden table as the DuckDB
warehouse does for the same seed; the match model trains there and stewards record their decisions there."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg2
import pytest

from tests.publishing.support import questions
from warehouse import Warehouse

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SEED = ("--seed", "23")
SIZE = 200
# the golden table without its timestamps (linked_at and the like differ between two runs by nature)
GOLDEN = """select identity_provider, identity_id, crm, coalesce(contact_id, ''), match_rule, status, match_confidence
            from marts.identity_contact_links"""


def golden(rows) -> list[tuple]:
    """The golden table's rows in one order, confidences as numbers to 6 places (Postgres returns decimals)."""
    return sorted((*row[:6], None if row[6] is None else round(float(row[6]), 6)) for row in rows)


def _run(job_name: str):
    import dagster as dg

    from orchestration.definitions import build_definitions

    with dg.instance_for_test() as instance:
        result = build_definitions().resolve_job_def(job_name).execute_in_process(instance=instance,
                                                                                  raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def _full_sync(sandbox, monkeypatch, tmp_path, warehouse_url: str | None):

    sandbox.apply_env(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    if warehouse_url:
        monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
    else:
        monkeypatch.delenv("WAREHOUSE_URL", raising=False)
    return _run("full_sync")


def _metadata(result, key: str) -> dict:
    import dagster as dg

    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {name: getattr(value, "value", value) for name, value in event.materialization.metadata.items()}


@pytest.fixture
def postgres_run(sandbox_factory, postgres_url, tmp_path_factory, monkeypatch):
    local = tmp_path_factory.mktemp("pg-local")
    result = _full_sync(sandbox_factory(size=SIZE, extra_args=SEED), monkeypatch, local, postgres_url)
    return local, result


def test_full_sync_on_postgres_links_pushes_and_publishes_like_duckdb(postgres_run, postgres_url, sandbox_factory,
                                                                      tmp_path_factory, monkeypatch):
    local, result = postgres_run
    links = _metadata(result, "identity_contact_links")
    assert links["links_active"] > 50 and "| match probability |" in links["match_probability_distribution"]
    volume = [e for e in result.get_asset_check_evaluations() if e.check_name == "live_row_volume"]
    assert volume and all(e.passed for e in volume)
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from raw_b2c.users")
        assert cur.fetchone()[0] > 0
        cur.execute(GOLDEN)
        on_postgres = golden(cur.fetchall())
        # reverse-ETL state and the sync log live in the warehouse too
        cur.execute("select system, count(*) from reverse_etl.sync_log group by system")
        logged = dict(cur.fetchall())
        # the analyst schema is published and granted, with this run's copy of the links
        cur.execute("select (select count(*) from links.identity_contact_links), "
                    "(select count(*) from links_views.identity_contact_links)")
        published, built = cur.fetchone()
        cur.execute("select has_schema_privilege('idlink_analyst', 'links', 'usage')")
        analyst_may_read = cur.fetchone()[0]
        for question in questions():  # the README's questions run as written against schema links
            cur.execute(question)
        cur.execute("select count(*) from raw_b2c.volume_baselines")
        baselines = cur.fetchone()[0]
    assert not (local / "warehouse.duckdb").exists(), "no stage fell back to the DuckDB file"
    assert baselines >= 1, "the volume check keeps its baseline in the Postgres warehouse"
    assert logged.get("salesforce", 0) > 0, "the push to Salesforce recorded its writes in Postgres"
    assert published == built > 0
    assert analyst_may_read
    trains_and_records_steward_decisions(local, postgres_url)

    duckdb_home = tmp_path_factory.mktemp("duckdb-warehouse")
    _full_sync(sandbox_factory(size=SIZE, extra_args=SEED), monkeypatch, duckdb_home, None)
    with Warehouse(duckdb_home / "warehouse.duckdb").connect(read_only=True) as con:
        on_duckdb = golden(con.execute(GOLDEN))
    assert len(on_postgres) > 50
    assert on_postgres == on_duckdb


def trains_and_records_steward_decisions(local, postgres_url):
    """The match model trains in the Postgres warehouse and a steward's decision is recorded and listed there."""
    from orchestration.defs.match_model import VERSIONS_KEY

    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("select max(version) from match_model.versions")
        before = cur.fetchone()[0]
        cur.execute("""select identity_provider, identity_id, crm, contact_id from marts.identity_contact_links
            where status = 'active' order by identity_id limit 1""")
        provider, identity_id, crm, contact_id = cur.fetchone()
    trained = _run("train_match_model")
    [version] = [e for e in trained.get_asset_materialization_events() if e.asset_key == VERSIONS_KEY]
    assert version.materialization.metadata["version"].value == before + 1

    environment = {**os.environ, "WAREHOUSE_URL": postgres_url, "WAREHOUSE_PATH": str(local / "warehouse.duckdb")}
    decide = subprocess.run([sys.executable, "-m", "stewardship", "decide", "unlink", "--identity",
                             f"{provider}:{identity_id}", "--contact", f"{crm}:{contact_id}", "--by", "steward.a",
                             "--reason", "two people, one mailbox"],
                            env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert decide.returncode == 0, decide.stderr
    listed = subprocess.run([sys.executable, "-m", "stewardship", "list"], env=environment, capture_output=True,
                            text=True, timeout=120, check=False)
    assert listed.returncode == 0, listed.stderr
    [decision] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (decision["identity_id"], decision["decision"], decision["decided_by"]) == (
        identity_id, "unlink", "steward.a")
    assert not (local / "warehouse.duckdb").exists()
