"""Near-real-time benchmark: event -> CRM latency, API-connector latency, gateway throughput.

Two ways to run it:
- against a running ``make dev`` stack (default): reads ``data/dev/dev.env`` (or ``--env-file``); Dagster's
  daemon evaluates the sensors and launches the runs, exactly as deployed;
- ``--start-stack``: starts its own sandbox, gateway and fast-lane worker (``--no-fast-lane`` leaves it out),
  runs one full sync to set the baseline, then evaluates the inbox sensor every second in this process and
  executes the requested runs in-process (Dagster's run-launch overhead is not part of these figures).

Figures:
- event_to_crm_p50_s / _p95_s: Akamai entity created (with consent) -> Contact with External_User_Id__c = uuid
  visible in the sandbox CRM (``/__sandbox/state``); entities are created at ``--rate`` per second;
- event_to_identity_p95_s: -> the contact id written back onto the Akamai entity (both directions linked);
- event_to_run_p50_s / _p95_s: -> the end of the first successful targeted Dagster run that fetched the entity
  (the warehouse holds the link and the audit); read from the runs executed here (``--start-stack``) or from
  the stack's Dagster instance (``DAGSTER_HOME``, default data/dagster_home);
- connector_p95_ms: B2C sign-up calls with consent against a bench-owned gateway while the sandbox adds
  ``--crm-latency-ms`` to every CRM call;
- gateway_events_per_s: verified webhook events stored durably per second by a bench-owned gateway
  (loopback load generator: keep-alive connections from threads; signed with the bench's own key; bounded by count and time).
Progress goes to stderr; the figures are one JSON line, last on stdout.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import dagster as dg

from orchestration.definitions import build_definitions
from orchestration.defs import realtime
from orchestration.defs.resources import build_resources
from settings import load_settings

BENCH_ISSUER = "idlink-bench"
BENCH_AUDIENCE = "urn:idlink:bench:webhooks"


def say(message: str) -> None:
    print(f"[realtime] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")
        time.sleep(interval_s)


# ---- processes ----------------------------------------------------------------------------------------------

@contextmanager
def process(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def start_sandbox(stack: ExitStack, workdir: Path, webhook_url: str, size: int) -> dict[str, str]:
    env_file = workdir / "sandbox.env"
    args = [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--size", str(size), "--env-file",
            str(env_file), "--state-dir", str(workdir / "sandbox"), "--webhook-url", webhook_url]
    proc = stack.enter_context(process(args, dict(os.environ), workdir / "sandbox.log"))

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited: see {workdir / 'sandbox.log'}")
        return env_file.exists()

    wait_until(ready, 120, "sandbox")
    return read_env_file(env_file)


def start_gateway(stack: ExitStack, env: dict[str, str], port: int, log_path: Path, workers: int = 1) -> str:
    args = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--workers", str(workers)]
    proc = stack.enter_context(process(args, env, log_path))
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited: see {log_path}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 60, "gateway")
    return url


class BenchKeys:
    """The bench's own webhook signing key, published as a JWKS on loopback."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        body = json.dumps({"keys": [{**RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True),
                                     "kid": self.kid, "use": "sig", "alg": "RS256"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self) -> str:
        now = int(time.time())
        claims = {"iss": BENCH_ISSUER, "aud": BENCH_AUDIENCE, "iat": now, "jti": str(uuid.uuid4()),
                  "events": {"entityUpdated": {"entityType": "user", "sub": str(uuid.uuid4())}}}
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid, "typ": "secevent+jwt"})


# ---- event -> CRM -------------------------------------------------------------------------------------------

