"""The chaos schedule: the whole stack against the sandbox with injected faults, kills and hostile input, then
the invariants idlink promises (README, "Guarantees"), checked once everything has converged.

One ``Chaos(seed, workdir)`` run:

1. a sandbox seeded with synthetic people (ground truth) plus hostile users and contacts (text that is not
   Unicode, oversized and control-character names, a non-ASCII email the CRM refuses), 20% of its data calls failing
   (429, 500, 503, connections dropped before or after the write);
2. the gateway and the fast lane as processes; Akamai sign-ups reach them as signed webhooks, B2C sign-ups
   as connector calls, each sent four times at once, and forged webhooks are sent beside them;
3. rounds of full_sync runs (each in its own process) killed with SIGKILL at random points, and the fast lane
   killed and restarted at random points;
4. faults off, the fast lane drained, full_sync run to completion until nothing is left to push;
5. the invariants (``Chaos.check``), each counted.

The schedule comes from ``random.Random(seed)``: the same seed replays the same decisions.
"""
from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import jwt

from sandbox.synthetic import DEFAULT_EXTENSIONS_APP_ID, generate
from tests.fixtures_sandbox import REPO_ROOT, RunningSandbox, launch_sandbox
from tests.gateway.support import SigningKey, set_claims
from tests.pii_files import files_with

EXT = f"extension_{DEFAULT_EXTENSIONS_APP_ID.replace('-', '')}_"
CONNECTOR_USER, CONNECTOR_PASSWORD = "chaos-connector", "chaos-connector-secret"
FAULT_KINDS = ["429", "500", "503", "drop"]
OPT_OUT_FIELD, MARKETING = "HasOptedOutOfEmail", "marketing"  # the purpose carried to the CRM (consent_purposes)
# codes of failures a retry can cure: such a record stays pending for the next run, it is never dead-lettered
TRANSIENT_CODES = {"HTTP_429", "HTTP_500", "HTTP_502", "HTTP_503", "HTTP_504", "REQUEST_LIMIT_EXCEEDED",
                   "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "ConnectionError", "ChunkedEncodingError",
                   "ReadTimeout", "ConnectTimeout", "Timeout", "RemoteDisconnected", "ProtocolError"}
FULL_SYNC_STEPS = 11  # ingestion (5), dbt, publishing, reverse ETL (4): a kill lands in any of them
SYNC_TIMEOUT_S = 600.0  # a ceiling: a run takes 20-40 s on an idle 2-core machine, 100 s at load 17


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def hostile_users() -> list[dict]:
    """B2C users no load may choke on: text that is not Unicode, oversized or control-character names."""
    def user(given: str, family: str, email: str) -> dict:
        return {"id": str(uuid.uuid4()), "displayName": f"{given} {family}", "givenName": given, "surname": family,
                "accountEnabled": True, "createdDateTime": "2024-01-01T00:00:00Z",
                "identities": [{"signInType": "emailAddress", "issuer": "t", "issuerAssignedId": email}],
                f"{EXT}CrmSyncConsent": True}

    return [user("Lone", "Surrogate\ud800", "lone.surrogate@example.org"),
            user("Bad\udcff", "Bytes", "bad.bytes@example.org"),
            user("Huge", "H" * 50_000, "huge.name@example.org"),
            user("Bell", "Ring\x07er", "bell.ringer@example.org"),
            user("Zoë", "Ümlaut", "zoë.ümlaut@exämple.org")]


def hostile_contacts() -> list[dict]:
    """Salesforce contacts no load may choke on (the text is not Unicode); idlink may only link them."""
    return [{"FirstName": "Lone", "LastName": "Contact\udc80",
             "Email": "lone.contact@example.org"},
            {"FirstName": "Bell\x07", "LastName": "Contact\ud834",
             "Email": None}]


@dataclass
class Report:
    seed: int
    checks: Counter = field(default_factory=Counter)  # invariant -> how many facts were checked
    violations: list[str] = field(default_factory=list)
    events: Counter = field(default_factory=Counter)  # what the schedule did

    def check(self, invariant: str, holds: bool, detail: str = "") -> None:
        self.checks[invariant] += 1
        if not holds:
            self.violations.append(f"{invariant}: {detail}")


