"""The checks that guard a push run in every run that builds the marts, scheduled or sensor-triggered, and a
failing one stops the push: with a model that lets identities without consent into contacts_to_create, the
consent check fails and no write reaches the CRM or the identity provider."""
from __future__ import annotations

import shutil

import dagster as dg
import pytest
from dagster_dbt import DbtProject

from orchestration.defs.jobs import full_sync_job
from orchestration.defs.linking import TARGETED_RUN_TAG, linking_assets_for, linking_dbt_assets
from orchestration.defs.realtime import TargetedRunPlan
from orchestration.defs.resources import DBT_PROJECT_DIR, LinkingDbtCliResource, build_resources
from settings import load_settings

pytestmark = pytest.mark.slow

CONSENT_CHECK = "consented_identities"
PUSHES = {dg.AssetKey(["reverse_etl", "salesforce_contacts"]), dg.AssetKey(["reverse_etl", "b2c_contact_ids"])}


@pytest.fixture
def broken_consent(sandbox_factory, tmp_path, monkeypatch):
    """A sandbox, and full_sync whose dbt project forgets the consent filter of contacts_to_create."""
    sandbox = sandbox_factory(size=80)
    sandbox.apply_env(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / "target").mkdir()
    shutil.copy(DBT_PROJECT_DIR / "target" / "manifest.json", project / "target")  # the same nodes
    model = project / "models" / "marts" / "contacts_to_create.sql"
    model.write_text(model.read_text().replace("where {{ idlink.linkable_identity() }}", "where true", 1))

    from orchestration.definitions import build_definitions

    broken = linking_assets_for(DbtProject(project_dir=project, profiles_dir=project))
    assets = [broken if a is linking_dbt_assets else a for a in build_definitions().assets]
    resources = build_resources(load_settings())  # dbt runs in its resource's project: the broken copy here
    dbt = LinkingDbtCliResource(project_dir=str(project), profiles_dir=str(project),
                                dbt_executable=resources["dbt"].dbt_executable)
    defs = dg.Definitions(assets=assets, jobs=[full_sync_job], resources={**resources, "dbt": dbt})
    return sandbox, defs


def assert_blocked(result: dg.ExecuteInProcessResult, sandbox, before: dict) -> None:
    assert not result.success
    checks = [e.event_specific_data for e in result.all_events
              if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    assert [c.passed for c in checks if c.check_name == CONSENT_CHECK
            and c.asset_key == dg.AssetKey("contacts_to_create")] == [False]
    pushed = {e.event_specific_data.materialization.asset_key for e in result.all_events
              if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION}
    assert not PUSHES & pushed
    assert sandbox.state() == before, "a write reached the sandbox"


def test_a_scheduled_run_with_a_failing_consent_check_pushes_nothing(broken_consent):
    sandbox, defs = broken_consent
    before = sandbox.state()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("full_sync").execute_in_process(
            instance=instance, tags={"idlink/trigger": "incremental_sync"}, raise_on_error=False)
    assert_blocked(result, sandbox, before)


def test_a_sensor_triggered_run_with_a_failing_consent_check_pushes_nothing(broken_consent):
    sandbox, defs = broken_consent
    before = sandbox.state()
    plan = TargetedRunPlan()
    plan.b2c_identity_ids.update(user["id"] for user in before["b2c"]["users"][:40])
    job = defs.resolve_job_def("full_sync")
    request = plan.run_request("test", defs.get_repository_def(), {"idlink/trigger": "inbox"})
    assert request.tags[TARGETED_RUN_TAG] == "true"
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(run_config=request.run_config, asset_selection=request.asset_selection,
                                        tags=request.tags, instance=instance, raise_on_error=False)
    assert_blocked(result, sandbox, before)
