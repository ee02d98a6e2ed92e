"""`make demo`: start the local API sandbox, run `full_sync` twice and `ingest_and_link` once on a warehouse of its
own (a DuckDB file, or the Postgres database WAREHOUSE_URL names), and tell what each run did: what it ingested,
linked (by rule), sent to review (and why), created, pushed, and what failed, in plain words.

The sandbox runs as a separate process reached over HTTPS through the real clients, exactly like a tenant. It
starts from its seed every time, so the demo's warehouse (``data/demo/``) starts afresh too: a warehouse that
remembers another tenant's cursors, contacts and pushes would tell a stale story. Counts, codes and field names
only: nothing personal is printed. Everything the runs, dbt and the sandbox say goes to ``data/demo/demo.log``.
The runs are runs of the code location's jobs (``orchestration.runs``): `make dev` shows them on the jobs' pages.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import dagster as dg

from orchestration.definitions import build_definitions
from orchestration.runs import CODE_LOCATION, run_job
from publishing import ANALYST
from reverse_etl.outcomes import SYSTEM_NAMES, run_pushes
from settings import load_settings
from warehouse import Warehouse

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "data" / "demo"
KEEP = {"dbt_target"}  # dbt's parse of the project (no data): kept, so later demos parse partially
# the runs of the story: create contacts; link the created contacts and write their ids back; the converged state
RUNS = (("full_sync", "ingest, link, push"), ("full_sync", "ingest, link, push"), ("ingest_and_link", "ingest, link"))
# raw schemas in the order told: identity providers, then CRMs
SOURCES = {"raw_b2c": "B2C", "raw_akamai": "Akamai", "raw_scim": "SCIM", "raw_salesforce": "Salesforce",
           "raw_dynamics": "Dynamics"}
ENDED = {"withdrawn": "consent withdrawn", "deleted": "identity deleted", "contact_deleted": "contact deleted in the CRM"}
# link_conflicts.reason in plain words
REVIEW_REASONS = {
    "contested_contact": "contacts that several identities match",
    "tie": "identities that match several contacts equally well",
    "family_mailbox": "shared family mailboxes (same email, different names)",
}
PUSH_ORDER = ("salesforce", "dynamics", "b2c", "akamai")


def start_sandbox(size: int, seed: int, env_file: Path, log: IO[str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--size", str(size), "--seed", str(seed), "--port", "0",
         "--env-file", str(env_file)],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not env_file.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the sandbox exited early with code {proc.returncode} (see {log.name})")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the sandbox did not start within 120 s (see {log.name})")
        time.sleep(0.2)
    return proc


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def fresh_demo_dir(demo_dir: Path) -> None:
    """Empty the demo's folder but for dbt's parse: a new sandbox tenant needs a new warehouse."""
    demo_dir.mkdir(parents=True, exist_ok=True)
    for path in demo_dir.iterdir():
        if path.name in KEEP:
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def fresh_postgres_warehouse(warehouse: Warehouse) -> None:
    """The demo never empties a Postgres database it was pointed at: it refuses one that holds a warehouse."""
    with warehouse.connect(read_only=True) as con:
        held = [schema for (schema,) in con.execute(
            "select schema_name from information_schema.schemata where schema_name in (?, ?, ?) "
            "order by schema_name", ["raw_b2c", "marts", "reverse_etl"])]
    if held:
        raise SystemExit(f"the demo needs a warehouse of its own, and {warehouse} already holds one (schemas "
                         f"{', '.join(held)}): point WAREHOUSE_URL at an empty database")


def demo_environment(demo_dir: Path) -> dict[str, str]:
    """Where the demo's runs keep their data: all inside the demo's folder."""
    return {"WAREHOUSE_PATH": str(demo_dir / "warehouse.duckdb"),
            "ANALYST_DB_PATH": str(demo_dir / "analyst.duckdb"),
            "COMPLIANCE_DB_PATH": str(demo_dir / "compliance.duckdb"),
            "STEWARD_DB_PATH": "",
            "GATEWAY_INBOX_PATH": str(demo_dir / "inbox.sqlite3")}


@contextlib.contextmanager
def output_to(log: IO[str]) -> Iterator[None]:
    """Send everything this process and its children write to stdout and stderr to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def _value(metadata: dict[str, Any], key: str, default: Any = 0) -> Any:
    value = metadata.get(key)
    return default if value is None else getattr(value, "value", value)