class InProcessSensorLoop:
    """Evaluates the inbox sensor every ``interval_s`` and executes each requested run in this process."""

    def __init__(self, interval_s: float = 1.0) -> None:
        # built after the stack's environment is set: the code location's edge reads it
        self.defs = defs = build_definitions()
        self.resources = build_resources(load_settings())
        self.job = defs.resolve_job_def("full_sync")
        self.interval_s = interval_s
        self.cursor: str | None = None
        self.runs = 0
        self.failed_runs = 0
        self.finished: list[tuple[float, list[str]]] = []  # (wall-clock end, Akamai uuids fetched) per run

    def run_full_sync(self) -> bool:
        return self.job.execute_in_process(raise_on_error=False, tags={"idlink/trigger": "bench"}).success

    def run_until(self, done: threading.Event) -> None:
        """Tick until ``done`` is set. Runs on the main thread: in-process execution installs signal handlers."""
        while not done.is_set():
            started = time.monotonic()
            context = dg.build_sensor_context(cursor=self.cursor, definitions=self.defs, resources=self.resources)
            data = realtime.inbox_sensor.evaluate_tick(context)
            self.cursor = data.cursor or self.cursor
            for request in data.run_requests:
                result = self.job.execute_in_process(
                    run_config=request.run_config, tags=request.tags, raise_on_error=False,
                    asset_selection=request.asset_selection)
                self.runs += 1
                self.failed_runs += 0 if result.success else 1
                if result.success:
                    self.finished.append((time.time(), akamai_uuids_of(request.run_config)))
            done.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


def akamai_uuids_of(run_config: dict) -> list[str]:
    ops = run_config.get("ops", {})
    return list(ops.get("akamai_users", {}).get("config", {}).get("identity_ids", []))


def dagster_runs_finished(since: float) -> list[tuple[float, list[str]]]:
    """(end time, Akamai uuids fetched) of the successful inbox-triggered runs of the stack's Dagster instance."""
    os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT / "data" / "dagster_home"))
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.SUCCESS], tags={"idlink/trigger": "inbox"},
            created_after=datetime.fromtimestamp(since, UTC)))
        return [(record.end_time, akamai_uuids_of(record.dagster_run.run_config))
                for record in records if record.end_time]


def first_covering_run(created: dict[str, float], runs: list[tuple[float, list[str]]]) -> list[float]:
    """Per uuid: seconds from its creation to the end of the first run that fetched it (uuids never fetched
    by a finished run are left out)."""
    latencies = []
    for uuid_, at in created.items():
        ends = [end for end, uuids in runs if uuid_ in uuids and end >= at]
        if ends:
            latencies.append(min(ends) - at)
    return latencies


def sandbox_tls(env: dict[str, str]) -> ssl.SSLContext | bool:
    cafile = env.get("SANDBOX_CA_BUNDLE") or env.get("IDLINK_CA_BUNDLE")
    return ssl.create_default_context(cafile=cafile) if cafile else True


