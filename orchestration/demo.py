"""`make demo`: start the local API sandbox, run `full_sync` twice on the embedded DuckDB warehouse, and print
what idlink linked, created and wrote back.

The sandbox runs as a separate process reached over HTTPS through the real clients, exactly like a tenant.
Counts only: nothing personal is printed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.definitions import build_definitions
from settings import load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def start_sandbox(size: int, seed: int, env_file: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--size", str(size), "--seed", str(seed), "--port", "0",
         "--env-file", str(env_file)],
        cwd=REPO_ROOT,
    )
    deadline = time.monotonic() + 120
    while not env_file.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the sandbox exited early with code {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the sandbox did not start within 120 s")
        time.sleep(0.2)
    return proc


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def _has(conn, schema: str, table: str) -> bool:
    return bool(conn.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                             [schema, table]).fetchone()[0])


def summary(warehouse_path: str) -> list[str]:
    lines = []
    with duckdb.connect(warehouse_path, read_only=True) as conn:
        def scalar(sql: str) -> int:
            return conn.execute(sql).fetchone()[0]

        lines.append(f"identities ingested:          {scalar('select count(*) from raw_b2c.users where not is_deleted')}")
        lines.append(f"CRM contacts ingested:        {scalar('select count(*) from raw_salesforce.contact where not is_deleted')}"
                     " (Salesforce)")
        if _has(conn, "raw_dynamics", "contact"):
            lines.append(f"                              {scalar('select count(*) from raw_dynamics.contact where not is_deleted')}"
                         " (Dynamics)")
        for crm, n in conn.execute("select crm, count(*) from marts.identity_contact_links where status = 'active' "
                                   "group by crm order by crm").fetchall():
            lines.append(f"active links in {crm:<13} {n:>7}")
        lines.append(f"records quarantined:          {scalar('select count(*) from raw_b2c.quarantine') if _has(conn, 'raw_b2c', 'quarantine') else 0}")
        lines.append("active links by rule:")
        for rule, n, conf in conn.execute(
            "select match_rule, count(*), round(avg(match_confidence), 3) from marts.identity_contact_links "
            "where status = 'active' group by 1 order by 2 desc"
        ).fetchall():
            lines.append(f"  {rule:<28} {n:>7}  (mean confidence {conf})")
        for status, n in conn.execute(
            "select status, count(*) from marts.identity_contact_links where status <> 'active' group by 1"
        ).fetchall():
            lines.append(f"links {status}: {n}")
        lines.append(f"conflicts for review:         {scalar('select count(*) from marts.link_conflicts')}")
        lines.append(f"CRM duplicates listed:        {scalar('select count(*) from marts.crm_duplicate_contacts')}")
        lines.append(f"contacts still to create:     {scalar('select count(*) from marts.contacts_to_create')}")
        lines.append(f"external IDs still to push:   {scalar('select count(*) from marts.external_ids_to_push')}")
        for system, outcome, n in conn.execute(
            "select system, outcome, count(*) from reverse_etl.sync_log group by 1, 2 order by 1, 2"
        ).fetchall():
            lines.append(f"sync log {system:<11} {outcome:<12} {n:>7}")
        lines.append(f"dead letters (failed for good): {scalar('select count(*) from reverse_etl.dead_letters')}")
    return lines


def published_summary(paths: dict[str, Path]) -> list[str]:
    """What each published database holds: its tables' row counts and the run they came from."""
    lines = []
    for role, path in paths.items():
        with duckdb.connect(str(path), read_only=True) as conn:
            schemas = [schema for (schema,) in conn.execute(
                "select table_schema from information_schema.tables where table_name = 'publication'").fetchall()]
            rows = [(schema, *row) for schema in schemas for row in conn.execute(
                f"select relation, row_count, published_run_id from {schema}.publication order by relation").fetchall()]
        lines.append(f"{role} database {path} (run {rows[0][3] if rows else '-'}):")
        lines.extend(f"  {schema}.{relation:<26} {count:>7}" for schema, relation, count, _ in rows)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="synthetic people in the sandbox")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="idlink-demo-") as tmp:
        env_file = Path(tmp) / "sandbox.env"
        sandbox = start_sandbox(args.size, args.seed, env_file)
        try:
            # the demo is an edge: the sandbox's variables join the environment the settings and the runs read
            os.environ.update(read_env_file(env_file))
            settings = load_settings()
            warehouse_path = str(settings.warehouse_path)
            defs = build_definitions()
            instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
            # Run 1 links and creates; run 2 links the created contacts and writes their IDs back; the final
            # ingest_and_link shows the converged state (nothing left to push but records that failed for good).
            for job_name in ("full_sync", "full_sync", "ingest_and_link"):
                started = time.monotonic()
                result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False)
                print(f"{job_name}: {'succeeded' if result.success else 'FAILED'} "
                      f"in {time.monotonic() - started:.1f} s (run id {result.run_id})", flush=True)
                if not result.success:
                    return 1
            print("\n".join(summary(warehouse_path)))
            print("\n".join(published_summary({"analyst": settings.publish.analyst_db_path,
                                                "compliance": settings.publish.compliance_db_path})))
            print(f"Query the links any time: duckdb -readonly {settings.publish.analyst_db_path}")
            print("Open the Dagster UI with `make dev` to browse these runs and assets.")
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
