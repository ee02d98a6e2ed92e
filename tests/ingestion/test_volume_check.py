"""The volume check of the raw tables: a load that leaves an implausible table stops the linking and the pushes
of its run, once, until the drop is accepted; tables and loads under 100 rows are not judged. The
baseline lives in the warehouse it describes: a new warehouse starts without one, whatever the instance saw."""
import dagster as dg
import pytest

from ingestion.quality import judge_load, judge_volume
from orchestration.defs.ingestion import (
    LIVE_ROW_VOLUME,
    RawLoadConfig,
    RawTable,
    judged_load,
    raw_table_asset,
)

RAW = RawTable("raw_test", "users", "azure", "Users of a test directory.", "b2c")


def test_a_first_load_passes_and_becomes_the_baseline():
    verdict = judge_volume(live=1000, loaded=1000, baseline=None)
    assert verdict.passed and verdict.baseline == 1000


def test_a_load_that_writes_rows_but_leaves_none_live_fails():
    verdict = judge_volume(live=0, loaded=400, baseline=None)
    assert not verdict.passed and "left none live" in verdict.reason and verdict.baseline is None


def test_losing_more_than_half_the_live_rows_fails_and_keeps_the_old_baseline():
    verdict = judge_volume(live=400, loaded=10, baseline=1000)
    assert not verdict.passed and verdict.baseline == 1000 and "-60%" in verdict.reason
    assert judge_volume(live=600, loaded=10, baseline=1000).passed


def test_a_small_table_or_load_is_not_judged():
    assert judge_volume(live=5, loaded=0, baseline=30).passed
    assert judge_volume(live=0, loaded=1, baseline=1).passed  # the one user of a test directory deleted
    assert not judge_volume(live=0, loaded=0, baseline=300).passed


def test_an_accepted_drop_passes_and_becomes_the_new_baseline():
    verdict = judge_volume(live=400, loaded=10, baseline=1000, accept_drop=True)
    assert verdict.passed and verdict.baseline == 400 and "accepted" in verdict.reason


def test_the_baseline_is_kept_in_the_warehouse_so_a_new_warehouse_starts_without_one(tmp_path):
    first = str(tmp_path / "first.duckdb")
    assert judge_load(first, "raw_test", "users", live=1000, loaded=1000).passed
    assert not judge_load(first, "raw_test", "users", live=300, loaded=10).passed
    fresh = str(tmp_path / "fresh.duckdb")  # e.g. the demo's, rebuilt each time: 300 is a first load there
    verdict = judge_load(fresh, "raw_test", "users", live=300, loaded=300)
    assert verdict.passed and verdict.previous is None


class FakeLoad(RawLoadConfig):
    live_rows: int
    warehouse: str


@raw_table_asset(RAW, "test_users")
def loaded_users(context: dg.AssetExecutionContext, config: FakeLoad):
    yield judged_load(context, RAW, {"rows_total": config.live_rows, "rows_deleted": 0, "rows_loaded": 10},
                      config.warehouse, config.accept_volume_drop)


@dg.asset(deps=[RAW.key])
def linked() -> None:
    return None


def _load(instance, warehouse, live_rows: int, accept: bool = False) -> dg.ExecuteInProcessResult:
    return dg.materialize([loaded_users, linked], instance=instance, raise_on_error=False, run_config={
        "ops": {"test_users": {"config": {"live_rows": live_rows, "accept_volume_drop": accept,
                                          "warehouse": str(warehouse)}}}})


def _verdict(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == LIVE_ROW_VOLUME]
    return evaluation


@pytest.mark.parametrize("accept", [False, True])
def test_an_implausible_load_stops_what_follows_until_a_person_accepts_it(accept, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        assert _load(instance, warehouse, 1000).success
        dropped = _load(instance, warehouse, 300)
        assert not dropped.success and not _verdict(dropped).passed
        assert dg.AssetKey("linked") not in {e.asset_key for e in dropped.get_asset_materialization_events()}
        again = _load(instance, warehouse, 300, accept=accept)  # against the last accepted load, not the dropped
        assert again.success is accept and _verdict(again).passed is accept
