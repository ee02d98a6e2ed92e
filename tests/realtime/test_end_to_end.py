"""End to end, near real time: an identity created in Akamai reaches the CRM through the webhook, the gateway
inbox, the inbox sensor and a targeted run; the CRM's change then carries the contact id back to the identity.
Deleting the identity releases the contact."""
from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager

import dagster as dg
import duckdb
import pytest
import uvicorn

from gateway.app import create_app
from gateway.fast_lane import build_worker
from inbox import Inbox
from orchestration.definitions import build_definitions
from orchestration.defs import realtime
from orchestration.defs.resources import build_resources
from settings import load_settings

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gateway_on(port: int):
    server = uvicorn.Server(uvicorn.Config(create_app(load_settings()), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def akamai_call(sandbox, route: str, **form) -> dict:
    env = sandbox.env
    response = sandbox.client.post(f"{env['AKAMAI_BASE_URL']}/{route}", data=form,
                                   auth=(env["AKAMAI_CLIENT_ID"], env["AKAMAI_CLIENT_SECRET"]))
    body = response.json()
    assert body["stat"] == "ok", body
    return body


def contact_for(sandbox, identity_id: str) -> dict | None:
    for contact in sandbox.state("salesforce")["salesforce"]["Contact"]:
        if contact.get("External_User_Id__c") == identity_id and not contact.get("IsDeleted"):
            return contact
    return None


def run_requested(defs, job, instance, sensor, cursor):
    # the sensors get the resources the code location binds, from the environment the test set
    context = dg.build_sensor_context(cursor=cursor, definitions=defs, instance=instance,
                                      resources=build_resources(load_settings()))
    data = sensor.evaluate_tick(context)
    for request in data.run_requests:
        result = job.execute_in_process(run_config=request.run_config, asset_selection=request.asset_selection,
                                        tags=request.tags, instance=instance, raise_on_error=False)
        assert result.success, f"targeted run {request.run_key} failed"
    return data


def test_an_akamai_identity_reaches_the_crm_and_gets_its_contact_id_back(sandbox_factory, tmp_path,
                                                                        monkeypatch) -> None:
    port = free_port()
    sandbox = sandbox_factory(size=30, extra_args=("--webhook-url", f"http://127.0.0.1:{port}/webhooks/akamai"))
    sandbox.apply_env(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("GATEWAY_INBOX_PATH", str(tmp_path / "inbox.sqlite3"))
    defs = build_definitions()
    job = defs.resolve_job_def("full_sync")
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    with dg.instance_for_test() as instance, gateway_on(port):
        # the baseline: every system loaded once (linking runs in each targeted run below)
        baseline = [dg.AssetKey("raw_b2c_users"), dg.AssetKey("raw_salesforce_contact"),
                    dg.AssetKey("raw_akamai_users")]
        assert job.execute_in_process(instance=instance, asset_selection=baseline, raise_on_error=False).success
        sf_cursor = run_requested(defs, job, instance, realtime.salesforce_changes_sensor, None).cursor

        created = akamai_call(sandbox, "entity.create", type_name="user", attributes=json.dumps({
            "email": "rt.e2e@example.org", "givenName": "Realtime", "familyName": "Endtoend",
            "consents": {"crmSync": {"granted": True}}}))
        uuid = created["uuid"]
        [event] = wait_for(inbox.pending, what="the webhook in the inbox")
        assert (event.kind, event.subject) == ("entityCreated", uuid)

        tick = run_requested(defs, job, instance, realtime.inbox_sensor, None)
        [request] = tick.run_requests
        assert dg.AssetKey("raw_b2c_users") not in request.asset_selection  # targeted: no B2C scan
        contact = contact_for(sandbox, uuid)
        assert contact is not None, "the contact was not created with the identity's id"

        # The CRM change comes back through the Salesforce sensor and writes the contact id on the identity.
        run_requested(defs, job, instance, realtime.salesforce_changes_sensor, sf_cursor)
        entity = akamai_call(sandbox, "entity", type_name="user", uuid=uuid)["result"]
        assert entity.get("crmContactId") == contact["Id"]

        # Deleting the identity: the webhook triggers a targeted run that releases the contact.
        akamai_call(sandbox, "entity.delete", type_name="user", uuid=uuid)
        # (writing the contact id on the identity raised an entityUpdated webhook before this one)
        wait_for(lambda: [e for e in inbox.pending(after_seq=event.seq)
                          if (e.kind, e.subject) == ("entityDeleted", uuid)], what="the deletion webhook")
        run_requested(defs, job, instance, realtime.inbox_sensor, tick.cursor)
        released = next(c for c in sandbox.state("salesforce")["salesforce"]["Contact"] if c["Id"] == contact["Id"])
        assert not released.get("External_User_Id__c"), "the deleted identity's id stays on the contact"
    inbox.close()


def test_the_fast_lane_links_a_sign_up_in_seconds_and_the_targeted_run_records_it(sandbox_factory, tmp_path,
                                                                                   monkeypatch) -> None:
    port = free_port()
    sandbox = sandbox_factory(size=30, extra_args=("--webhook-url", f"http://127.0.0.1:{port}/webhooks/akamai"))
    sandbox.apply_env(monkeypatch)
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_PATH", str(warehouse))
    monkeypatch.setenv("GATEWAY_INBOX_PATH", str(tmp_path / "inbox.sqlite3"))
    defs = build_definitions()
    job = defs.resolve_job_def("full_sync")
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    worker = build_worker(inbox, load_settings())
    stop = threading.Event()
    with dg.instance_for_test() as instance, gateway_on(port):
        assert job.execute_in_process(instance=instance, raise_on_error=False).success  # the baseline
        worker.step()  # first start: the worker begins at the end of the inbox
        lane = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        lane.start()
        try:
            created = akamai_call(sandbox, "entity.create", type_name="user", attributes=json.dumps({
                "email": "fast.lane@example.org", "givenName": "Fast", "familyName": "Lane",
                "consents": {"crmSync": {"granted": True}}}))
            uuid = created["uuid"]
            # no Dagster run yet: the fast lane alone links both directions
            contact = wait_for(lambda: contact_for(sandbox, uuid), what="the fast lane's contact")
            entity = wait_for(lambda: (e := akamai_call(sandbox, "entity", type_name="user", uuid=uuid)["result"])
                              .get("crmContactId") and e, what="the contact id on the identity")
            assert entity["crmContactId"] == contact["Id"]
            wait_for(lambda: any(e.source == "fast_lane" for e in inbox.pending()), what="the fast lane's event")
        finally:
            stop.set()
            lane.join(timeout=10)
            worker.close()

        tick = run_requested(defs, job, instance, realtime.inbox_sensor, None)
        assert tick.run_requests, "the events started no targeted run"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        link = con.execute("SELECT contact_id, status, match_rule FROM marts.identity_contact_links "
                           "WHERE identity_provider = 'akamai' AND identity_id = ?", [uuid]).fetchall()
        audit = con.execute("SELECT system, operation, outcome FROM reverse_etl.sync_log WHERE run_id = 'fast_lane' "
                            "ORDER BY system").fetchall()
        # (the fast lane writes to Salesforce; with Dynamics configured too, the batch path creates the contact there)
        created_again = con.execute("SELECT count(*) FROM reverse_etl.sync_log WHERE run_id <> 'fast_lane' "
                                    "AND system = 'salesforce' AND record_key = ?", [f"akamai:{uuid}"]).fetchone()[0]
    assert link == [(contact["Id"], "active", "carried_id")]
    assert audit == [("akamai", "set_attribute", "succeeded"), ("salesforce", "create_contact", "succeeded")]
    assert created_again == 0, "the batch path sent the contact a second time"
    assert len([c for c in sandbox.state("salesforce")["salesforce"]["Contact"]
                if c.get("External_User_Id__c") == uuid]) == 1
    inbox.close()
