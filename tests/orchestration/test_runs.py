"""Runs started from Python or the command line (the demo, `python -m orchestration.runs`) are runs of this
code location's job: the UI lists a job's runs by the repository label these carry."""
from __future__ import annotations

import tomllib

import dagster as dg
import yaml

from orchestration.definitions import PROJECT_ROOT
from orchestration.runs import CODE_LOCATION, REPOSITORY_LABEL_TAG, run_job


@dg.asset
def answer() -> int:
    return 42


def test_the_code_location_has_one_name_in_the_workspace_and_the_project():
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    [location] = workspace["load_from"]
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert location["python_module"]["location_name"] == CODE_LOCATION
    assert project["tool"]["dg"]["project"]["code_location_name"] == CODE_LOCATION


def test_a_run_started_here_is_found_the_way_the_job_page_looks_for_its_runs():
    defs = dg.Definitions(assets=[answer], jobs=[dg.define_asset_job("answer_job", selection=[answer])])
    with dg.instance_for_test() as instance:
        result = run_job(defs, "answer_job", instance, tags={"idlink/trigger": "test"})
        assert result.success
        label = f"{defs.get_repository_def().name}@{CODE_LOCATION}"
        found = instance.get_runs(dg.RunsFilter(job_name="answer_job", tags={REPOSITORY_LABEL_TAG: label}))
    assert [run.run_id for run in found] == [result.run_id]
    assert found[0].tags["idlink/trigger"] == "test" and found[0].tags["dagster/code_location"] == CODE_LOCATION
