"""The jobs are safe under any Dagster instance: without the `warehouse` pool limit of deploy/dagster.yaml (a
fresh DAGSTER_HOME), the multiprocess executor starts the warehouse steps at once and they still never meet on
the DuckDB file."""
from __future__ import annotations

import dagster as dg
import duckdb
import pytest

pytestmark = pytest.mark.slow


def full_sync_job() -> dg.JobDefinition:
    """Rebuilt in every step process from the environment the test set (a reconstructable target)."""
    from orchestration.definitions import build_definitions

    return build_definitions().resolve_job_def("full_sync")


@pytest.mark.timeout(1800)  # a process per step: 586 s at load 16 on 2 cores, past the suite's 600 s
def test_full_sync_succeeds_with_the_multiprocess_executor_on_a_fresh_instance(sandbox_factory, tmp_path,
                                                                                monkeypatch):
    sandbox = sandbox_factory(size=120)
    sandbox.apply_env(monkeypatch)
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_PATH", str(warehouse))
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit is None  # no pool limits at all
        with dg.execute_job(dg.reconstructable(full_sync_job), instance=instance) as result:
            assert result.success, [str(e.event_specific_data.error)[-3000:] for e in result.all_events
                                     if e.is_step_failure]
            steps = {e.step_key for e in result.all_events if e.is_step_success}
    assert {"b2c_users", "salesforce_contacts", "linking_dbt_assets"} <= steps
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from marts.identity_contact_links where status = 'active'").fetchone()[0]