class Process:
    """A stack process in its own process group, so a SIGKILL takes its children (dbt) with it."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=REPO_ROOT, env=self.env, stdout=out, stderr=out,
                                         start_new_session=True)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout_s: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9


class Chaos:
    def __init__(self, seed: int, workdir: Path, size: int = 40, rounds: int = 3) -> None:
        self.seed, self.workdir, self.size, self.rounds = seed, workdir, size, rounds
        self.random = random.Random(seed)
        self.report = Report(seed)
        self.run_dir = workdir / "run"  # everything idlink writes; only the warehouse may hold personal data
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.warehouse = self.run_dir / "warehouse.duckdb"
        self.inbox_path = self.run_dir / "inbox.sqlite3"
        self.port = free_port()
        self.sandbox: RunningSandbox | None = None
        self.gateway: Process | None = None
        self.fast_lane: Process | None = None
        self.signups: list[dict] = []  # B2C sign-ups sent: email, names, consent

    # ---- the stack ---------------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        assert self.sandbox is not None
        return {**os.environ, **self.sandbox.env, "WAREHOUSE_PATH": str(self.warehouse),
                "GATEWAY_INBOX_PATH": str(self.inbox_path), "CONNECTOR_USERNAME": CONNECTOR_USER,
                "CONNECTOR_PASSWORD": CONNECTOR_PASSWORD, "IDLINK_RETRY_MAX_S": "20",
                "FAST_LANE_CALL_BUDGET_S": "5", "PYTHONPATH": str(REPO_ROOT)}

    def start(self) -> None:
        data = generate(self.size, seed=self.seed)
        self.sandbox = launch_sandbox(
            self.workdir / "sandbox", users=data.users + hostile_users(), contacts=data.contacts + hostile_contacts(),
            akamai_users=data.akamai_users,
            extra_args=("--webhook-url", f"http://127.0.0.1:{self.port}/webhooks/akamai"))
        self.initial = self.sandbox.state()
        self.tenant_kid = self.sandbox.client.get(self.sandbox.env["AKAMAI_WEBHOOK_JWKS_URL"]).json()["keys"][0]["kid"]
        python = sys.executable
        self.gateway = Process([python, "-m", "gateway", "serve", "--port", str(self.port), "--log-level", "warning"],
                               self.env(), self.run_dir / "gateway.log").start()
        deadline = time.monotonic() + 60
        while not self._gateway_ready():
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.2)
        self.fast_lane = Process([python, "-m", "gateway", "fast-lane", "--log-level", "warning"], self.env(),
                                 self.run_dir / "fast_lane.log").start()

    def _gateway_ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for process in (self.fast_lane, self.gateway):
            if process is not None:
                process.kill()
        if self.sandbox is not None:
            self.sandbox.stop()

    def faults(self, rate: float) -> None:
        assert self.sandbox is not None
        self.sandbox.configure(fault_rate=rate, fault_kinds=FAULT_KINDS)

    # ---- what happens ------------------------------------------------------------------------------------------
    def akamai_sign_ups(self, n: int) -> None:
        """New Identity Cloud users (the sandbox sends each a signed webhook), some without consent, some sharing
        an email with an existing contact."""
        assert self.sandbox is not None
        env = self.sandbox.env
        # a sign-up shares a contact's email and names, never a hostile contact's text: the sandbox's Entity API
        # cannot serialise a lone surrogate (it answers 500 to every entity.find from then on)
        contacts = [c for c in self.initial["salesforce"]["Contact"] if c.get("Email")
                    and all(_is_unicode(c.get(name) or "") for name in ("FirstName", "LastName", "Email"))]
        for _ in range(n):
            consent = self.random.random() < 0.8
            if contacts and self.random.random() < 0.3:
                known = self.random.choice(contacts)
                email, given, family = known["Email"], known.get("FirstName") or "Kim", known["LastName"]
            else:
                tag = uuid.UUID(int=self.random.getrandbits(128)).hex[:10]
                email, given, family = f"akamai.{tag}@example.org", "Aki", f"Chaos{tag}"
            attributes = {"email": email, "givenName": given, "familyName": family,
                          "consents": {"crmSync": {"granted": consent}}}
            for _attempt in range(5):  # the Entity API itself is faulted: a create is tried until it answers
                try:
                    response = self.sandbox.client.post(
                        f"{env['AKAMAI_BASE_URL']}/entity.create", timeout=10,
                        data={"type_name": "user", "attributes": json.dumps(attributes)},
                        auth=(env["AKAMAI_CLIENT_ID"], env["AKAMAI_CLIENT_SECRET"]))
                except httpx.HTTPError:
                    continue
                if response.status_code == 200 and response.json().get("stat") == "ok":
                    self.report.events["akamai_sign_ups"] += 1
                    break

    def hostile_webhooks(self) -> None:
        """Webhooks an attacker sends: signed by a key the tenant never published (under its own kid and under the
        tenant's), unsigned, with a subject that walks up the upsert path. None may be stored or acted on."""
        assert self.sandbox is not None
        env = self.sandbox.env
        victim = self.random.choice(self.initial["salesforce"]["Contact"])["Id"]
        akamai_users = sorted(u["uuid"] for u in self.sandbox.state()["akamai"]["users"])
        target = self.random.choice(akamai_users) if akamai_users else str(uuid.UUID(int=self.random.getrandbits(128)))
        attacker = SigningKey()
        claims = {"iss": env["AKAMAI_WEBHOOK_ISSUER"], "aud": env["AKAMAI_WEBHOOK_AUDIENCE"]}
        tokens = [attacker.sign(set_claims(sub=f"../{victim}", **claims)),
                  attacker.sign(set_claims(sub=target, **claims), kid=self.tenant_kid),
                  jwt.encode(set_claims(sub=target, **claims), None, algorithm="none",
                             headers={"kid": self.tenant_kid, "typ": "secevent+jwt"})]
        for token in tokens:
            try:
                status = httpx.post(f"http://127.0.0.1:{self.port}/webhooks/akamai", content=token, timeout=15,
                                    headers={"Content-Type": "application/secevent+jwt"}).status_code
            except httpx.HTTPError:
                continue
            self.report.check("hostile_webhook_refused", not 200 <= status < 300,
                              f"a forged webhook was answered {status}")

    def b2c_sign_ups(self, n: int) -> None:
        """Connector calls without objectId, each sent four times at once (B2C retries, users double-click)."""
        token = base64.b64encode(f"{CONNECTOR_USER}:{CONNECTOR_PASSWORD}".encode()).decode()
        for _ in range(n):
            tag = uuid.UUID(int=self.random.getrandbits(128)).hex[:10]
            consent = self.random.random() < 0.8
            claims = {"email": f"signup.{tag}@example.org", "givenName": "Sina", "surname": f"Signup{tag}",
                      f"{EXT}CrmSyncConsent": consent, "step": "PostAttributeCollection", "client_id": "chaos"}
            self.signups.append(claims)
            answers: list[int] = []

            def call(claims=claims, answers=answers) -> None:
                try:
                    answers.append(httpx.post(f"http://127.0.0.1:{self.port}/connectors/b2c/signup", json=claims,
                                              headers={"Authorization": f"Basic {token}"}, timeout=30).status_code)
                except httpx.HTTPError:
                    answers.append(0)

            threads = [threading.Thread(target=call) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self.report.events["b2c_sign_up_calls"] += len(answers)

    def full_sync(self, kill: tuple[int, float] | None) -> int:
        """One full_sync in its own process, its log in full_sync.<n>.log. ``kill=(step, delay_s)`` SIGKILLs it
        ``delay_s`` after its ``step``-th step started (counted from 0): a point in the run's work, not on the
        clock, so a loaded machine still kills runs mid-step rather than while Python starts."""
        self.report.events["full_sync_runs"] += 1
        log = self.run_dir / f"full_sync.{self.report.events['full_sync_runs']}.log"
        run = Process([sys.executable, "-m", "tests.chaos.full_sync"], self.env(), log).start()
        if kill is None:
            return run.wait(SYNC_TIMEOUT_S)
        step, delay_s = kill
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while run.running() and time.monotonic() < deadline and self._steps_started(log) <= step:
            time.sleep(0.1)
        time.sleep(delay_s)
        if not run.running():
            return run.wait(0)
        run.kill()
        self.report.events["full_sync_killed"] += 1
        return -9

    @staticmethod
    def _steps_started(log: Path) -> int:
        try:
            return log.read_text(errors="replace").count(" - STEP_START - ")
        except FileNotFoundError:
            return 0

    def kill_fast_lane(self) -> None:
        assert self.fast_lane is not None
        self.fast_lane.kill()
        self.report.events["fast_lane_killed"] += 1
        time.sleep(self.random.uniform(0.2, 2.0))
        self.fast_lane.start()

    def create_b2c_users(self) -> None:
        """B2C creates the user of each consented or not sign-up after the connector call."""
        from clients.graph import GraphClient
        from settings import load_settings

        graph = GraphClient(load_settings(self.env()).graph)
        for claims in self.signups:
            body = {"accountEnabled": True, "displayName": f"{claims['givenName']} {claims['surname']}",
                    "givenName": claims["givenName"], "surname": claims["surname"],
                    "identities": [{"signInType": "emailAddress", "issuer": "chaos",
                                    "issuerAssignedId": claims["email"]}],
                    f"{EXT}CrmSyncConsent": claims[f"{EXT}CrmSyncConsent"]}
            response = graph.request("POST", "users", json=body)
            assert response.status_code == 201, response.status_code

    # ---- the schedule ------------------------------------------------------------------------------------------
    def run(self) -> Report:
        self.start()
        try:
            self.faults(0.2)
            for _ in range(self.rounds):
                self.akamai_sign_ups(self.random.randint(2, 4))
                self.b2c_sign_ups(self.random.randint(1, 2))
                self.hostile_webhooks()
                lane_killer = threading.Timer(self.random.uniform(0.5, 8.0), self.kill_fast_lane)
                lane_killer.start()
                kill = self.random.random() < 0.7
                status = self.full_sync((self.random.randrange(FULL_SYNC_STEPS), self.random.uniform(0.0, 4.0))
                                        if kill else None)
                self.report.events[f"full_sync_exit_{status}"] += 1
                lane_killer.join()
            self.faults(0.0)
            self.create_b2c_users()
            self.converge()
            self.check()
        finally:
            self.stop()
        return self.report

    def converge(self, max_runs: int = 4) -> None:
        """Faults off: the webhooks delivered, the fast lane drained, full_sync until nothing is left to push."""
        assert self.sandbox is not None
        self._wait_for(self._webhooks_settled, "webhook deliveries", 180)
        self._wait_for(self._fast_lane_drained, "the fast lane", 180)
        for _ in range(max_runs):
            assert self.full_sync(None) == 0, "a full_sync without faults failed: see its full_sync.<n>.log"
            self.report.events["convergence_runs"] += 1
            if self._nothing_left():
                return
        raise AssertionError(f"not converged after {max_runs} runs without faults")

    def _wait_for(self, condition, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"{what} did not settle"
            time.sleep(0.5)

    def _webhooks_settled(self) -> bool:
        assert self.sandbox is not None
        body = self.sandbox.client.get(f"{self.sandbox.url}/__sandbox/akamai/webhooks").json()
        return all(d["status"] != "pending" for d in body["deliveries"])

    def _fast_lane_drained(self) -> bool:
        from inbox import Inbox

        inbox = Inbox(self.inbox_path)
        try:  # no webhook event after the fast lane's cursor (it reads Akamai events only)
            return not inbox.after(inbox.consumer_seq("fast_lane") or 0, limit=1, sources=["akamai"])
        finally:
            inbox.close()

    def _query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()

    def _nothing_left(self) -> bool:
        left = self._query("""select count(*) from marts.external_ids_to_push e
            where not exists (select 1 from reverse_etl.dead_letters d
                              where d.record_key like e.target_id || ':%')""")[0][0]
        to_create = self._query("""select count(*) from marts.contacts_to_create c
            where not exists (select 1 from reverse_etl.dead_letters d
                              where d.record_key = c.identity_provider || ':' || c.identity_id)""")[0][0]
        return left == 0 and to_create == 0

    # ---- the invariants ----------------------------------------------------------------------------------------
    def check(self) -> None:
        assert self.sandbox is not None
        final = self.sandbox.state()
        initial_contacts = {c["Id"]: c for c in self.initial["salesforce"]["Contact"]}
        live = [c for c in final["salesforce"]["Contact"] if not c.get("IsDeleted")]
        identities = self._identities(final)
        report = self.report

        # no duplicate contact: one contact per identity id, and never more new contacts for an email than
        # identities have it (four identical sign-up calls, retries and kills included)
        by_external: Counter = Counter(c.get("External_User_Id__c") for c in live if c.get("External_User_Id__c"))
        for external_id, count in by_external.items():
            report.check("one_contact_per_identity", count == 1, f"{count} contacts carry {external_id}")
        created = Counter((c.get("Email") or "").lower() for c in live
                          if c["Id"] not in initial_contacts and c.get("Email"))  # none: its email was refused
        holders = Counter(identity["email"] for identity in identities.values() if identity["email"])
        for email, count in created.items():
            report.check("no_duplicate_created", count <= holders[email],
                         f"{count} contacts created for an email {holders[email]} identities have")

        # no contact for an identity without consent: no id idlink wrote names one, and every contact idlink
        # created belongs to a consented identity (by the id it carries, else by its email)
        consented_emails = {i["email"] for i in identities.values() if i["consent"] and i["email"]}
        for contact in live:
            carried = contact.get("External_User_Id__c")
            before = initial_contacts.get(contact["Id"], {}).get("External_User_Id__c")
            if carried and carried != before and carried in identities:
                report.check("no_contact_without_consent", identities[carried]["consent"],
                             "a contact carries the id of an identity without consent")
            elif contact["Id"] not in initial_contacts:
                report.check("no_contact_without_consent", (contact.get("Email") or "").lower() in consented_emails,
                             "a contact was created for no consented identity")

        # every unambiguous consented identity linked both ways
        carried_ids = {c["External_User_Id__c"]: c["Id"] for c in live if c.get("External_User_Id__c")}
        for identity_id, contact_id in self._query(
                "select identity_id, contact_id from marts.identity_contact_links"
                " where status = 'active' and crm = 'salesforce'"):
            identity = identities.get(identity_id)
            report.check("linked_both_ways", identity is not None and identity["contact_id"] == contact_id
                         and carried_ids.get(identity_id) == contact_id,
                         "an active link is missing on one side")
        report.check("nothing_left_to_push", self._nothing_left(), "marts still want writes")
        unlinked = self._query("""select count(*) from intermediate.int_identities i
            where i.consent_state = 'granted' and not i.is_deleted
              and not exists (select 1 from marts.identity_contact_links l where l.identity_id = i.identity_id)
              and not exists (select 1 from marts.link_conflicts c where c.identity_id = i.identity_id)
              and not exists (select 1 from reverse_etl.dead_letters d
                              where d.record_key = i.identity_provider || ':' || i.identity_id)""")[0][0]
        report.check("every_consented_identity_linked_or_in_review", unlinked == 0,
                     f"{unlinked} consented identities neither linked, in review nor dead-lettered")

        # only a record the CRM or identity store refused is dead-lettered: a fault a retry cures never is
        for system, code in self._query("select system, error_code from reverse_etl.dead_letters"):
            report.events[f"dead_letter_{system}_{code}"] += 1
            report.check("dead_lettered_only_when_refused", code not in TRANSIENT_CODES,
                         f"a {system} record was dead-lettered for the transient {code}")

        # every webhook answered 2xx is stored
        body = self.sandbox.client.get(f"{self.sandbox.url}/__sandbox/akamai/webhooks").json()
        stored = set(self._inbox_ids())
        for delivery in body["deliveries"]:
            report.events[f"webhook_{delivery['status']}"] += 1
            if delivery["status"] == "delivered":
                report.check("acknowledged_webhook_stored", f"akamai:{delivery['jti']}" in stored,
                             "a webhook answered 2xx is not in the inbox")

        # nothing modified that should not be: only the link attributes change on records idlink did not create
        final_contacts = {c["Id"]: c for c in final["salesforce"]["Contact"]}
        self._check_untouched(report, initial_contacts, final_contacts, what="contact",
                              allowed={"External_User_Id__c", "LastModifiedDate", "SystemModstamp", OPT_OUT_FIELD})
        # the marketing consent is carried to a linked contact as an opt-out: only there, and only as the
        # identity's consent says (dbt var consent_purposes)
        opt_outs = dict(self._query(f"""select l.contact_id, c.state <> 'granted'
            from marts.identity_contact_links l join intermediate.int_identity_consents c
              on c.identity_provider = l.identity_provider and c.identity_id = l.identity_id
            where l.status = 'active' and l.crm = 'salesforce' and c.purpose = '{MARKETING}'"""))
        for contact_id, old in initial_contacts.items():
            new = final_contacts.get(contact_id) or {}
            if new.get(OPT_OUT_FIELD) != old.get(OPT_OUT_FIELD):
                report.check("nothing_else_modified", opt_outs.get(contact_id) == new.get(OPT_OUT_FIELD),
                             "a contact's opt-out changed where no linked identity's consent says so")
        self._check_untouched(report, {u["id"]: u for u in self.initial["b2c"]["users"]},
                              {u["id"]: u for u in final["b2c"]["users"]}, allowed={f"{EXT}CrmContactId"},
                              what="b2c user")
        self._check_untouched(report, {u["uuid"]: u for u in self.initial["akamai"]["users"]},
                              {u["uuid"]: u for u in final["akamai"]["users"]},
                              allowed={"crmContactId", "lastUpdated"}, what="akamai user")

        # no personal data in any file outside the warehouse
        values = self._personal_values(final)
        leaks = files_with(values, self.run_dir, skip=list(self.run_dir.glob("warehouse.duckdb*")))
        report.check("no_personal_data_outside_the_warehouse", not leaks, f"personal data in {sorted(leaks)}")

    def _identities(self, state: dict) -> dict[str, dict]:
        identities = {}
        for user in state["b2c"]["users"]:
            email = next((i.get("issuerAssignedId") for i in user.get("identities") or []
                          if i.get("signInType") == "emailAddress"), None) or user.get("mail")
            identities[user["id"]] = {"consent": user.get(f"{EXT}CrmSyncConsent") is True,
                                      "contact_id": user.get(f"{EXT}CrmContactId"), "email": (email or "").lower()}
        for user in state["akamai"]["users"]:
            consent = ((user.get("consents") or {}).get("crmSync") or {}).get("granted") is True
            identities[user["uuid"]] = {"consent": consent, "contact_id": user.get("crmContactId"),
                                        "email": (user.get("email") or "").lower()}
        return identities

    def _inbox_ids(self) -> list[str]:
        import sqlite3

        with sqlite3.connect(self.inbox_path) as con:
            return [row[0] for row in con.execute("select event_id from events")]

    @staticmethod
    def _check_untouched(report: Report, before: dict[str, dict], after: dict[str, dict], allowed: set[str],
                         what: str) -> None:
        for key, old in before.items():
            new = after.get(key)
            changed = {k for k in set(old) | set(new or {}) if k not in allowed and old.get(k) != (new or {}).get(k)}
            report.check("nothing_else_modified", new is not None and not changed,
                         f"a {what} changed in {sorted(changed)}")

    def _personal_values(self, state: dict) -> set[str]:
        values: set[str] = set()
        for user in state["b2c"]["users"]:
            values.update(i.get("issuerAssignedId") or "" for i in user.get("identities") or [])
            values.add(user.get("surname") or "")
        for user in state["akamai"]["users"]:
            values.update((user.get("email") or "", user.get("familyName") or ""))
        for contact in state["salesforce"]["Contact"]:
            values.update((contact.get("Email") or "", contact.get("LastName") or ""))
        return {v for v in values if len(v) >= 6 and v.isprintable()}
