"""Schedules run the full sync on time; a failed run is recorded and alerted without personal data."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from inbox import Inbox
from orchestration.defs import realtime
from orchestration.defs.resources import AlertResource, InboxResource


def test_the_schedules_run_full_sync_every_15_minutes_and_reconcile_nightly() -> None:
    assert realtime.incremental_sync.cron_schedule == "*/15 * * * *"
    assert realtime.nightly_reconciliation.cron_schedule == "0 2 * * *"
    for schedule in (realtime.incremental_sync, realtime.nightly_reconciliation):
        assert schedule.job_name == "full_sync"
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert realtime.nightly_reconciliation.tags["idlink/reconciliation"] == "full"


def test_every_sensor_is_on_by_default() -> None:
    for sensor in realtime.defs.sensors:
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert realtime.inbox_sensor.minimum_interval_seconds <= 5


class AlertReceiver:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/alerts"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()


@dg.op
def failing_step() -> None:
    raise ValueError("contact ada@example.org could not be written")


@dg.job(name="full_sync_failing")
def failing_job() -> None:
    failing_step()


def failure_context(instance: dg.DagsterInstance, inbox: Inbox, alert_url: str = ""):
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    [failure] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    resources = {"inbox": InboxResource(path=str(inbox.path)), "alerts": AlertResource(webhook_url=alert_url)}
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert", dagster_event=failure.dagster_event, dagster_instance=instance,
        dagster_run=run, resources=resources).for_run_failure(), result.run_id


@pytest.fixture
def alerts():
    receiver = AlertReceiver()
    yield receiver
    receiver.httpd.shutdown()


def test_a_failed_run_is_recorded_and_alerted_with_ids_and_error_type_only(inbox: Inbox, alerts) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        context, run_id = failure_context(instance, inbox, alerts.url)
        realtime.run_failure_alert(context)
    assert alerts.bodies == [{"job": "full_sync_failing", "run_id": run_id, "error_type": "ValueError"}]
    [failure] = inbox.run_failures()
    assert (failure["run_id"], failure["error_type"], failure["alerted"]) == (run_id, "ValueError", 1)


def test_a_failure_seen_twice_is_recorded_and_alerted_once(inbox: Inbox, alerts) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        context, _ = failure_context(instance, inbox, alerts.url)
        realtime.run_failure_alert(context)
        realtime.run_failure_alert(context)
    assert len(alerts.bodies) == 1 and len(inbox.run_failures()) == 1


def test_without_an_alert_url_the_failure_is_still_recorded(inbox: Inbox) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        context, run_id = failure_context(instance, inbox)
        realtime.run_failure_alert(context)
    [failure] = inbox.run_failures()
    assert failure["run_id"] == run_id and failure["alerted"] == 0


def test_an_unreachable_alert_hook_does_not_fail_the_sensor() -> None:
    unreachable = AlertResource(webhook_url="http://127.0.0.1:9/unreachable")
    assert realtime.send_alert(unreachable, "full_sync", "r1", "ValueError") is False
