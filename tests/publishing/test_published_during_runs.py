"""Analysts query the published database at any time: holding it open never breaks a run, and after reopening
they see the latest run."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import dagster as dg
import duckdb
import pytest

from orchestration.definitions import build_definitions

pytestmark = pytest.mark.slow

HOLDER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print(con.execute("select distinct published_run_id from links.identity_contact_links").fetchone()[0],
          flush=True)
    sys.stdin.readline()  # keep the file open until told
""")


@pytest.fixture
def environment(sandbox_factory, tmp_path, monkeypatch):
    running = sandbox_factory(size=150)
    running.apply_env(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("ANALYST_HASH_SALT", "test-salt")
    return tmp_path


def _published_run(path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select distinct published_run_id from links.identity_contact_links").fetchone()[0]


def test_a_reader_holding_the_analyst_database_across_two_full_syncs_breaks_neither(environment):
    analyst = environment / "analyst.duckdb"
    with duckdb.connect(str(analyst)) as con:  # what an earlier deployment published
        con.execute("create schema links")
        con.execute("create table links.identity_contact_links as select 'earlier-run' as published_run_id")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(analyst)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "earlier-run"
        with dg.instance_for_test() as instance:
            runs = [build_definitions().resolve_job_def("full_sync").execute_in_process(
                instance=instance, raise_on_error=False) for _ in range(2)]
        assert [run.success for run in runs] == [True, True]
        assert holder.poll() is None, "the reader still holds the file"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert _published_run(analyst) == runs[-1].run_id, "reopened, the reader sees the latest run"
    with duckdb.connect(str(environment / "compliance.duckdb"), read_only=True) as con:
        writers = {run_id for (run_id,) in con.execute("select distinct run_id from audit.writes").fetchall()}
    assert runs[0].run_id in writers, "the compliance database lists the first run's writes"
