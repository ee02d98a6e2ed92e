"""Writes contacts and external ids to Salesforce: upserts by external id, updates by Id, never blind inserts.

* ``create_contact`` records are upserted on the external-id field (= the identity id), so a resend after a
  crash or a timeout updates the contact created the first time instead of creating a second one;
* ``set_external_id`` / ``clear_external_id`` records update an existing contact by its Id.

A value the org refuses (``VALIDATION_ERRORS``: a malformed email, a string too long, ...) is never resent as it
is. Under the default ``ValidationPolicy.DROP_FIELD`` a new contact refused for optional fields is created at
once without them (``Outcome.dropped_fields``, kept in ``sync_state.dropped_fields``); a refused required field,
an update, or ``ValidationPolicy.DEAD_LETTER`` dead-letters the record at once with the code and field names.

Up to ``bulk_threshold`` records of one kind go out as sObject Collections requests (≤ 200 records each,
``allOrNone: false``, one result per record in request order); above it as one Bulk API 2.0 ingest job
(CSV upload, poll, successful / failed / unprocessed results).
"""
from __future__ import annotations

import csv
import io
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

import orjson
import requests

from clients.http import ApiError, RequestLimitExceeded, error_code_and_message, path_segment
from clients.salesforce import SalesforceClient
from reverse_etl.state import Outcome, SyncRecord

CREATE_CONTACT = "create_contact"
SET_EXTERNAL_ID = "set_external_id"
CLEAR_EXTERNAL_ID = "clear_external_id"
# fields carried from the identity onto a linked contact: a consent opt-out, the fields an entry's updated event
# follows, a deleted event's flag
SET_FIELD = "set_field"
ANONYMISE_CONTACT = "anonymise_contact"  # an erased person's contact, personal fields overwritten
DELETE_CONTACT = "delete_contact"  # an erased person's contact, deleted (reverse_etl.erasure_writer)
_METHOD = {CREATE_CONTACT: "upsert", SET_EXTERNAL_ID: "update", CLEAR_EXTERNAL_ID: "update", SET_FIELD: "update",
           ANONYMISE_CONTACT: "update"}

COLLECTION_LIMIT = 200  # Salesforce's limit of records per sObject Collections request
DEFAULT_BULK_THRESHOLD = 10_000
DEFAULT_BULK_JOB_MAX_RECORDS = 100_000  # keeps one upload well under the 100 MB Bulk API 2.0 limit
BULK_NULL = "#N/A"  # how Bulk API 2.0 CSV says "set this field to null"

# A value the org refuses (format, length, type, picklist, validation rule, unknown field): resending the same
# payload cannot help, so it is never retried (see ValidationPolicy).
VALIDATION_ERRORS = frozenset({
    "REQUIRED_FIELD_MISSING", "INVALID_EMAIL_ADDRESS", "STRING_TOO_LONG", "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "INVALID_FIELD", "INVALID_TYPE_ON_FIELD_IN_RECORD", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "MALFORMED_ID",
    "INVALID_FIELD_FOR_INSERT_UPDATE", "FIELD_INTEGRITY_EXCEPTION", "NUMBER_OUTSIDE_VALID_RANGE", "INVALID_ID_FIELD",
    "MISSING_ARGUMENT", "JSON_PARSER_ERROR", "INVALID_TYPE",
})
# Refusals that depend on other records or on the org's automation (a duplicate, a failing trigger): they may
# clear up, so they are dead-lettered only after the configured number of attempts.
PERMANENT_ERRORS = frozenset({
    "DUPLICATES_DETECTED", "DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID", "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
})
# The record written on no longer exists: retrying cannot help, dead-letter at once.
GONE_ERRORS = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"})
_MAX_DROP_ROUNDS = 3  # each refusal names its fields; a few rounds cover a record with several bad values
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class ValidationPolicy(StrEnum):
    """What becomes of a new contact the CRM refuses for a field value (README: "Validation errors")."""

    DROP_FIELD = "drop_field"  # create it without the refused optional fields, flagged in sync_state
    DEAD_LETTER = "dead_letter"  # dead-letter it at once with the error code and the refused fields


class BulkJob(list):
    """A batch sent as one Bulk API 2.0 ingest job rather than as sObject Collections requests."""


