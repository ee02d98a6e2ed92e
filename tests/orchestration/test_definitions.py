"""The Dagster code location: what a data engineer sees in the UI and what the jobs select."""
import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from orchestration.definitions import build_definitions
from orchestration.defs.resources import build_resources
from settings import load_settings


@pytest.fixture(scope="module")
def defs():
    return build_definitions()


def _asset_specs(defs):
    graph = defs.resolve_asset_graph()
    return {key: graph.get(key) for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}


def test_both_jobs_are_defined(defs):
    names = {job.name for job in defs.resolve_all_job_defs()}
    assert {"ingest_and_link", "full_sync"} <= names


def test_every_asset_belongs_to_a_stage_privacy_or_publishing(defs):
    groups = {node.group_name for node in _asset_specs(defs).values()}
    assert groups == {"ingestion", "privacy", "linking", "match_model", "publishing", "reverse_etl", "retention"}


def test_training_runs_on_demand_and_weekly_and_no_linking_job_retrains(defs):
    trained = {dg.AssetKey(["match_model", "versions"]), dg.AssetKey(["match_model", "parameters"])}
    assert defs.resolve_job_def("train_match_model").asset_layer.selected_asset_keys == trained
    for job in ("ingest_and_link", "full_sync"):
        assert not trained & defs.resolve_job_def(job).asset_layer.selected_asset_keys, job
    assert defs.resolve_schedule_def("weekly_match_model_training").job_name == "train_match_model"


def test_raw_tables_line_up_with_dbt_sources(defs):
    keys = set(_asset_specs(defs))
    assert dg.AssetKey("raw_b2c_users") in keys
    assert dg.AssetKey("raw_salesforce_contact") in keys
    assert dg.AssetKey("identity_contact_links") in keys


def test_ingest_and_link_selects_no_asset_that_writes_to_outside_systems(defs):
    graph = defs.resolve_asset_graph()
    selected = defs.resolve_job_def("ingest_and_link").asset_layer.selected_asset_keys
    groups = {graph.get(key).group_name for key in selected}
    assert groups == {"ingestion", "privacy", "linking", "publishing"}


def test_full_sync_selects_every_stage(defs):
    graph = defs.resolve_asset_graph()
    selected = defs.resolve_job_def("full_sync").asset_layer.selected_asset_keys
    assert {graph.get(key).group_name for key in selected} == {"ingestion", "privacy", "linking", "publishing",
                                                               "reverse_etl"}


def test_everything_that_opens_the_warehouse_shares_one_pool(defs):
    for key, node in _asset_specs(defs).items():
        assert node.pools == {"warehouse"}, f"{key.to_user_string()} must run in pool 'warehouse'"


def test_dbt_tests_are_visible_as_asset_checks(defs):
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    assert any(check.asset_key == dg.AssetKey("identity_contact_links") for check in checks)


def test_secrets_are_bound_from_the_environment_not_from_code(monkeypatch):
    monkeypatch.setenv("SALESFORCE_CLIENT_ID", "connected-app")
    monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", "from-the-environment")
    resource = build_resources(load_settings())["salesforce"]
    assert isinstance(resource.client_secret, dg.EnvVar)
    assert resource.client_secret.env_var_name == "SALESFORCE_CLIENT_SECRET"


def test_dagster_project_tooling_checks_and_lists_the_defs_folder():
    """`dg check defs` / `dg list defs` read orchestration/defs/ through pyproject's [tool.dg] section and find
    the same jobs, sensors and schedules as the code location."""
    repo = Path(__file__).resolve().parents[2]
    dg_cli = Path(sys.executable).parent / "dg"
    check = subprocess.run([dg_cli, "check", "defs"], cwd=repo, capture_output=True, text=True, timeout=300,
                           check=False)
    assert check.returncode == 0, check.stderr[-2000:]
    listed = subprocess.run([dg_cli, "list", "defs", "--json"], cwd=repo, capture_output=True, text=True,
                            timeout=300, check=False)
    assert listed.returncode == 0, listed.stderr[-2000:]
    found = json.loads(listed.stdout)
    assert {job["name"] for job in found["jobs"]} == {"ingest_and_link", "full_sync", "retention_purge",
                                                      "train_match_model"}
    assert {sensor["name"] for sensor in found["sensors"]} == {
        "inbox_sensor", "salesforce_changes_sensor", "dynamics_changes_sensor", "run_failure_alert"}
    assert {schedule["name"] for schedule in found["schedules"]} == {"incremental_sync", "nightly_reconciliation",
                                                                    "daily_retention_purge",
                                                                    "weekly_match_model_training"}
    assert "raw_b2c_users" in {asset["asset_key"] for asset in found["assets"]}
