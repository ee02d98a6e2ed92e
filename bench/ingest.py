"""Ingestion benchmark: how close the dlt loads of B2C users and Salesforce contacts come to the raw download.

    python bench/ingest.py --size N [--fault-rate R] [--crm dynamics]

With ``--crm dynamics`` it loads N Dynamics 365 / Dataverse contacts instead (change tracking, pages of 5,000)
and prints their time and API calls per record.

Starts the API sandbox with ``--size N``, then measures
  (a) the raw download limit: the same Graph and Salesforce pages (same fields, same page sizes) fetched by a
      bare keep-alive HTTP client and thrown away;
  (b) the dlt loads of all users and contacts into a fresh DuckDB warehouse.
Progress goes to stderr; the last stdout line is one JSON object with size, seconds, rows_per_s, limit_ratio
(raw seconds / load seconds) and peak_rss_mb (this process and its children, the sandbox excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import duckdb
import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from clients.graph import GraphClient
from clients.http import new_session
from clients.salesforce import SalesforceClient
from ingestion import b2c as b2c_ingestion
from ingestion import normalize as n
from ingestion import salesforce as salesforce_ingestion
from ingestion.pipeline import run_b2c, run_dynamics, run_salesforce
from settings import GraphSettings, SalesforceSettings, load_settings


def log(message: str) -> None:
    print(f"[bench ingest] {message}", file=sys.stderr, flush=True)


class PeakMemory:
    """Samples the RSS of this process and its children (except the sandbox) and keeps the peak."""

    def __init__(self, exclude_pid: int) -> None:
        self.exclude = exclude_pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:  # children come and go (worker processes): skip any that vanish mid-sample
                if child.pid == self.exclude or self.exclude in {p.pid for p in child.parents()}:
                    continue
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.2)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def start_sandbox(workdir: Path, size: int, fault_rate: float,
                  extra_args: list[str] = ()) -> tuple[subprocess.Popen, dict[str, str]]:
    env_file = workdir / "sandbox.env"
    args = [
        sys.executable,
        "-m",
        "sandbox",
        "serve",
        "--size",
        str(size),
        "--fault-rate",
        str(fault_rate),
        "--port",
        "0",
        "--env-file",
        str(env_file),
        "--state-dir",
        str(workdir / "state"),
        *extra_args,
    ]
    stderr = (workdir / "sandbox.stderr").open("wb")
    process = subprocess.Popen(
        args,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    started = time.monotonic()
    while not env_file.exists():
        if process.poll() is not None:
            raise RuntimeError("sandbox exited early:\n" + (workdir / "sandbox.stderr").read_text()[-2000:])
        time.sleep(0.2)
    log(f"sandbox ready after {time.monotonic() - started:.1f} s")
    env = {}
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip():
            env[key.strip()] = value
    return process, env


def raw_download(graph: GraphSettings, sf: SalesforceSettings) -> tuple[float, int, int]:
    """Seconds to fetch every page the loads fetch, with a bare keep-alive session; bodies are discarded."""
    graph_token = GraphClient(graph).token()
    sf_client = SalesforceClient(sf)
    fields = ", ".join(salesforce_ingestion.contact_fields(sf_client))
    sf_token, instance = sf_client._credentials()
    session: requests.Session = new_session(graph.ca_bundle)
    select = ",".join(b2c_ingestion.select_fields(graph))

    def get(url: str, token: str, **kw) -> dict:
        for _ in range(20):  # the raw client retries too when the sandbox injects faults
            try:
                response = session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kw)
            except requests.RequestException:
                continue
            if response.status_code == 200:
                return response.json()
        raise RuntimeError(f"raw download of {url.split('?')[0]} kept failing")

    started = time.monotonic()
    users = 0
    url: str | None = f"{graph.graph_base_url}/v1.0/users"
    params: dict | None = {"$select": select, "$top": "999"}
    while url:
        body = get(url, graph_token, params=params)
        params = None
        users += len(body["value"])
        url = body.get("@odata.nextLink")
    contacts = 0
    body = get(
        f"{instance}/services/data/v{sf.api_version}/query",
        sf_token,
        params={"q": f"SELECT {fields} FROM Contact"},
    )
    while True:
        contacts += len(body["records"])
        if body.get("done", True):
            break
        body = get(instance + body["nextRecordsUrl"], sf_token)
    return time.monotonic() - started, users, contacts


def step_times(info) -> str:
    steps = info.pipeline.last_trace.steps
    return ", ".join(f"{s.step} {(s.finished_at - s.started_at).total_seconds():.1f} s" for s in steps
                     if s.step != "run")


def warm_up() -> None:
    """First-use costs (lazy imports, phone metadata per country) are not throughput: pay them up front."""
    for country, number in (
        ("US", "201 555 0123"),
        ("GB", "07911 123456"),
        ("DE", "01512 3456789"),
        ("FR", "06 12 34 56 78"),
        ("ES", "612 34 56 78"),
        ("NL", "06 12345678"),
        ("IE", "085 123 4567"),
        ("CA", "416 555 0123"),
        ("AU", "0412 345 678"),
    ):
        n.phone_e164(number, country)
    n.normalize_email("warm.up@example.com")
    n.country_iso2("Deutschland")


def dynamics_contacts(size: int, out: Path) -> Path:
    """About N synthetic contacts in the Dataverse Web API's shape (one per person: names, addresses and phones of
    nine countries with their noise, a few carrying an identity id), written by the sandbox's generator in a
    process of its own so its memory is not counted as the load's."""
    subprocess.run([sys.executable, "-m", "sandbox.synthetic", "--size", str(round(size * 0.8)),
                    "--dynamics-share", "1.0", "--out", str(out)], cwd=REPO_ROOT, check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return out / "dynamics_contacts.jsonl"


def main_dynamics(size: int, fault_rate: float) -> int:
    """``--crm dynamics``: N Dataverse contacts read by change tracking (pages of 5,000) into a fresh warehouse."""
    with tempfile.TemporaryDirectory(prefix="idlink-bench-ingest-") as tmp:
        workdir = Path(tmp)
        seed = dynamics_contacts(size, workdir / "synthetic")
        process, env = start_sandbox(workdir, 0, fault_rate, ["--dynamics-contacts", str(seed)])
        try:
            settings = load_settings(env).dynamics
            warm_up()
            warehouse = str(workdir / "warehouse" / "warehouse.duckdb")
            before = sandbox_requests(env)
            with PeakMemory(exclude_pid=process.pid) as memory:
                started = time.monotonic()
                info = run_dynamics(settings, warehouse)
                seconds = time.monotonic() - started
            calls = sum(n for route, n in sandbox_requests(env).items() if "/dynamics/" in route) - \
                sum(n for route, n in before.items() if "/dynamics/" in route)
            log(f"dlt load of Dynamics contacts: {seconds:.1f} s ({step_times(info)}), {calls} requests")
            with duckdb.connect(warehouse, read_only=True) as con:
                loaded = con.execute("select count(*) from raw_dynamics.contact").fetchall()[0][0]
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    print(json.dumps({"crm": "dynamics", "size": size, "fault_rate": fault_rate, "contacts": loaded,
                      "seconds": round(seconds, 2), "rows_per_s": round(loaded / seconds, 1), "api_calls": calls,
                      "calls_per_record": round(calls / max(loaded, 1), 6),
                      "peak_rss_mb": round(memory.peak / 2**20, 1)}))
    return 0


def sandbox_requests(env: dict[str, str]) -> dict[str, int]:
    response = requests.get(f"{env['SANDBOX_URL']}/__sandbox/stats", verify=env["SANDBOX_CA_BUNDLE"], timeout=30)
    return response.json()["requests"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--crm", choices=("salesforce", "dynamics"), default="salesforce",
                        help="dynamics: N Dataverse contacts instead of N B2C users + N Salesforce contacts")
    args = parser.parse_args()
    if args.crm == "dynamics":
        return main_dynamics(args.size, args.fault_rate)

    with tempfile.TemporaryDirectory(prefix="idlink-bench-ingest-") as tmp:
        workdir = Path(tmp)
        process, env = start_sandbox(workdir, args.size, args.fault_rate)
        try:
            graph = load_settings(env).graph
            sf = load_settings(env).salesforce
            warm_up()
            raw_s, users, contacts = raw_download(graph, sf)
            log(f"raw download: {users} users + {contacts} contacts in {raw_s:.1f} s")
            warehouse = str(workdir / "warehouse" / "warehouse.duckdb")
            with PeakMemory(exclude_pid=process.pid) as memory:
                started = time.monotonic()
                info = run_b2c(graph, warehouse)
                b2c_s = time.monotonic() - started
                log(f"dlt load of B2C users: {b2c_s:.1f} s ({step_times(info)})")
                info = run_salesforce(sf, warehouse)
                load_s = time.monotonic() - started
                log(f"dlt load of Salesforce contacts: {load_s - b2c_s:.1f} s ({step_times(info)})")
            con = duckdb.connect(warehouse, read_only=True)
            loaded_users = con.execute("select count(*) from raw_b2c.users").fetchall()[0][0]
            loaded_contacts = con.execute("select count(*) from raw_salesforce.contact").fetchall()[0][0]
            con.close()
            if (loaded_users, loaded_contacts) != (users, contacts):
                log(
                    f"WARNING: loaded {loaded_users} users / {loaded_contacts} contacts, "
                    f"raw download saw {users} / {contacts}"
                )
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    rows = loaded_users + loaded_contacts
    result = {
        "size": args.size,
        "fault_rate": args.fault_rate,
        "users": loaded_users,
        "contacts": loaded_contacts,
        "seconds": round(load_s, 2),
        "b2c_seconds": round(b2c_s, 2),
        "salesforce_seconds": round(load_s - b2c_s, 2),
        "raw_download_seconds": round(raw_s, 2),
        "rows_per_s": round(rows / load_s, 1),
        "limit_ratio": round(raw_s / load_s, 3),
        "peak_rss_mb": round(memory.peak / 2**20, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
