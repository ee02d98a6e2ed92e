"""Near-real-time sync: sensors that turn inbox events and CRM changes into targeted runs, the schedules that
catch everything else, and a run-failure sensor that records failures and raises an alert.

Targeted runs carry run config that makes ingestion fetch only the affected records, and select only the
ingestion assets that have something to fetch plus everything downstream (linking, reverse ETL).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import orjson
import requests

from clients.dataverse import DataverseClient
from clients.salesforce import SalesforceClient
from inbox import InboxEvent
from ingestion.dynamics import watch_contact_changes
from orchestration.defs.akamai import USERS_KEY as AKAMAI_KEY
from orchestration.defs.akamai import akamai_run_config
from orchestration.defs.dynamics import CONTACT_KEY as DYNAMICS_KEY
from orchestration.defs.dynamics import dynamics_run_config
from orchestration.defs.ingestion import B2C_USERS_KEY as B2C_KEY
from orchestration.defs.ingestion import SALESFORCE_CONTACT_KEY as SALESFORCE_KEY
from orchestration.defs.ingestion import targeted_run_config
from orchestration.defs.jobs import full_sync_job
from orchestration.defs.linking import TARGETED_RUN_TAG
from orchestration.defs.resources import AlertResource, DataverseResource, InboxResource, SalesforceResource

log = logging.getLogger(__name__)

INBOX_BATCH_LIMIT = 500
SALESFORCE_BATCH_LIMIT = 2000
DOWNSTREAM_GROUPS = ("privacy", "linking", "publishing", "reverse_etl")
TRIGGER_TAG = "idlink/trigger"


# ---- run planning (pure functions; the sensors below only add I/O) ------------------------------------------

def deep_merge(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict:
    """Merge two run-config fragments; nested mappings merge, other values from ``right`` win."""
    merged = dict(left)
    for key, value in right.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def run_key_for(prefix: str, ids: Iterable[str]) -> str:
    """Stable for the same set of events, so a re-evaluated tick never launches a second run."""
    digest = hashlib.sha256("\n".join(sorted(set(ids))).encode()).hexdigest()[:24]
    return f"{prefix}-{digest}"


class TargetedRunPlan:
    """Which records a run must fetch, collected from events."""

    def __init__(self) -> None:
        self.b2c_identity_ids: set[str] = set()
        self.akamai_uuids: set[str] = set()
        self.contact_ids: set[str] = set()
        self.dynamics_contact_ids: set[str] = set()

    def add_event(self, event: InboxEvent) -> None:
        if event.source == "akamai" and event.subject:
            self.akamai_uuids.add(event.subject)
        elif event.source == "fast_lane":
            # the fast lane linked an identity: fetch both records so the warehouse links them by the dbt rules
            if event.subject and event.payload.get("provider") == "akamai":
                self.akamai_uuids.add(event.subject)
            elif event.subject:
                self.b2c_identity_ids.add(event.subject)
            if event.payload.get("contact_id"):
                self.contact_ids.add(str(event.payload["contact_id"]))
        elif event.source == "b2c":
            if event.subject:
                self.b2c_identity_ids.add(event.subject)
            contact_id = event.payload.get("contact_id")
            if contact_id:
                self.contact_ids.add(str(contact_id))

    @property
    def empty(self) -> bool:
        return not (self.b2c_identity_ids or self.akamai_uuids or self.contact_ids or self.dynamics_contact_ids)

    def ingestion_keys(self) -> list[dg.AssetKey]:
        keys = []
        if self.b2c_identity_ids:
            keys.append(B2C_KEY)
        if self.contact_ids:
            keys.append(SALESFORCE_KEY)
        if self.akamai_uuids:
            keys.append(AKAMAI_KEY)
        if self.dynamics_contact_ids:
            keys.append(DYNAMICS_KEY)
        return keys

    def run_config(self) -> dict:
        config: dict = {}
        if self.b2c_identity_ids or self.contact_ids:
            config = deep_merge(config, targeted_run_config(sorted(self.b2c_identity_ids),
                                                             sorted(self.contact_ids)))
        if self.akamai_uuids:
            config = deep_merge(config, akamai_run_config(sorted(self.akamai_uuids)))
        if self.dynamics_contact_ids:
            config = deep_merge(config, dynamics_run_config(sorted(self.dynamics_contact_ids)))
        return config

    def asset_selection(self, repository_def: dg.RepositoryDefinition | None) -> list[dg.AssetKey] | None:
        """The ingestion assets with work to do plus everything downstream; None (whole job) without a repo."""
        if repository_def is None:
            return None
        graph = repository_def.asset_graph
        downstream = dg.AssetSelection.groups(*DOWNSTREAM_GROUPS).resolve(graph)
        ingestion = [key for key in self.ingestion_keys() if graph.has(key)]
        return sorted(set(ingestion) | set(downstream), key=lambda k: k.to_user_string())

    def run_request(self, run_key: str, repository_def: dg.RepositoryDefinition | None,
                    tags: Mapping[str, str]) -> dg.RunRequest:
        selection = self.asset_selection(repository_def)
        config = self.run_config()
        if selection is not None:
            # An asset not selected (e.g. the B2C load when only contacts changed) must get no op config.
            graph = repository_def.asset_graph
            selected_ops = {graph.get(key).assets_def.node_def.name for key in selection}
            config = {**config, "ops": {op: value for op, value in config.get("ops", {}).items()
                                        if op in selected_ops}}
        # One process for the whole run: a few records do not repay a process (and code import) per step.
        config = {**config, "execution": {"config": {"in_process": {}}}}
        return dg.RunRequest(
            run_key=run_key,
            run_config=config,
            asset_selection=selection,
            tags={**tags, TARGETED_RUN_TAG: "true",
                  "idlink/identities": str(len(self.b2c_identity_ids) + len(self.akamai_uuids)),
                  "idlink/contacts": str(len(self.contact_ids) + len(self.dynamics_contact_ids))},
        )


# ---- inbox sensor ---------------------------------------------------------------------------------------------

def _targeted_run_waiting(context: dg.SensorEvaluationContext, trigger: str) -> bool:
    """A run this sensor requested is queued and not started yet: new changes can wait for the next run."""
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # evaluated without an instance (unit tests): nothing is queued
        return False
    waiting = instance.get_run_records(
        dg.RunsFilter(job_name=full_sync_job.name, tags={TRIGGER_TAG: trigger},
                      statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]), limit=1)
    return bool(waiting)


@dg.sensor(
    name="inbox_sensor",
    job=full_sync_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns gateway inbox events (Akamai webhooks, B2C sign-ups) into targeted full_sync runs.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, inbox: InboxResource):
    after_seq = int(context.cursor or 0)
    # Runs share the warehouse one at a time: while one waits to start, a second queued run would only add its
    # start-up cost. The events stay pending (cursor unchanged) and all go into the next run.
    if _targeted_run_waiting(context, "inbox"):
        yield dg.SkipReason("a targeted run is waiting to start; new events join the next one")
        return
    with inbox.open() as box:
        events = box.pending(after_seq=after_seq, limit=INBOX_BATCH_LIMIT)
        if not events:
            yield dg.SkipReason(f"no inbox events after sequence {after_seq}")
            return
        plan = TargetedRunPlan()
        for event in events:
            plan.add_event(event)
        if not plan.empty:
            yield plan.run_request(
                run_key_for("inbox", (e.id for e in events)),
                context.repository_def,
                {TRIGGER_TAG: "inbox", "idlink/events": str(len(events))},
            )
        else:
            yield dg.SkipReason(f"{len(events)} inbox events name no identity; the scheduled sync covers them")
        # Only now that the run request is emitted: the run_key keeps a re-evaluation from launching twice.
        box.mark_processed(e.id for e in events)
        context.update_cursor(str(max(e.seq or 0 for e in events)))
        context.log.info("inbox: %d events handed on, cursor %s", len(events), context.cursor)


# ---- Salesforce changes sensor --------------------------------------------------------------------------------

def _parse_modstamp(value: str) -> datetime:
    """Salesforce answers ``2024-01-01T00:00:00.000+0000``; also accepts ISO 8601 with ``Z`` or ``+00:00``."""
    text = value.strip().replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _soql_datetime(moment: datetime) -> str:
    """SOQL dateTime literals have whole seconds (``2024-01-01T00:00:00Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_cursor(cursor: str) -> tuple[datetime, set[str]]:
    data = orjson.loads(cursor)
    return _parse_modstamp(data["modstamp"]), set(data["ids"])


def _write_cursor(modstamp: datetime, ids: Iterable[str]) -> str:
    return orjson.dumps({"modstamp": modstamp.isoformat(timespec="milliseconds"), "ids": sorted(ids)}).decode()


def unseen_changes(records: Sequence[dict], since: datetime, seen_ids: set[str]) -> list[dict]:
    """Records changed after the cursor. The query asks from the cursor's whole second on (SOQL literals have
    no fractions), so changes within that second are compared here, and the ids at the cursor's exact
    modstamp are skipped as already handed on."""
    fresh = []
    for record in records:
        stamp = _parse_modstamp(record["SystemModstamp"])
        if stamp > since or (stamp == since and record["Id"] not in seen_ids):
            fresh.append(record)
    return fresh


@dg.sensor(
    name="salesforce_changes_sensor",
    job=full_sync_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a targeted run for Contacts changed in Salesforce since the last SystemModstamp seen.",
)
def salesforce_changes_sensor(context: dg.SensorEvaluationContext, salesforce: SalesforceResource):
    if not salesforce.configured:
        return dg.SkipReason("Salesforce is not configured")
    if _targeted_run_waiting(context, "salesforce_changes"):  # the next run takes these changes too
        return dg.SkipReason("a targeted run is waiting to start; changes join the next one")
    if not context.cursor:
        # Start from now: earlier changes are the scheduled syncs' business, not a burst of targeted runs.
        start = datetime.now(UTC)
        context.update_cursor(_write_cursor(start, ()))
        return dg.SkipReason(f"watching Contact changes from {_soql_datetime(start)}")
    since, seen_ids = _read_cursor(context.cursor)
    soql = ("SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp >= "
            f"{_soql_datetime(since)} ORDER BY SystemModstamp LIMIT {SALESFORCE_BATCH_LIMIT}")
    # queryAll: a contact deleted or merged away in the CRM is a change too (its link must follow)
    pages = SalesforceClient(salesforce.settings()).query_pages(soql, include_deleted=True)
    records = unseen_changes(next(iter(pages), []), since, seen_ids)
    if not records:
        return dg.SkipReason("no Contact changes")
    plan = TargetedRunPlan()
    plan.contact_ids.update(r["Id"] for r in records)
    newest = max(_parse_modstamp(r["SystemModstamp"]) for r in records)
    at_newest = {r["Id"] for r in records if _parse_modstamp(r["SystemModstamp"]) == newest}
    if newest == since:
        at_newest |= seen_ids
    request = plan.run_request(
        run_key_for("salesforce", (f"{r['Id']}@{r['SystemModstamp']}" for r in records)),
        context.repository_def,
        {TRIGGER_TAG: "salesforce_changes"},
    )
    return dg.SensorResult(run_requests=[request], cursor=_write_cursor(newest, at_newest))


# ---- Dynamics changes sensor ----------------------------------------------------------------------------------

@dg.sensor(
    name="dynamics_changes_sensor",
    job=full_sync_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a targeted run for Dynamics contacts changed, merged or deleted since the last look "
                "(change tracking: the cursor is the delta link).",
)
def dynamics_changes_sensor(context: dg.SensorEvaluationContext, dynamics: DataverseResource):
    if not dynamics.configured:
        return dg.SkipReason("Dynamics is not configured")
    if _targeted_run_waiting(context, "dynamics_changes"):  # the next run takes these changes too
        return dg.SkipReason("a targeted run is waiting to start; changes join the next one")
    # a merge deactivates the subordinate and a deletion is a tombstone: both come back as changes
    changes = watch_contact_changes(DataverseClient(dynamics.settings()), context.cursor or None)
    if not context.cursor:
        # Start from now: earlier changes are the scheduled syncs' business, not a burst of targeted runs.
        return dg.SensorResult(skip_reason="watching Dynamics contact changes from now", cursor=changes.resume_link)
    if not changes.contact_ids:
        return dg.SensorResult(skip_reason="no Dynamics contact changes", cursor=changes.resume_link)
    plan = TargetedRunPlan()
    plan.dynamics_contact_ids.update(changes.contact_ids)
    request = plan.run_request(run_key_for("dynamics", [context.cursor, *changes.contact_ids]),
                               context.repository_def, {TRIGGER_TAG: "dynamics_changes"})
    return dg.SensorResult(run_requests=[request], cursor=changes.resume_link)


# ---- schedules ------------------------------------------------------------------------------------------------

incremental_sync = dg.ScheduleDefinition(
    name="incremental_sync",
    job=full_sync_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={TRIGGER_TAG: "incremental_sync"},
    description="Every 15 minutes: catches whatever the events missed.",
)

nightly_reconciliation = dg.ScheduleDefinition(
    name="nightly_reconciliation",
    job=full_sync_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={TRIGGER_TAG: "nightly_reconciliation", "idlink/reconciliation": "full"},
    description="02:00 UTC: full reconciliation of every identity and contact.",
)


# ---- run failures ---------------------------------------------------------------------------------------------

def _user_error_name(error) -> str:
    """Dagster wraps the error raised by asset code; report the wrapped one."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error.cls_name or "unknown"


def failure_error_type(context: dg.RunFailureSensorContext) -> str:
    """The class name of the first step error, else the run-level error or reason. Never the message."""
    for step_event in context.get_step_failure_events():
        data = step_event.step_failure_data
        if data is not None and data.error is not None:
            return _user_error_name(data.error)
    data = context.failure_event.event_specific_data
    error = getattr(data, "error", None)
    if error is not None:
        return _user_error_name(error)
    reason = getattr(data, "failure_reason", None)
    return reason.value if reason is not None else "unknown"


def send_alert(alerts: AlertResource, job: str, run_id: str, error_type: str) -> bool:
    """POST {job, run_id, error_type} to the alert webhook; False when none is set or when it fails."""
    if not alerts.webhook_url:
        return False
    try:
        response = requests.post(alerts.webhook_url, json={"job": job, "run_id": run_id, "error_type": error_type},
                                 timeout=5.0, verify=alerts.ca_bundle or True)
        response.raise_for_status()
    except requests.RequestException as exc:
        log.warning("alert for run %s not delivered: %s", run_id, type(exc).__name__)
        return False
    return True


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed run in the inbox database and posts an alert without personal data.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, inbox: InboxResource, alerts: AlertResource):
    run = context.dagster_run
    error_type = failure_error_type(context)
    with inbox.open() as box:
        if box.record_run_failure(run.run_id, run.job_name, error_type) and \
                send_alert(alerts, run.job_name, run.run_id, error_type):
            box.mark_failure_alerted(run.run_id)
    context.log.info("recorded failure of run %s (%s): %s", run.run_id, run.job_name, error_type)


defs = dg.Definitions(
    sensors=[inbox_sensor, salesforce_changes_sensor, dynamics_changes_sensor, run_failure_alert],
    schedules=[incremental_sync, nightly_reconciliation],
)