def _counts(counts: dict[str, int], words: dict[str, str] | None = None) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{(words or {}).get(name, name)} {count:,}" for name, count in ordered)


def ingested(materializations: dict[dg.AssetKey, dict[str, Any]], quarantined_before: int) -> tuple[str, int]:
    """``B2C 1,000 users (1,000 new or changed), ...; 3 records quarantined`` and the quarantine total now."""
    loads = {}
    for metadata in materializations.values():
        schema, _, name = str(_value(metadata, "dagster/table_name", "")).partition(".")
        if schema in SOURCES and _value(metadata, "configured", True) is not False:
            loads[schema] = (name, metadata)
    parts, quarantined = [], 0
    for schema in (schema for schema in SOURCES if schema in loads):
        name, metadata = loads[schema]
        live, loaded = _value(metadata, "rows_live"), _value(metadata, "rows_loaded")
        quarantined += _value(metadata, "rows_quarantined_total")
        if live or loaded:  # a system the sandbox leaves empty says nothing
            noun = "contacts" if name == "contact" else name
            parts.append(f"{SOURCES[schema]} {live:,} {noun} ({loaded:,} new or changed)")
    new_quarantined = max(quarantined - quarantined_before, 0)
    line = ", ".join(parts) or "nothing"
    if new_quarantined:
        line += f"; {new_quarantined:,} malformed records quarantined"
    return line, quarantined


