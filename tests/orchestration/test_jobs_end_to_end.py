"""The jobs as the data team runs them: against the sandbox, through the real clients, on a fresh warehouse."""
from __future__ import annotations

import duckdb
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def environment(sandbox_factory, tmp_path, monkeypatch):
    running = sandbox_factory(size=300)
    running.apply_env(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    return running


def _execute(job_name: str, instance):
    # Resources bind the environment when the definitions are built, so build them after the env is set.
    from orchestration.definitions import build_definitions

    return build_definitions().resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False)


def _query(path, sql):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_ingest_and_link_builds_the_link_table_and_writes_nothing_outside(environment, tmp_path):
    import dagster as dg

    with dg.instance_for_test() as instance:
        result = _execute("ingest_and_link", instance)
    assert result.success
    warehouse = tmp_path / "warehouse.duckdb"
    assert _query(warehouse, "select count(*) from raw_b2c.users")[0][0] > 0
    assert _query(warehouse, "select count(*) from marts.identity_contact_links where status = 'active'")[0][0] > 0
    writes = {route: n for route, n in environment.stats()["requests"].items()
              if not route.startswith(("GET", "POST /services/oauth2", "POST /idlinksandbox"))
              and "/query" not in route and "token" not in route}
    assert writes == {}, f"ingest_and_link must not write to outside systems, saw {writes}"


def test_full_sync_twice_leaves_nothing_to_push(environment, tmp_path):
    import dagster as dg

    with dg.instance_for_test() as instance:
        assert _execute("full_sync", instance).success
        assert _execute("full_sync", instance).success
    warehouse = tmp_path / "warehouse.duckdb"
    assert _query(warehouse, "select count(*) from marts.contacts_to_create")[0][0] == 0
    assert _query(warehouse, "select count(*) from marts.external_ids_to_push")[0][0] == 0
    contacts = environment.state()["salesforce"]["Contact"]
    external_ids = [c.get("External_User_Id__c") for c in contacts if c.get("External_User_Id__c") and not c.get("IsDeleted")]
    assert len(external_ids) == len(set(external_ids)), "one contact per identity, never two"


@pytest.mark.postgres
def test_a_postgres_backed_instance_records_the_runs(environment, tmp_path, postgres_url, monkeypatch):
    import shutil

    import dagster as dg
    from dagster_postgres import PostgresRunStorage

    home = tmp_path / "dagster_home"
    shutil.copy("deploy/dagster.postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        result = _execute("ingest_and_link", instance)
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.is_success
        assert instance.get_records_for_run(result.run_id).records
