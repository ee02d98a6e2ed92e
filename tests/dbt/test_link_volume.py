"""The golden table's volume test: a build that loses most active links fails (and with it the run and every
push), the snapshot keeps the last good links so the next build is judged against them too, and a person's
accept_link_drop lets one build through."""
from __future__ import annotations

import duckdb
import orjson
import pytest

from sandbox.synthetic import generate
from tests.dbt.dbt_cli import run_dbt
from tests.dbt.raw_loader import load_raw_tables, raw_tables

BUILD = ["build", "--exclude", "resource_type:unit_test"]


def _active(warehouse) -> tuple[int, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("""select
            (select count(*) from marts.identity_contact_links where status = 'active'),
            (select count(*) from snapshots.identity_contact_links_snapshot
             where dbt_valid_to is null and status = 'active')""").fetchone()


def _failed(run) -> list[str]:
    return [r["unique_id"].split(".")[2] for r in run.results if r["status"] in ("fail", "error")]


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    data = generate(600, seed=5)
    workdir = tmp_path_factory.mktemp("link_volume")
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        load_raw_tables(con, raw_tables(data.users, data.contacts))
    env = {"WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb"}
    first = run_dbt(BUILD, workdir / "target", env)
    assert first.returncode == 0, first.output[-3000:]
    return warehouse, env, workdir


def test_a_build_that_loses_most_links_fails_until_a_person_accepts_the_drop(linked):
    warehouse, env, workdir = linked
    before, _ = _active(warehouse)
    assert before >= 100
    with duckdb.connect(str(warehouse)) as con:  # a consent attribute gone wrong: most consents read as false
        con.execute("update raw_b2c.users set custom_attributes = ? where hash(id) % 10 <> 0",
                    [orjson.dumps({"CrmSyncConsent": False}).decode()])

    dropped = run_dbt(BUILD, workdir / "target", env)
    assert dropped.returncode != 0 and _failed(dropped) == ["active_link_volume"]
    now, snapshotted = _active(warehouse)
    assert now < before / 2 and snapshotted == before  # the snapshot (what the next build compares to) kept

    again = run_dbt(BUILD, workdir / "target", env)
    assert _failed(again) == ["active_link_volume"]

    accepted = run_dbt([*BUILD, "--vars", '{"accept_link_drop": true}'], workdir / "target", env)
    assert accepted.returncode == 0, accepted.output[-3000:]
    assert _active(warehouse)[1] == now