def linked(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    by_rule = _value(metadata, "links_new_by_rule", {})
    lines = [("linked", f"{sum(by_rule.values()):,} new links" + (f" by rule: {_counts(by_rule)}" if by_rule else "")
              + f"; {_value(metadata, 'links_active'):,} active in all")]
    ended = {words: _value(metadata, f"links_{status}") for status, words in ENDED.items()}
    if any(ended.values()):
        undone = _counts({words: count for words, count in ended.items() if count})
        lines.append(("to undo", f"{sum(ended.values()):,} links whose ids are cleared: {undone}"))
    conflicts = _value(metadata, "conflicts_by_reason", {})
    if conflicts:
        reasons = _counts(conflicts, REVIEW_REASONS)
        lines.append(("for review", f"{sum(conflicts.values()):,} in marts.link_conflicts: {reasons}"))
    duplicates = _value(metadata, "crm_duplicate_contacts")
    if duplicates:
        lines.append(("", f"{duplicates:,} CRM duplicates of linked contacts listed in marts.crm_duplicate_contacts"))
    return lines


def pushed(warehouse: Warehouse, run_id: str,
           materializations: dict[dg.AssetKey, dict[str, Any]]) -> list[tuple[str, str]]:
    """What each push of the run wrote (systems it could not reach are not configured in the sandbox), and why
    each refused record failed."""
    with warehouse.connect(read_only=True) as con:
        pushes = run_pushes(con, run_id)
    ran = {str(_value(metadata, "system")) for key, metadata in materializations.items()
           if key.path[0] == "reverse_etl" and _value(metadata, "configured", True) is not False}
    systems = sorted(ran | {system for system, _ in pushes.succeeded} | {f.system for f in pushes.failures},
                     key=lambda s: PUSH_ORDER.index(s) if s in PUSH_ORDER else len(PUSH_ORDER))
    lines = [(SYSTEM_NAMES.get(system, system), pushes.summary(system)) for system in systems]
    lines += [("failed" if not failure.written else "partly", failure.explain(with_code=True))
              for failure in pushes.failures]
    return lines or [("pushed", "nothing to write")]


def checked(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    evaluations = result.get_asset_check_evaluations()
    failed = [e for e in evaluations if not e.passed]
    lines = [("checks", f"{len(evaluations) - len(failed)} of {len(evaluations)} passed")]
    for evaluation in failed:
        level = "warned" if evaluation.severity == dg.AssetCheckSeverity.WARN else "failed"
        lines.append((f"check {level}", f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}"
                      + (f": {evaluation.description}" if evaluation.description else "")))
    return lines


def failure_lines(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    lines = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        message = (error.message if error else "no error recorded").strip().splitlines()[0][:160]
        lines.append(("step failed", f"{event.step_key}: {message}"))
    return lines


def story(result: dg.ExecuteInProcessResult, warehouse: Warehouse, pushes: bool,
          quarantined_before: int) -> tuple[list[tuple[str, str]], int]:
    """What one run did, as (label, text) lines, and the quarantine total after it."""
    materializations = {event.asset_key: dict(event.materialization.metadata)
                        for event in result.get_asset_materialization_events()}
    line, quarantined = ingested(materializations, quarantined_before)
    lines = [("ingested", line)]
    links = materializations.get(dg.AssetKey("identity_contact_links"))
    lines += linked(links) if links else [("linked", "no link build (see the log)")]
    if pushes:
        lines += pushed(warehouse, result.run_id, materializations)
    lines += checked(result) + failure_lines(result)
    return lines, quarantined


def final_state(warehouse: Warehouse) -> str:
    with warehouse.connect(read_only=True) as con:
        by_crm = dict(con.execute("select crm, count(*) from marts.identity_contact_links where status = 'active' "
                                  "group by crm"))
        to_create = con.scalar("select count(*) from marts.contacts_to_create")
        to_push = con.scalar("select count(*) from marts.external_ids_to_push")
        dead = con.scalar("select count(*) from reverse_etl.dead_letters")
    left = (f"{_plural(to_create, 'contact')} still to create, {_plural(to_push, 'id')} still to write"
            if to_create or to_push else "nothing left to create or write")
    crms = _counts({SYSTEM_NAMES.get(crm, crm): count for crm, count in by_crm.items()})
    return (f"Now: {sum(by_crm.values()):,} active links ({crms}); {left}; "
            f"{_plural(dead, 'record')} failed for good, waiting in reverse_etl.dead_letters.")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _say(out: IO[str], lines: list[tuple[str, str]]) -> None:
    for label, text in lines:
        out.write(f"  {label:<12} {text}\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="synthetic people in the sandbox")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=DEMO_DIR, help="the demo's warehouse and logs (emptied first)")
    args = parser.parse_args(argv)

    demo_dir = args.dir.resolve()
    # the demo's own warehouse: a file in its folder, or the (empty) Postgres database WAREHOUSE_URL names
    warehouse = Warehouse(demo_dir / "warehouse.duckdb", os.environ.get("WAREHOUSE_URL", "").strip() or None)
    if warehouse.url:
        fresh_postgres_warehouse(warehouse)
    fresh_demo_dir(demo_dir)
    log_path = demo_dir / "demo.log"
    out = sys.stdout
    out.write(f"idlink demo: {args.size:,} synthetic people in a local sandbox standing in for B2C, Akamai, "
              f"Salesforce and Dynamics over HTTPS.\nWarehouse {warehouse} (started afresh); "
              f"everything the runs log goes to {log_path}\n")
    out.flush()
    terminal = os.fdopen(os.dup(out.fileno()), "w", buffering=1)
    with open(log_path, "a", buffering=1) as log, tempfile.TemporaryDirectory(prefix="idlink-demo-") as tmp:
        env_file = Path(tmp) / "sandbox.env"
        with output_to(log):
            sandbox = start_sandbox(args.size, args.seed, env_file, log)
            try:
                # the demo is an edge: the sandbox's variables and the demo's paths join the environment the
                # settings and the runs read
                os.environ.update({**read_env_file(env_file), **demo_environment(demo_dir)})
                settings = load_settings()
                defs = build_definitions()
                instance = (dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME")
                            else dg.DagsterInstance.ephemeral())
                quarantined = 0
                for number, (job_name, what) in enumerate(RUNS, start=1):
                    started = time.monotonic()
                    result = run_job(defs, job_name, instance, tags={"idlink/trigger": "demo"})
                    terminal.write(f"\nRun {number} of {len(RUNS)}: {job_name} ({what}) "
                                   f"{'succeeded' if result.success else 'FAILED'} in "
                                   f"{time.monotonic() - started:.0f} s, run {result.run_id[:8]}\n")
                    lines, quarantined = story(result, warehouse, job_name == "full_sync", quarantined)
                    _say(terminal, lines)
                    if not result.success:
                        terminal.write(f"The demo stops here; the run's full log is in {log_path}\n")
                        return 1
            finally:
                sandbox.terminate()
                sandbox.wait(timeout=30)
    terminal.write(f"\n{final_state(warehouse)}\n")
    terminal.write(f"Analysts query the published schema {', '.join(ANALYST.schemas)} as members of the Postgres "
                   f"role {ANALYST.database_role}\n" if warehouse.url else
                   f"Analysts query the published copy: duckdb -readonly {settings.publish.analyst_db_path}\n")
    terminal.write(f"See these runs in the Dagster UI: make dev, then http://127.0.0.1:3000/locations/"
                   f"{CODE_LOCATION}/jobs/full_sync/runs\n")
    terminal.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