def measure_event_to_crm(env: dict[str, str], n: int, rate: float, timeout_s: float) -> dict[str, Any]:
    """Creates ``n`` entities at ``rate``/s while a second thread watches the sandbox's state, so each latency
    ends when the change becomes visible (within one 0.25 s poll), not when the last entity was created."""
    ca = sandbox_tls(env)
    ext_field = env.get("SALESFORCE_EXTERNAL_ID_FIELD") or "External_User_Id__c"
    contact_attribute = env.get("AKAMAI_CONTACT_ID_ATTRIBUTE") or "crmContactId"
    created: dict[str, float] = {}
    created_wall: dict[str, float] = {}
    seen: dict[str, float] = {}
    linked_back: dict[str, float] = {}
    lock = threading.Lock()
    creating_done = threading.Event()

    def watch() -> None:
        with httpx.Client(verify=ca, timeout=30.0) as http:
            deadline = None
            last_report = 0.0
            while True:
                state = http.get(f"{env['SANDBOX_URL']}/__sandbox/state").json()
                now = time.monotonic()
                with lock:
                    for contact in state.get("salesforce", {}).get("Contact", []):
                        ext = contact.get(ext_field)
                        if ext in created and ext not in seen:
                            seen[ext] = now
                    for user in state.get("akamai", {}).get("users", []):
                        if user.get("uuid") in created and user.get(contact_attribute) and user["uuid"] not in linked_back:
                            linked_back[user["uuid"]] = now
                    complete = len(seen) == len(created) and len(linked_back) == len(created)
                if creating_done.is_set():
                    deadline = deadline or now + timeout_s
                    if complete or now > deadline:
                        return
                if now - last_report > 5:
                    say(f"contacts visible: {len(seen)}/{len(created)}, contact ids on identities: "
                        f"{len(linked_back)}/{len(created)}")
                    last_report = now
                time.sleep(max(0.0, 0.25 - (time.monotonic() - now)))

    watcher = threading.Thread(target=watch, name="watch-sandbox", daemon=True)
    watcher.start()
    with httpx.Client(verify=ca, timeout=30.0) as http:
        auth = (env["AKAMAI_CLIENT_ID"], env["AKAMAI_CLIENT_SECRET"])
        tag = uuid.uuid4().hex[:8]
        say(f"creating {n} consenting Akamai entities at {rate:g}/s")
        for i in range(n):
            attributes = {"email": f"rt-{tag}-{i}@bench.example.org", "givenName": "Bench",
                          "familyName": f"Realtime{i}", "consents": {"crmSync": {"granted": True}}}
            sent = time.monotonic()
            response = http.post(f"{env['AKAMAI_BASE_URL']}/entity.create", auth=auth,
                                 data={"type_name": env.get("AKAMAI_ENTITY_TYPE", "user"),
                                       "attributes": json.dumps(attributes)})
            body = response.json()
            if body.get("stat") != "ok":
                raise RuntimeError(f"entity.create failed: {body.get('error')}")
            with lock:
                created[body["uuid"]] = sent
                created_wall[body["uuid"]] = time.time() - (time.monotonic() - sent)
            time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - sent)))
    creating_done.set()
    watcher.join()
    say(f"contacts visible: {len(seen)}/{len(created)}, contact ids on identities: {len(linked_back)}/{len(created)}")
    latencies = [seen[u] - created[u] for u in seen]
    back = [linked_back[u] - created[u] for u in linked_back]
    return {"event_to_crm_p50_s": _round(percentile(latencies, 50), 2),
            "event_to_crm_p95_s": _round(percentile(latencies, 95), 2),
            "event_to_crm_completed": len(seen), "event_to_crm_total": len(created),
            "event_to_identity_p95_s": _round(percentile(back, 95), 2), "event_to_identity_completed": len(back),
            "_created_wall": created_wall}


def run_latencies(created_wall: dict[str, float], runs: list[tuple[float, list[str]]]) -> dict[str, Any]:
    latencies = first_covering_run(created_wall, runs)
    return {"event_to_run_p50_s": _round(percentile(latencies, 50), 2),
            "event_to_run_p95_s": _round(percentile(latencies, 95), 2), "event_to_run_completed": len(latencies)}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# ---- API connector ------------------------------------------------------------------------------------------

def measure_connector(gateway_url: str, env: dict[str, str], calls: int, crm_latency_ms: float) -> dict[str, Any]:
    ca = sandbox_tls(env)
    admin = httpx.Client(verify=ca, timeout=30.0)
    previous = admin.get(f"{env['SANDBOX_URL']}/__sandbox/health")  # fail early when the sandbox is gone
    previous.raise_for_status()
    config = admin.post(f"{env['SANDBOX_URL']}/__sandbox/config", json={"latency_ms": crm_latency_ms}).json()
    say(f"connector: {calls} consenting sign-ups, CRM latency {config.get('latency_ms')} ms")
    latencies, with_claim = [], 0
    tag = uuid.uuid4().hex[:8]
    try:
        with httpx.Client(timeout=30.0, auth=(env["CONNECTOR_USERNAME"], env["CONNECTOR_PASSWORD"])) as http:
            for i in range(calls + 5):
                body = {"email": f"signup-{tag}-{i}@bench.example.org", "givenName": "Bench",
                        "surname": f"Signup{i}", "objectId": str(uuid.uuid4()), "extension_CrmSyncConsent": True,
                        "step": "PostAttributeCollection", "client_id": "bench", "ui_locales": "en"}
                started = time.perf_counter()
                response = http.post(f"{gateway_url}/connectors/b2c/signup", json=body)
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                if i >= 5:  # the first calls warm up the CRM token and connections
                    latencies.append(elapsed * 1000)
                    with_claim += "extension_CrmContactId" in response.json()
    finally:
        admin.post(f"{env['SANDBOX_URL']}/__sandbox/config", json={"latency_ms": 0})
        admin.close()
    return {"connector_p50_ms": _round(percentile(latencies, 50), 1),
            "connector_p95_ms": _round(percentile(latencies, 95), 1),
            "connector_calls_with_contact_id": with_claim, "connector_calls": len(latencies)}


