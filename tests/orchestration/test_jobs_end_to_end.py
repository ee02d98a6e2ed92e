"""The jobs as the data team runs them: against the sandbox, through the real clients, on a fresh warehouse."""
from __future__ import annotations

import duckdb
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def environment(sandbox_factory, tmp_path, monkeypatch):
    running = sandbox_factory(size=300)
    running.initial_external_ids = {c["External_User_Id__c"] for c in running.state()["salesforce"]["Contact"]
                                    if c.get("External_User_Id__c")}
    running.apply_env(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    return running


def _execute(job_name: str, instance):
    # Resources bind the environment when the definitions are built, so build them after the env is set.
    from orchestration.definitions import build_definitions

    return build_definitions().resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False)


def _preexisting(environment) -> set[str]:
    """Identity IDs the CRM already carried when the sandbox started (not idlink's doing)."""
    return environment.initial_external_ids


def _query(path, sql):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_ingest_and_link_builds_the_link_table_and_writes_nothing_outside(environment, tmp_path):
    import dagster as dg

    before = environment.state()
    with dg.instance_for_test() as instance:
        result = _execute("ingest_and_link", instance)
    assert result.success
    warehouse = tmp_path / "warehouse.duckdb"
    assert _query(warehouse, "select count(*) from raw_b2c.users")[0][0] > 0
    assert _query(warehouse, "select count(*) from marts.identity_contact_links where status = 'active'")[0][0] > 0
    assert environment.state() == before, "ingest_and_link must not change any outside system"


def test_training_is_its_own_job_and_the_next_link_build_applies_the_version_it_wrote(environment, tmp_path):
    import dagster as dg

    from orchestration.defs.linking import LINKS_ASSET_KEY
    from orchestration.defs.match_model import VERSIONS_KEY

    warehouse = tmp_path / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        assert _execute("ingest_and_link", instance).success  # a first build trains version 1 itself
        trained = _execute("train_match_model", instance)
        assert trained.success
        [event] = [e for e in trained.get_asset_materialization_events()
                   if e.asset_key == VERSIONS_KEY]
        metadata = event.materialization.metadata
        assert metadata["version"].value == 2
        assert metadata["training_pairs"].value > 0 and metadata["random_pairs"].value > 0
        assert "| given_name | exact |" in metadata["parameters"].value
        assert _execute("ingest_and_link", instance).success
        links = instance.get_latest_materialization_event(LINKS_ASSET_KEY).asset_materialization.metadata
    assert links["auto_links"].value == links["deterministic_links"].value + links["model_links"].value > 0
    assert "review_items" in links and "| match probability |" in links["match_probability_distribution"].value
    assert _query(warehouse, "select distinct model_version from intermediate.int_link_candidates "
                             "where model_version is not null") == [(2,)]
    assert _query(warehouse, "select count(*) from marts.match_decision_bands")[0][0] == 2


def test_full_sync_converges_leaving_only_refused_records_behind(environment, tmp_path):
    import dagster as dg

    # Run 1 creates contacts and writes IDs, run 2 links the new contacts and writes their IDs onto the
    # identities, and a final ingest_and_link shows what is left: only records the systems refused (a refused
    # value is dead-lettered at once, other refusals after the attempt limit), each with its recorded error.
    with dg.instance_for_test() as instance:
        for job_name in ("full_sync", "full_sync", "ingest_and_link"):
            assert _execute(job_name, instance).success, job_name
    warehouse = tmp_path / "warehouse.duckdb"
    dead = {key for (key,) in _query(
        warehouse, """select record_key from reverse_etl.sync_log
                      where outcome in ('failed', 'dead_lettered') and error_code is not null""")}
    to_create = {key for (key,) in _query(
        warehouse, "select identity_provider || ':' || identity_id from marts.contacts_to_create")}
    assert to_create <= dead
    targets = {target for (target,) in _query(warehouse, "select target_id from marts.external_ids_to_push")}
    assert targets <= {key.split(":")[0] for key in dead} | {key.split(":", 1)[1] for key in dead}

    contacts = [c for c in environment.state()["salesforce"]["Contact"] if not c.get("IsDeleted")]
    external_ids = [c["External_User_Id__c"] for c in contacts if c.get("External_User_Id__c")]
    assert len(external_ids) == len(set(external_ids)), "one contact per identity, never two"
    consent = {row[0]: row[1] for row in _query(warehouse, "select identity_id, consent_state from staging.stg_b2c__users")}
    assert all(consent.get(identity_id) != "missing" for identity_id in external_ids
               if identity_id in consent and identity_id not in _preexisting(environment)), \
        "no identity without consent gets a contact"


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