def _distinct_targets(records: list[SyncRecord], method: str) -> list[list[SyncRecord]]:
    """Updates split into rounds in which each contact appears once (its id set, then its fields): Salesforce
    refuses a collection or job that names one record twice."""
    if method != "update":
        return [records]
    rounds: list[list[SyncRecord]] = []
    seen: dict[str | None, int] = {}
    for record in records:
        n = seen[record.target] = seen.get(record.target, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(record)
    return rounds


def classify(key: str, code: str | None, fields: Sequence[str] = ()) -> Outcome:
    """Outcome for a per-record error: refused value or gone (at once), permanent (after attempts), or
    (anything else, e.g. UNABLE_TO_LOCK_ROW) transient. The remote message is not kept: it may quote values."""
    return Outcome.failure(key, code, fields=fields, permanent=code in PERMANENT_ERRORS,
                           give_up=code in GONE_ERRORS or code in VALIDATION_ERRORS)


def bulk_error(text: str, payload_fields: Iterable[str]) -> tuple[str | None, tuple[str, ...]]:
    """Code and refused fields of a Bulk API ``sf__Error`` (``CODE:message:Field1,Field2``). The message may
    quote the value, so only names of fields the record carried are believed."""
    code = text.partition(":")[0].strip() or None
    known = {name.lower(): name for name in payload_fields}
    named = (part.strip() for part in text.rpartition(":")[2].split(","))
    return code, tuple(known[name.lower()] for name in named if _FIELD_NAME.fullmatch(name) and name.lower() in known)


class SalesforceWriter:
    system = "salesforce"

    def __init__(self, client: SalesforceClient, *, sobject: str = "Contact", external_id_field: str | None = None,
                 collection_size: int = COLLECTION_LIMIT, bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
                 bulk_job_max_records: int = DEFAULT_BULK_JOB_MAX_RECORDS, bulk_poll_max_s: float = 2.0,
                 bulk_timeout_s: float = 900.0, sleep: Callable[[float], None] = time.sleep,
                 validation_policy: ValidationPolicy = ValidationPolicy.DROP_FIELD,
                 required_fields: Iterable[str] = ("LastName",)) -> None:
        if not 1 <= collection_size <= COLLECTION_LIMIT:
            raise ValueError(f"collection_size must be between 1 and {COLLECTION_LIMIT}")
        self.client = client
        self.sobject = sobject
        self.external_id_field = external_id_field or client.settings.external_id_field
        self.collection_size = collection_size
        self.bulk_threshold = bulk_threshold
        self.bulk_job_max_records = bulk_job_max_records
        self.bulk_poll_max_s = bulk_poll_max_s
        self.bulk_timeout_s = bulk_timeout_s
        self._sleep = sleep
        self.validation_policy = ValidationPolicy(validation_policy)
        # never left out of a new contact: the external id keys it, the org requires the others
        self.required_fields = {name.lower() for name in (*required_fields, self.external_id_field)}
        self._calls = 0
        self._calls_lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        return self._calls

    def _request(self, method: str, path: str, **kw: Any) -> requests.Response:
        with self._calls_lock:
            self._calls += 1
        try:
            return self.client.request(method, path, **kw)
        except requests.RequestException as exc:
            # a connection that died mid-answer: the write may or may not have happened; resending is safe
            raise ApiError(f"{method} {path.split('/')[0]} connection failed: {type(exc).__name__}",
                           code=type(exc).__name__, retryable=True) from None

    # -- planning ---------------------------------------------------------------------------------------------
    def batches(self, records: Sequence[SyncRecord]) -> list[list[SyncRecord]]:
        """Collections-sized batches per method, or Bulk API jobs when a method has more than the threshold."""
        by_method: dict[str, list[SyncRecord]] = {}
        for record in records:
            if record.operation not in _METHOD:
                raise ValueError(f"Salesforce writer cannot perform operation {record.operation!r}")
            by_method.setdefault(_METHOD[record.operation], []).append(record)
        batches: list[list[SyncRecord]] = []
        for group in (g for method, same in by_method.items() for g in _distinct_targets(same, method)):
            if len(group) > self.bulk_threshold:
                size = self.bulk_job_max_records
                batches.extend(BulkJob(group[i:i + size]) for i in range(0, len(group), size))
            else:
                size = self.collection_size
                batches.extend(list(group[i:i + size]) for i in range(0, len(group), size))
        return batches

    def send(self, batch: list[SyncRecord]) -> list[Outcome]:
        if not batch:
            return []
        method = _METHOD[batch[0].operation]
        if isinstance(batch, BulkJob) or len(batch) > self.collection_size:
            outcomes = self._bulk(batch, method)
        else:
            outcomes = self._collection(batch, method)
        if method == "upsert" and self.validation_policy is ValidationPolicy.DROP_FIELD:
            outcomes = self._without_refused_fields(batch, outcomes)
        return outcomes

    # -- validation policy -----------------------------------------------------------------------------------
    def _droppable(self, record: SyncRecord, outcome: Outcome) -> tuple[str, ...]:
        """The payload's spelling of the fields a refusal names, when all are optional fields it carries."""
        if outcome.ok or outcome.error_code not in VALIDATION_ERRORS or not outcome.fields:
            return ()
        carried = {name.lower(): name for name in record.payload}
        names = [name.lower() for name in outcome.fields]
        if any(name not in carried or name in self.required_fields for name in names):
            return ()
        return tuple(carried[name] for name in names)

    def _without_refused_fields(self, batch: list[SyncRecord], outcomes: list[Outcome]) -> list[Outcome]:
        """New contacts refused for optional field values, upserted again without those fields."""
        result = {o.key: o for o in outcomes}
        dropped: dict[str, tuple[str, ...]] = {}
        first_code: dict[str, str | None] = {}
        todo = [(r, fields) for r in batch if (fields := self._droppable(r, result[r.key]))]
        for _ in range(_MAX_DROP_ROUNDS):
            if not todo:
                break
            retry = []
            for record, fields in todo:
                first_code.setdefault(record.key, result[record.key].error_code)
                dropped[record.key] = dropped.get(record.key, ()) + fields
                payload = {k: v for k, v in record.payload.items() if k not in dropped[record.key]}
                retry.append(SyncRecord(record.key, record.operation, payload))
            answers: list[Outcome] = []
            for start in range(0, len(retry), self.collection_size):
                answers.extend(self._collection(retry[start:start + self.collection_size], "upsert"))
            todo = []
            for record, answer in zip(retry, answers):
                if answer.ok:
                    result[record.key] = Outcome.success(record.key, answer.remote_id,
                                                         dropped_fields=dropped[record.key],
                                                         code=first_code[record.key])
                else:
                    result[record.key] = answer
                    if fields := self._droppable(record, answer):
                        todo.append((record, fields))
        return [result[r.key] for r in batch]

    # -- sObject Collections -----------------------------------------------------------------------------------
    def _collection(self, batch: list[SyncRecord], method: str) -> list[Outcome]:
        records = []
        for record in batch:
            body: dict[str, Any] = {"attributes": {"type": self.sobject}}
            if method == "update":
                body["Id"] = record.target
                body.update(record.payload)
            else:  # an upsert never clears: fields without a value are left as they are
                body.update({k: v for k, v in record.payload.items() if v is not None})
            records.append(body)
        path = (f"composite/sobjects/{path_segment(self.sobject)}/{path_segment(self.external_id_field)}"
                if method == "upsert"
                else "composite/sobjects")
        try:
            response = self._request("PATCH", path, data=orjson.dumps({"allOrNone": False, "records": records}),
                                     headers={"Content-Type": "application/json"})
        except RequestLimitExceeded:
            raise
        except ApiError as exc:
            return [Outcome.failure(r.key, exc.code or f"HTTP_{exc.status}") for r in batch]
        if response.status_code >= 300:
            code, _ = error_code_and_message(response)
            code = code or f"HTTP_{response.status_code}"
            if response.status_code >= 500:
                return [Outcome.failure(r.key, code) for r in batch]
            # the whole request was refused (4xx): permanent, not a refusal of one record's values
            return [Outcome.failure(r.key, code, "the request was refused as a whole", permanent=True,
                                    give_up=code in GONE_ERRORS) for r in batch]
        results = orjson.loads(response.content)
        if not isinstance(results, list) or len(results) != len(batch):
            # cannot tell which record a result belongs to: resend them all next run (writes are idempotent)
            return [Outcome.failure(r.key, "UNMATCHED_RESULTS", "collection answer does not match the request")
                    for r in batch]
        outcomes = []
        for record, result in zip(batch, results):
            if result.get("success"):
                outcomes.append(Outcome.success(record.key, result.get("id") or record.target))
                continue
            errors = [e for e in result.get("errors") or [] if isinstance(e, dict)] or [{}]
            fields = dict.fromkeys(name for e in errors for name in e.get("fields") or [] if isinstance(name, str))
            outcomes.append(classify(record.key, errors[0].get("statusCode") or errors[0].get("errorCode"),
                                     tuple(fields)))
        return outcomes

    # -- Bulk API 2.0 --------------------------------------------------------------------------------------------
    def _bulk(self, batch: list[SyncRecord], method: str) -> list[Outcome]:
        match_field = self.external_id_field if method == "upsert" else "Id"
        by_match: dict[str, SyncRecord] = {}
        for record in batch:
            by_match[self._match_value(record, method)] = record
        job_spec: dict[str, Any] = {"object": self.sobject, "operation": method, "contentType": "CSV",
                                    "lineEnding": "LF", "columnDelimiter": "COMMA"}
        if method == "upsert":
            job_spec["externalIdFieldName"] = self.external_id_field
        try:
            job_id = self._bulk_json("POST", "jobs/ingest", job_spec)["id"]
            upload = self._request("PUT", f"jobs/ingest/{job_id}/batches", data=self._csv(batch, method),
                                   headers={"Content-Type": "text/csv"})
            if upload.status_code >= 300:
                code, _ = error_code_and_message(upload)
                self._abort(job_id)
                return [Outcome.failure(r.key, code or f"HTTP_{upload.status_code}") for r in batch]
            self._bulk_json("PATCH", f"jobs/ingest/{job_id}", {"state": "UploadComplete"})
            state = self._wait_for_job(job_id)
            if state.get("state") != "JobComplete":
                # the job as a whole did not run (failed, aborted, or still running past our patience): the
                # records stay pending and go out again next run, which is safe for upserts and updates
                return [Outcome.failure(r.key, "BULK_JOB_" + str(state.get("state", "TIMEOUT")).upper(),
                                        "the bulk job did not complete") for r in batch]
            outcomes: dict[str, Outcome] = {}
            for row in self._results(job_id, "successfulResults"):
                record = by_match.get(row.get(match_field, ""))
                if record is not None:
                    outcomes[record.key] = Outcome.success(record.key, row.get("sf__Id") or record.target)
            for row in self._results(job_id, "failedResults"):
                record = by_match.get(row.get(match_field, ""))
                if record is not None:
                    outcomes[record.key] = classify(record.key, *bulk_error(row.get("sf__Error") or "",
                                                                            record.payload))
        except RequestLimitExceeded:
            raise
        except ApiError as exc:
            return [Outcome.failure(r.key, exc.code or f"HTTP_{exc.status}") for r in batch]
        # unprocessed or unreported records stay pending and are sent again next run
        return [outcomes.get(r.key) or Outcome.failure(r.key, "BULK_UNPROCESSED", "not processed by the bulk job")
                for r in batch]

    def _match_value(self, record: SyncRecord, method: str) -> str:
        if method == "upsert":
            return str(record.payload[self.external_id_field])
        return str(record.target)

    def _csv(self, batch: list[SyncRecord], method: str) -> bytes:
        columns: list[str] = ["Id"] if method == "update" else []
        for record in batch:
            for name in record.payload:
                if name not in columns:
                    columns.append(name)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for record in batch:
            row = []
            for name in columns:
                if name == "Id" and method == "update":
                    row.append(record.target)
                    continue
                value = record.payload.get(name)
                # an update writes explicit nulls; an upsert leaves fields without a value untouched
                row.append(BULK_NULL if value is None and method == "update" and name in record.payload
                           else "" if value is None else value)
            writer.writerow(row)
        return out.getvalue().encode()

    def _bulk_json(self, method: str, path: str, body: dict) -> dict:
        # creating a job twice leaves an empty one, which Salesforce expires: harmless to repeat
        response = self._request(method, path, data=orjson.dumps(body), headers={"Content-Type": "application/json"},
                                 idempotent=True)
        if response.status_code >= 300:
            code, message = error_code_and_message(response)
            raise ApiError(f"{method} {path.split('/')[0]}/{path.split('/')[1]} failed with HTTP "
                           f"{response.status_code}: {message}", status=response.status_code, code=code)
        return orjson.loads(response.content) if response.content else {}

    def _abort(self, job_id: str) -> None:
        try:
            self._bulk_json("PATCH", f"jobs/ingest/{job_id}", {"state": "Aborted"})
        except ApiError:
            pass  # best effort: an unfinished job expires on its own

    def _wait_for_job(self, job_id: str) -> dict:
        deadline = time.monotonic() + self.bulk_timeout_s
        delay = 0.2
        while True:
            state = self._job_state(job_id)
            if state.get("state") in ("JobComplete", "Failed", "Aborted"):
                return state
            if time.monotonic() + delay > deadline:
                return {"state": "Timeout"}
            self._sleep(delay)
            delay = min(delay * 2, self.bulk_poll_max_s)

    def _job_state(self, job_id: str) -> dict:
        response = self._request("GET", f"jobs/ingest/{job_id}")
        if response.status_code >= 300:
            code, message = error_code_and_message(response)
            raise ApiError(f"GET jobs/ingest failed with HTTP {response.status_code}: {message}",
                           status=response.status_code, code=code)
        return orjson.loads(response.content)

    def _results(self, job_id: str, kind: str) -> list[dict[str, str]]:
        response = self._request("GET", f"jobs/ingest/{job_id}/{kind}", headers={"Accept": "text/csv"})
        if response.status_code >= 300:
            code, message = error_code_and_message(response)
            raise ApiError(f"GET jobs/ingest/{kind} failed with HTTP {response.status_code}: {message}",
                           status=response.status_code, code=code)
        return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