# ---- gateway throughput -------------------------------------------------------------------------------------

def _load(url: str, tokens: list[str], concurrency: int, max_s: float) -> tuple[int, int, float]:
    """Post every token over ``concurrency`` keep-alive connections (threads; the standard library's client
    costs far less CPU per request than an async pool, and the generator shares the cores with the gateway)."""
    target = urlsplit(url)
    pending = iter(tokens)
    lock = threading.Lock()
    counts = {"accepted": 0, "refused": 0}
    deadline = time.monotonic() + max_s

    def worker() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    token = next(pending, None)
                if token is None:
                    return
                conn.request("POST", target.path, body=token, headers={"Content-Type": "application/secevent+jwt"})
                response = conn.getresponse()
                response.read()
                with lock:
                    counts["accepted" if response.status == 202 else "refused"] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["accepted"], counts["refused"], time.perf_counter() - started


def measure_gateway(gateway_url: str, keys: BenchKeys, inbox_path: Path, events: int, concurrency: int,
                    max_s: float) -> dict[str, Any]:
    say(f"signing {events} webhook tokens")
    tokens = [keys.token() for _ in range(events)]
    before = _stored(inbox_path)
    say(f"posting them with {concurrency} concurrent connections (at most {max_s:g} s)")
    accepted, refused, elapsed = _load(f"{gateway_url}/webhooks/akamai", tokens, concurrency, max_s)
    stored = _stored(inbox_path) - before
    say(f"accepted {accepted}, refused {refused}, stored {stored} in {elapsed:.2f} s")
    if stored < accepted:
        raise RuntimeError(f"gateway acknowledged {accepted} events but stored {stored}")
    return {"gateway_events_per_s": round(stored / elapsed, 1), "gateway_events_accepted": accepted,
            "gateway_events_refused": refused}


