"""Reverse-ETL benchmark: API calls per record, batching gain over one-call-per-record, idempotent rerun, speed.

Starts the API sandbox with ``--latency-ms`` per call, builds a warehouse with N ``contacts_to_create`` rows and
N B2C ``external_ids_to_push`` rows, pushes both (Salesforce, then B2C), pushes again unchanged, and measures a
naive writer (one request per record) on a sample. Counts come from the sandbox's own request statistics.

    python bench/reverse_etl.py --size 100000 --latency-ms 50 [--crm dynamics]

With ``--crm dynamics`` it upserts N new contacts into Dynamics 365 / Dataverse instead (``$batch`` of 1,000
change sets, alternate key, create-only) and prints calls per record (target ≤ 1/500) and time.

Progress goes to stderr; the last line on stdout is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from clients.graph import GraphClient
from clients.salesforce import SalesforceClient
from reverse_etl.dynamics_writer import push_dynamics
from reverse_etl.mapping import mapping_for
from reverse_etl.runner import push_b2c, push_salesforce
from settings import GraphSettings, load_settings

EXTENSIONS_APP_ID = "b2c0e5a1-5e1d-4c2b-9a7f-3c1d2e4f5a6b"
NAIVE_SAMPLE = 1000


def progress(message: str) -> None:
    print(f"[bench reverse_etl {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def identity(n: int) -> str:
    return str(uuid.UUID(int=0xBE0C0000000000000000000000000000 + n))


def contact_id(n: int) -> str:
    return f"003B{n:011d}"[:15]


def start_sandbox(workdir: Path, size: int, latency_ms: float, users_too: bool = True
                  ) -> tuple[subprocess.Popen, dict[str, str]]:
    users = workdir / "users.jsonl"
    with users.open("w") as fh:
        for n in range(size + NAIVE_SAMPLE if users_too else 0):
            fh.write(json.dumps({"id": identity(n), "displayName": f"Bench user {n}", "accountEnabled": True}) + "\n")
    env_file = workdir / "sandbox.env"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--latency-ms", str(latency_ms), "--env-file", str(env_file),
         "--users", str(users), "--state-dir", str(workdir / "state"), "--extensions-app-id", EXTENSIONS_APP_ID],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=(workdir / "sandbox.stderr").open("wb"),
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    deadline = time.monotonic() + 180
    while not env_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"sandbox did not start: {(workdir / 'sandbox.stderr').read_text()[-2000:]}")
        time.sleep(0.1)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return process, env


def build_warehouse(path: Path, size: int, crm: str = "salesforce") -> None:
    """N contacts to create in ``crm`` and N contact ids to write on B2C users (synthetic values)."""
    ids = pa.table({"i": pa.array(range(size), pa.int64()),
                    "identity_id": pa.array([identity(n) for n in range(size)], pa.string())})
    with duckdb.connect(str(path)) as con:
        con.register("ids", ids)
        con.execute("CREATE SCHEMA marts")
        con.execute("""
            CREATE TABLE marts.contacts_to_create AS
            SELECT 'b2c' AS identity_provider, identity_id, ? AS crm, 'bench' || i || '@example.org' AS email,
                   'Given' || i AS given_name, 'Family' || i AS family_name,
                   '+4930' || lpad(CAST(i AS VARCHAR), 7, '0') AS phone_e164, i || ' Bench Street' AS street_address,
                   'Berlin' AS city, '10115' AS postal_code, 'DE' AS country_code, NULL::VARCHAR AS client_id,
                   true AS marketing_opt_out
            FROM ids""", [crm])
        con.execute("""
            CREATE TABLE marts.external_ids_to_push AS
            SELECT 'b2c' AS target_system, identity_id AS target_id, 'CrmContactId' AS attribute,
                   '003B' || lpad(CAST(i AS VARCHAR), 11, '0') AS value, 'link' AS reason,
                   'b2c' AS identity_provider, identity_id, 'salesforce' AS crm,
                   '003B' || lpad(CAST(i AS VARCHAR), 11, '0') AS contact_id, NULL::VARCHAR AS client_id
            FROM ids""")
        con.unregister("ids")


class Sandbox:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.http = httpx.Client(verify=env["SANDBOX_CA_BUNDLE"], timeout=60)

    def requests(self) -> dict[str, int]:
        return self.http.get(f"{self.env['SANDBOX_URL']}/__sandbox/stats").json()["requests"]


def salesforce_calls(requests: dict[str, int]) -> int:
    """Every Salesforce API request (writes, job polls, result downloads, describe); token requests excluded."""
    return sum(n for route, n in requests.items() if "/services/data/" in route and not route.startswith("$batch"))


def graph_calls(requests: dict[str, int]) -> int:
    return sum(n for route, n in requests.items() if route.startswith(("GET /v1.0", "POST /v1.0", "PATCH /v1.0")))


def write_calls(requests: dict[str, int]) -> int:
    return sum(n for route, n in requests.items()
               if route.startswith(("POST ", "PATCH ", "PUT ", "DELETE ")) and "token" not in route)


def delta(after: dict[str, int], before: dict[str, int], measure: Callable[[dict[str, int]], int]) -> int:
    return measure(after) - measure(before)


def naive_sample(sf: SalesforceClient, graph: GraphClient, graph_settings: GraphSettings, size: int,
                 workers: int) -> tuple[int, float]:
    """One request per record, as a writer without batching would do; returns (records written, seconds)."""
    attribute = graph_settings.extension_attribute("CrmContactId")
    field = sf.settings.external_id_field

    def one_contact(n: int) -> None:
        response = sf.request("PATCH", f"sobjects/Contact/{field}/{identity(size + n)}",
                              json={"LastName": f"Naive{n}", "Email": f"naive{n}@example.org"})
        response.raise_for_status()

    def one_user(n: int) -> None:
        response = graph.request("PATCH", f"users/{identity(size + n)}", json={attribute: contact_id(n)})
        response.raise_for_status()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one_contact, range(NAIVE_SAMPLE)))
        list(pool.map(one_user, range(NAIVE_SAMPLE)))
    return 2 * NAIVE_SAMPLE, time.monotonic() - started


def main_dynamics(size: int, latency_ms: float, workers: int) -> int:
    """``--crm dynamics``: N new contacts upserted into Dataverse by alternate key, $batch of 1,000 change sets."""
    with tempfile.TemporaryDirectory(prefix="bench-reverse-etl-") as tmp:
        workdir = Path(tmp)
        progress(f"starting sandbox ({latency_ms:g} ms latency)")
        process, env = start_sandbox(workdir, size, latency_ms, users_too=False)
        try:
            sandbox = Sandbox(env)
            warehouse = workdir / "warehouse.duckdb"
            build_warehouse(warehouse, size, crm="dynamics")
            loaded = load_settings(env)
            settings = loaded.dynamics
            mapping = mapping_for(loaded.field_mapping)
            before = sandbox.requests()
            started = time.monotonic()
            result = push_dynamics(warehouse, settings, mapping, "bench-1", max_workers=workers)
            seconds = time.monotonic() - started
            after = sandbox.requests()
            progress(f"dynamics: {result.succeeded}/{result.attempted} ok, {result.api_calls} $batch calls, "
                     f"{seconds:.1f} s")
            rerun = push_dynamics(warehouse, settings, mapping, "bench-2", max_workers=workers)
            rerun_writes = delta(sandbox.requests(), after, write_calls)
            progress(f"rerun: skipped {rerun.skipped}, {rerun_writes} write calls")
        finally:
            process.terminate()
            process.wait(timeout=30)
    calls = delta(after, before, dataverse_calls)
    figures = {"crm": "dynamics", "size": size, "latency_ms": latency_ms, "workers": workers, "records": size,
               "succeeded": result.succeeded, "calls": calls, "calls_per_record": round(calls / size, 6),
               "target_calls_per_record": round(1 / 500, 6), "naive_call_ratio": round(size / calls, 1),
               "rerun_write_calls": rerun_writes, "seconds": round(seconds, 2),
               "records_per_s": round(size / seconds, 1)}
    print(json.dumps(figures))
    return 0 if result.succeeded == size else 1


def dataverse_calls(requests: dict[str, int]) -> int:
    """Every Dataverse Web API request (metadata, $batch); token requests excluded."""
    return sum(n for route, n in requests.items() if "/dynamics/api/" in route and not route.startswith("$batch"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=4, help="concurrent requests per push")
    parser.add_argument("--crm", choices=("salesforce", "dynamics"), default="salesforce",
                        help="dynamics: N contacts upserted into Dataverse instead of Salesforce + B2C")
    args = parser.parse_args()
    if args.crm == "dynamics":
        return main_dynamics(args.size, args.latency_ms, args.workers)

    with tempfile.TemporaryDirectory(prefix="bench-reverse-etl-") as tmp:
        workdir = Path(tmp)
        progress(f"starting sandbox ({args.size + NAIVE_SAMPLE} B2C users, {args.latency_ms:g} ms latency)")
        process, env = start_sandbox(workdir, args.size, args.latency_ms)
        try:
            sandbox = Sandbox(env)
            warehouse = workdir / "warehouse.duckdb"
            progress(f"building warehouse: {args.size} contacts to create + {args.size} B2C external ids")
            build_warehouse(warehouse, args.size)
            settings = load_settings(env)
            sf_settings, graph_settings = settings.salesforce, settings.graph
            mapping = mapping_for(settings.field_mapping)

            before = sandbox.requests()
            started = time.monotonic()
            sf = push_salesforce(warehouse, sf_settings, mapping, "bench-1", max_workers=args.workers)
            progress(f"salesforce: {sf.succeeded}/{sf.attempted} ok, {sf.api_calls} calls, "
                     f"{time.monotonic() - started:.1f} s")
            middle = sandbox.requests()
            b2c = push_b2c(warehouse, graph_settings, mapping, "bench-1", max_workers=args.workers)
            seconds = time.monotonic() - started
            after = sandbox.requests()
            progress(f"b2c: {b2c.succeeded}/{b2c.attempted} ok, {b2c.api_calls} calls; total {seconds:.1f} s")

            rerun_sf = push_salesforce(warehouse, sf_settings, mapping, "bench-2", max_workers=args.workers)
            rerun_b2c = push_b2c(warehouse, graph_settings, mapping, "bench-2", max_workers=args.workers)
            after_rerun = sandbox.requests()
            rerun_writes = delta(after_rerun, after, write_calls)
            progress(f"rerun: skipped {rerun_sf.skipped} + {rerun_b2c.skipped}, {rerun_writes} write calls")

            progress(f"naive writer: {NAIVE_SAMPLE} contacts + {NAIVE_SAMPLE} users, one request each")
            naive_records, naive_seconds = naive_sample(SalesforceClient(sf_settings), GraphClient(graph_settings),
                                                        graph_settings, args.size, args.workers)
            naive_calls_per_record = delta(sandbox.requests(), after_rerun,
                                           lambda r: salesforce_calls(r) + graph_calls(r)) / naive_records
        finally:
            process.terminate()
            process.wait(timeout=30)

    records = 2 * args.size
    sf_calls = delta(middle, before, salesforce_calls)
    g_calls = delta(after, middle, graph_calls)
    ours = sf_calls + g_calls
    figures = {
        "size": args.size,
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "records": records,
        "succeeded": sf.succeeded + b2c.succeeded,
        "sf_calls": sf_calls,
        "graph_calls": g_calls,
        "sf_calls_per_record": round(sf_calls / args.size, 6),
        "graph_calls_per_record": round(g_calls / args.size, 6),
        "naive_calls_per_record": naive_calls_per_record,
        "naive_call_ratio": round(naive_calls_per_record * records / ours, 1),
        # per system: Graph's $batch takes at most 20 requests, which caps its gain at 20x whatever we do
        "sf_naive_call_ratio": round(args.size / sf_calls, 1),
        "graph_naive_call_ratio": round(args.size / g_calls, 1),
        "naive_seconds_extrapolated": round(naive_seconds / naive_records * records, 1),
        "rerun_write_calls": rerun_writes,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds, 1),
    }
    print(json.dumps(figures))
    return 0 if figures["succeeded"] == records else 1


if __name__ == "__main__":
    raise SystemExit(main())
