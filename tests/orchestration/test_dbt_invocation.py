"""How the linking step calls dbt: no version probe per run, and one artifact directory per warehouse so every
run after the first reuses dbt's saved parse."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from packaging import version

from orchestration.defs.linking import dbt_target_path
from orchestration.defs.resources import (
    DBT_PROJECT_DIR,
    LinkingDbtCliResource,
    _dbt_executable,
    build_resources,
)
from settings import load_settings
from warehouse import Warehouse


def test_the_dbt_version_is_known_without_starting_dbt(monkeypatch) -> None:
    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"started a process: {args}")

    monkeypatch.setattr(subprocess, "check_output", no_subprocess)
    import dagster_dbt.core.resource as dagster_dbt_resource

    monkeypatch.setattr(dagster_dbt_resource, "check_output", no_subprocess, raising=False)
    resource = LinkingDbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR),
                                     dbt_executable=_dbt_executable())
    from dbt.version import __version__

    assert resource._cli_version == version.Version(__version__)
    assert resource._cli_version.major == 1  # dagster-dbt then drives dbt-core, not the fusion engine


def test_the_runs_use_the_resource_without_the_probe() -> None:
    assert isinstance(build_resources(load_settings({}))["dbt"], LinkingDbtCliResource)


def test_each_warehouse_has_its_own_stable_dbt_target_directory(tmp_path: Path) -> None:
    first = dbt_target_path(Warehouse(tmp_path / "a" / "warehouse.duckdb"))
    assert first == dbt_target_path(Warehouse(tmp_path / "a" / "warehouse.duckdb"))
    assert first.parent == tmp_path / "a" / "dbt_target"
    assert first != dbt_target_path(Warehouse(tmp_path / "b" / "warehouse.duckdb"))
    assert first.name.startswith("warehouse-")


@pytest.mark.slow
def test_a_second_build_on_the_same_warehouse_parses_partially(tmp_path: Path, monkeypatch) -> None:
    import duckdb

    from tests.dbt.raw_loader import load_raw_tables, raw_tables

    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        load_raw_tables(con, raw_tables([], [], []))
    monkeypatch.setenv("WAREHOUSE_PATH", str(warehouse))
    resource = LinkingDbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR),
                                     dbt_executable=_dbt_executable())
    target = dbt_target_path(Warehouse(warehouse))

    def parse_log() -> str:
        invocation = resource.cli(["parse"], target_path=target)
        return "\n".join(str(event.raw_event) for event in invocation.stream_raw_events())

    # the saved parse shipped by `make setup` names another warehouse: the first run parses everything
    assert "Unable to do partial parsing because profile has changed" in parse_log()
    assert (target / "partial_parse.msgpack").exists()
    assert "Unable to do partial parsing" not in parse_log()


def test_the_manifest_is_stale_only_when_a_project_file_is_newer(tmp_path: Path) -> None:
    import os

    from orchestration.defs.linking import manifest_is_stale

    project = tmp_path / "dbt_project"
    (project / "models").mkdir(parents=True)
    (project / "target").mkdir()
    model = project / "models" / "m.sql"
    model.write_text("select 1")
    manifest = project / "target" / "manifest.json"
    assert manifest_is_stale(project, manifest)  # never parsed

    manifest.write_text("{}")
    os.utime(model, (1_000, 1_000))
    (project / "target" / "run_results.json").write_text("{}")  # what dbt itself writes does not count
    assert not manifest_is_stale(project, manifest)

    model.write_text("select 2")
    os.utime(manifest, (2_000, 2_000))
    assert manifest_is_stale(project, manifest)
