"""Writes contacts and external ids to Dynamics 365 / Dataverse through the Web API's ``$batch``.

* ``create_contact`` records are upserts by the alternate key (``PATCH contacts(<key column>='<identity id>')``)
  made create-only with ``If-None-Match: *``: a resend after a crash or a timeout finds the contact it created
  the first time (412) and counts as done, and a contact someone edited since is never overwritten;
* ``set_external_id`` / ``clear_external_id`` / ``set_field`` records update an existing contact by its id
  with ``If-Match: *``: a contact deleted meanwhile answers 404 and is never re-created.

Up to ``batch_size`` (≤ 1000) records go out in one ``$batch``, each in a change set of its own with
``Prefer: odata.continue-on-error``, so one refused record does not hold back the others. Answers are judged
one by one: 2xx written; 429 and 5xx sent again within the retry budget (honouring ``Retry-After``), then left
pending for the next run; 404 dead-lettered at once (the contact is gone); other 4xx are permanent errors.
Service protection (concurrent requests, requests per 5 minutes, a 429's pause) is kept by the client's gate.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from clients.dataverse import BatchRequest, BatchResponse, DataverseClient, guid_in, key_segment
from clients.http import ApiError, RequestLimitExceeded
from reverse_etl.mapping import FieldMapping, validate_dynamics_mapping
from reverse_etl.runner import DEFAULT_MAX_WORKERS, SyncResult, crm_records, run_sync
from reverse_etl.salesforce_writer import (
    ANONYMISE_CONTACT,
    CLEAR_EXTERNAL_ID,
    CREATE_CONTACT,
    DELETE_CONTACT,
    SET_EXTERNAL_ID,
    SET_FIELD,
)
from reverse_etl.state import DEFAULT_MAX_ATTEMPTS, Outcome, SyncRecord
from settings import DataverseSettings
from warehouse import Warehouse

log = logging.getLogger(__name__)

SYSTEM = "dynamics"
_OPERATIONS = frozenset({CREATE_CONTACT, SET_EXTERNAL_ID, CLEAR_EXTERNAL_ID, SET_FIELD, ANONYMISE_CONTACT,
                         DELETE_CONTACT})
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_BACKOFF_BASE_S, _BACKOFF_CAP_S = 0.5, 30.0


class DynamicsWriter:
    system = SYSTEM

    def __init__(self, client: DataverseClient, *, entity_set: str = "contacts", external_id_field: str | None = None,
                 batch_size: int | None = None, retry_budget_s: float | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.entity_set = entity_set
        self.external_id_field = external_id_field or client.settings.external_id_field
        self.batch_size = batch_size or client.settings.batch_size
        if not 1 <= self.batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        self.retry_budget_s = client.settings.retry_max_s if retry_budget_s is None else retry_budget_s
        self._sleep = sleep
        self._calls = 0
        self._calls_lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        return self._calls

    def batches(self, records: Sequence[SyncRecord]) -> list[list[SyncRecord]]:
        for record in records:
            if record.operation not in _OPERATIONS:
                raise ValueError(f"Dynamics writer cannot perform operation {record.operation!r}")
            if record.operation != CREATE_CONTACT and not record.target:
                raise ValueError(f"{record.operation} needs the contact id it writes on")
        return [list(records[i:i + self.batch_size]) for i in range(0, len(records), self.batch_size)]

    def request_for(self, record: SyncRecord) -> BatchRequest:
        if record.operation == CREATE_CONTACT:
            identity_id = str(record.payload[self.external_id_field])
            # key values go in the URL only; an upsert never clears, so fields without a value are left out
            body = {k: v for k, v in record.payload.items() if v is not None and k != self.external_id_field}
            return BatchRequest("PATCH", key_segment(self.entity_set, self.external_id_field, identity_id)
                                + "?$select=contactid", body,
                                {"If-None-Match": "*", "Prefer": "return=representation"})
        if record.operation == DELETE_CONTACT:  # an erased person's contact (reverse_etl.erasure_writer)
            return BatchRequest("DELETE", key_segment(self.entity_set, record_id=str(record.target)))
        return BatchRequest("PATCH", key_segment(self.entity_set, record_id=str(record.target)),
                            dict(record.payload), {"If-Match": "*"})

    def judge(self, record: SyncRecord, answer: BatchResponse) -> Outcome:
        status = answer.status
        if 200 <= status < 300:
            remote_id = (answer.body or {}).get("contactid") if isinstance(answer.body, dict) else None
            return Outcome.success(record.key, remote_id or guid_in(answer.headers.get("odata-entityid"))
                                   or record.target)
        code, message = answer.error()
        if status == 412 and record.operation == CREATE_CONTACT and not code:
            # If-None-Match refused: a contact with this identity id exists (ours from an earlier attempt)
            return Outcome.success(record.key, None)
        if status == 404 and record.operation == DELETE_CONTACT:  # gone already: what the erasure wants
            return Outcome.success(record.key, record.target)
        if status == 404:
            return Outcome.failure(record.key, code or "NOT_FOUND", "the contact no longer exists", give_up=True)
        return Outcome.failure(record.key, code or f"HTTP_{status}", message, permanent=status not in _TRANSIENT)

    def send(self, batch: list[SyncRecord]) -> list[Outcome]:
        deadline = time.monotonic() + self.retry_budget_s
        waiting = list(batch)
        outcomes: dict[str, Outcome] = {}
        round_no = 0
        while waiting:
            with self._calls_lock:
                self._calls += 1
            try:
                answers = self.client.batch([self.request_for(r) for r in waiting])
            except RequestLimitExceeded:
                raise
            except ApiError as exc:
                # the whole $batch failed: transient ones stay pending, a refused request is permanent
                permanent = not exc.retryable and exc.status is not None and 400 <= exc.status < 500
                for record in waiting:
                    outcomes[record.key] = Outcome.failure(record.key, exc.code or f"HTTP_{exc.status}",
                                                           exc.message, permanent=permanent)
                break
            retry: list[SyncRecord] = []
            asked: list[float] = []
            for record, answer in zip(waiting, answers):
                outcomes[record.key] = outcome = self.judge(record, answer)
                if not outcome.ok and answer.status in _TRANSIENT:
                    retry.append(record)
                    if answer.headers.get("retry-after", "").replace(".", "", 1).isdigit():
                        asked.append(float(answer.headers["retry-after"]))
            if not retry:
                break
            round_no += 1
            delay = max(asked) if asked else random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** round_no))
            if time.monotonic() + delay >= deadline:
                break  # budget spent: these stay pending (their outcome is already a transient failure)
            self._sleep(delay)
            waiting = retry
        return [outcomes[record.key] for record in batch]


def push_dynamics(warehouse: Warehouse | str | Path, settings: DataverseSettings, mapping: FieldMapping,
                  run_id: str, dry_run: bool = False, *, client: DataverseClient | None = None,
                  max_attempts: int = DEFAULT_MAX_ATTEMPTS, max_workers: int = DEFAULT_MAX_WORKERS) -> SyncResult:
    """Create missing contacts, update followed columns and set / clear external ids in Dynamics from the marts,
    each identity through its client's mapping entry.

    A mapping without a ``dynamics`` target sends nothing to Dynamics (the CRM is not one of its destinations).
    """
    targets = mapping.targets(SYSTEM)
    if not targets:
        log.info("the field mapping has no dynamics target: nothing is sent to Dynamics")
        return SyncResult(system=SYSTEM, run_id=run_id, dry_run=dry_run)
    client = client or DataverseClient(settings)
    # fail before anything is written when the table cannot take the mapping of any client
    metadata = client.metadata("contact")
    for target in targets:
        validate_dynamics_mapping(target, metadata, settings.external_id_field)
    writer = DynamicsWriter(client, entity_set=metadata.entity_set, external_id_field=settings.external_id_field)
    with Warehouse.of(warehouse).connect() as con:
        crm = crm_records(con, SYSTEM, mapping, settings.external_id_field)
        result = run_sync(con, writer, crm.records, run_id, dry_run=dry_run, max_attempts=max_attempts,
                          max_workers=max_workers, invalid=crm.invalid)
    if client.gate.waited_s:
        log.info("Dynamics push waited %.1f s for service protection", client.gate.waited_s)
    return result