def _stored(inbox_path: Path) -> int:
    if not inbox_path.exists():
        return 0
    with sqlite3.connect(inbox_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM events WHERE source = 'akamai'").fetchone()[0]


# ---- main ---------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-file", type=Path, default=REPO_ROOT / "data/dev/dev.env",
                        help="environment of the running stack (make dev writes data/dev/dev.env)")
    parser.add_argument("--sandbox-url", help="override SANDBOX_URL from the env file")
    parser.add_argument("--gateway-url", help="the stack's gateway (override GATEWAY_URL); checked for health")
    parser.add_argument("--start-stack", action="store_true", help="start a sandbox and gateway; drive sensors here")
    parser.add_argument("--size", type=int, default=300, help="sandbox size with --start-stack")
    parser.add_argument("--entities", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0, help="entities created per second")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="wait for contacts at most this long")
    parser.add_argument("--connector-calls", type=int, default=100)
    parser.add_argument("--crm-latency-ms", type=float, default=20.0)
    parser.add_argument("--load-events", type=int, default=5000)
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--load-concurrency", type=int, default=48)
    parser.add_argument("--skip-events", action="store_true",
                        help="measure the gateway and the connector only (no stack needed besides a sandbox)")
    parser.add_argument("--gateway-workers", type=int, default=1, help="worker processes of the bench gateway")
    parser.add_argument("--no-fast-lane", action="store_true",
                        help="with --start-stack: no fast-lane worker (the sensor-launched runs alone)")
    parser.add_argument("--run-wait-s", type=float, default=60.0,
                        help="after the contacts appear, wait this long for the targeted runs to finish")
    args = parser.parse_args(argv)
    # In-process runs (dbt among them) write to stdout; keep it for the one JSON line and send the rest to stderr.
    figures_out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    results: dict[str, Any] = {"mode": "start-stack" if args.start_stack else "attached"}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="idlink-bench-realtime-") as tmp:
        workdir = Path(tmp)
        base_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(REPO_ROOT)}
        if args.start_stack and args.skip_events:
            env = start_sandbox(stack, workdir, "", args.size)
        elif args.start_stack:
            stack_port = free_port()
            env = start_sandbox(stack, workdir, f"http://127.0.0.1:{stack_port}/webhooks/akamai", args.size)
            stack_env = base_env | env | {"GATEWAY_INBOX_PATH": str(workdir / "stack-inbox.sqlite3"),
                                          "WAREHOUSE_PATH": str(workdir / "warehouse.duckdb")}
            start_gateway(stack, stack_env, stack_port, workdir / "stack-gateway.log")
            if not args.no_fast_lane:
                stack.enter_context(process([sys.executable, "-m", "gateway", "fast-lane", "--log-level", "warning"],
                                            stack_env, workdir / "stack-fast-lane.log"))
            results["fast_lane"] = not args.no_fast_lane
            os.environ.update({k: v for k, v in stack_env.items() if k != "PYTHONPATH"})
            say("stack up; running the baseline full_sync in-process")
            loop = InProcessSensorLoop()
            if not loop.run_full_sync():
                raise RuntimeError("baseline full_sync failed")
            done = threading.Event()
            measured: dict[str, Any] = {}

            def measure() -> None:
                try:
                    measured.update(measure_event_to_crm(env, args.entities, args.rate, args.timeout_s))
                    # the targeted runs for the last events may still be going
                    wait_s = time.monotonic() + args.run_wait_s
                    while time.monotonic() < wait_s and len(first_covering_run(
                            measured["_created_wall"], loop.finished)) < len(measured["_created_wall"]):
                        time.sleep(0.5)
                finally:
                    done.set()

            threading.Thread(target=measure, name="event-to-crm", daemon=True).start()
            loop.run_until(done)
            created_wall = measured.pop("_created_wall", {})
            results.update(measured)
            results.update(run_latencies(created_wall, loop.finished))
            results.update(sensor_runs=loop.runs, failed_runs=loop.failed_runs)
        else:
            if not args.env_file.exists():
                parser.error(f"{args.env_file} not found: start `make dev` or pass --start-stack")
            env = read_env_file(args.env_file)
            if args.sandbox_url:
                env["SANDBOX_URL"] = args.sandbox_url
            gateway_url = args.gateway_url or env.get("GATEWAY_URL")
            if gateway_url:
                httpx.get(f"{gateway_url}/healthz", timeout=5.0).raise_for_status()
            if not args.skip_events:
                started = time.time()
                measured = measure_event_to_crm(env, args.entities, args.rate, args.timeout_s)
                created_wall = measured.pop("_created_wall")
                results.update(measured)
                deadline = time.monotonic() + args.run_wait_s
                while True:
                    runs = dagster_runs_finished(started)
                    if len(first_covering_run(created_wall, runs)) == len(created_wall) or time.monotonic() > deadline:
                        break
                    time.sleep(1.0)
                results.update(run_latencies(created_wall, runs))

        keys = BenchKeys()
        bench_inbox = workdir / "bench-inbox.sqlite3"
        bench_env = base_env | env | {
            "GATEWAY_INBOX_PATH": str(bench_inbox), "AKAMAI_WEBHOOK_JWKS_URL": keys.url,
            "AKAMAI_WEBHOOK_ISSUER": BENCH_ISSUER, "AKAMAI_WEBHOOK_AUDIENCE": BENCH_AUDIENCE,
            "CONNECTOR_USERNAME": "bench-connector", "CONNECTOR_PASSWORD": uuid.uuid4().hex}
        bench_gateway = start_gateway(stack, bench_env, free_port(), workdir / "bench-gateway.log",
                                      workers=args.gateway_workers)
        results.update(measure_connector(bench_gateway, bench_env, args.connector_calls, args.crm_latency_ms))
        results.update(measure_gateway(bench_gateway, keys, bench_inbox, args.load_events,
                                       args.load_concurrency, args.load_seconds))
        keys.httpd.shutdown()
    results.setdefault("event_to_crm_p50_s", None)
    results.setdefault("event_to_crm_p95_s", None)
    results["targets_met"] = {
        "event_to_crm_p95_le_10s": results["event_to_crm_p95_s"] is not None
        and results["event_to_crm_p95_s"] <= 10 and results["event_to_crm_completed"] == results["event_to_crm_total"],
        "connector_p95_le_100ms": (results.get("connector_p95_ms") or 1e9) <= 100,
        "gateway_ge_1000_per_s": results["gateway_events_per_s"] >= 1000,
    }
    print(json.dumps(results), file=figures_out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
