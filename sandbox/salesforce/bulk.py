"""Bulk API 2.0 ingest jobs: create, upload CSV, close (or abort), asynchronous processing, result CSVs.

A closed job waits ``PROCESSING_DELAY_S`` (UploadComplete), then a background thread works through the rows
in chunks (InProgress) and finishes JobComplete, or Failed when the upload itself is unusable (unknown column,
wrong line ending, broken CSV). Row-level problems fail only that row; its ``sf__Error`` reads
``STATUS_CODE:message:fields`` like Salesforce's.
"""
from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.salesforce.http import ApiError, Org, json_body, json_response
from sandbox.salesforce.ids import BULK_JOB_PREFIX, IdGenerator
from sandbox.salesforce.schema import FIELDS_BY_LOWER, FieldError, ValidationFailed
from sandbox.salesforce.store import CLOCK, MultipleMatches

DATA = "/services/data/v{version}"
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
PROCESSING_DELAY_S = 0.2
CHUNK_ROWS = 500
OPERATIONS = ("insert", "update", "upsert", "delete")
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
NULL_MARKER = "#N/A"  # Bulk API: an empty cell leaves a field alone, #N/A sets it to null
RECORDS_ROUTE = "salesforce:bulk_ingest"
FINAL_STATES = ("JobComplete", "Failed", "Aborted")


@dataclass
class IngestJob:
    id: str
    operation: str
    object: str
    external_id_field: str | None
    line_ending: str
    column_delimiter: str
    api_version: str
    created_by: str
    created_date: str
    state: str = "Open"
    modstamp: str = ""
    uploads: list[bytes] = field(default_factory=list)
    upload_bytes: int = 0
    header: list[str] = field(default_factory=list)
    processed: int = 0
    failed: int = 0
    successful_rows: list[list[str]] = field(default_factory=list)
    failed_rows: list[list[str]] = field(default_factory=list)
    unprocessed_rows: list[list[str]] = field(default_factory=list)
    error_message: str | None = None
    processing_ms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self, detailed: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.modstamp or self.created_date,
            "state": self.state,
            "externalIdFieldName": self.external_id_field,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "contentUrl": f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if detailed:
            body.update({
                "jobType": "V2Ingest",
                "numberRecordsProcessed": self.processed,
                "numberRecordsFailed": self.failed,
                "retries": 0,
                "totalProcessingTime": self.processing_ms,
                "apiActiveProcessingTime": self.processing_ms,
                "apexProcessingTime": 0,
            })
            if self.error_message:
                body["errorMessage"] = self.error_message
        return body

    def set_state(self, state: str) -> None:
        self.state = state
        self.modstamp = CLOCK.next()


class JobFailed(Exception):
    """The upload as a whole cannot be processed; becomes the job's ``errorMessage``."""


@dataclass
class Jobs:
    ids: IdGenerator = field(default_factory=lambda: IdGenerator(BULK_JOB_PREFIX))
    by_id: dict[str, IngestJob] = field(default_factory=dict)


def jobs_of(org: Org) -> Jobs:
    with org.ctx.lock:
        return org.extras.setdefault("bulk", Jobs())


def job_of(org: Org, request: Request) -> IngestJob:
    job = jobs_of(org).by_id.get(request.path_params["job_id"])
    if job is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return job


def invalid_state(message: str) -> ApiError:
    return ApiError(409, "INVALIDJOBSTATE", message)


# ---------------------------------------------------------------------------- endpoints

async def create_job(request: Request, org: Org) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "INVALIDJOB", "Expected a JSON object describing the job")
    operation = body.get("operation")
    if operation not in OPERATIONS:
        raise ApiError(400, "INVALIDJOB", f"Operation must be one of {', '.join(OPERATIONS)}")
    if str(body.get("object", "")).lower() != "contact":
        raise ApiError(400, "INVALIDJOB", f"Unable to find object: {body.get('object')}")
    if body.get("contentType", "CSV") != "CSV":
        raise ApiError(400, "INVALIDJOB", "Only contentType CSV is supported")
    line_ending = body.get("lineEnding", "LF")
    delimiter = body.get("columnDelimiter", "COMMA")
    if line_ending not in LINE_ENDINGS or delimiter not in DELIMITERS:
        raise ApiError(400, "INVALIDJOB", "Unsupported lineEnding or columnDelimiter")
    external_id_field = body.get("externalIdFieldName")
    if operation == "upsert":
        spec = FIELDS_BY_LOWER.get(str(external_id_field or "").lower())
        if spec is None or not (spec.external_id or spec.name == "Id"):
            raise ApiError(400, "INVALIDJOB", "An External ID field must be specified for upsert on Contact")
        external_id_field = spec.name
    jobs = jobs_of(org)
    now = CLOCK.next()
    job = IngestJob(
        id=jobs.ids.next(), operation=operation, object="Contact", external_id_field=external_id_field,
        line_ending=line_ending, column_delimiter=delimiter, api_version=request.path_params["version"],
        created_by=org.user_id, created_date=now,
    )
    with org.ctx.lock:
        jobs.by_id[job.id] = job
    return json_response(job.info(detailed=False))


async def upload(request: Request, org: Org) -> Response:
    job = job_of(org, request)
    if job.state != "Open":
        raise invalid_state(f"Data can only be uploaded to an Open job; this job is {job.state}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if job.upload_bytes + size > MAX_UPLOAD_BYTES:
            raise ApiError(413, "EXCEEDED_QUOTA", "Job data exceeds the 100 MB upload limit")
        chunks.append(chunk)
    if not size:
        raise ApiError(400, "INVALIDREQUEST", "No CSV data in the upload")
    with job.lock:
        if job.state != "Open":
            raise invalid_state(f"Data can only be uploaded to an Open job; this job is {job.state}")
        job.uploads.append(b"".join(chunks))
        job.upload_bytes += size
    return Response(status_code=201)


async def change_state(request: Request, org: Org) -> Response:
    job = job_of(org, request)
    body = await json_body(request)
    target = body.get("state") if isinstance(body, dict) else None
    with job.lock:
        if target == "UploadComplete":
            if job.state != "Open":
                raise invalid_state(f"Only an Open job can be closed; this job is {job.state}")
            job.set_state("UploadComplete")
            start = True
        elif target == "Aborted":
            if job.state not in ("Open", "UploadComplete", "InProgress"):
                raise invalid_state(f"A {job.state} job cannot be aborted")
            job.set_state("Aborted")
            start = False
        else:
            raise ApiError(400, "INVALIDJOBSTATE", "state must be UploadComplete or Aborted")
    if start:
        threading.Thread(target=process, args=(org, job), name=f"bulk-{job.id}", daemon=True).start()
    return json_response(job.info(detailed=False))


async def get_job(request: Request, org: Org) -> Response:
    job = job_of(org, request)
    with job.lock:
        return json_response(job.info(detailed=True))


async def list_jobs(request: Request, org: Org) -> Response:
    with org.ctx.lock:
        jobs = list(jobs_of(org).by_id.values())
    return json_response({"done": True, "records": [j.info(detailed=False) for j in jobs], "nextRecordsUrl": None})


async def delete_job(request: Request, org: Org) -> Response:
    job = job_of(org, request)
    with job.lock:
        if job.state in ("Open", "InProgress"):
            raise invalid_state(f"A {job.state} job cannot be deleted; close or abort it first")
    with org.ctx.lock:
        jobs_of(org).by_id.pop(job.id, None)
    return Response(status_code=204)


def results_endpoint(kind: str) -> Callable:
    async def results(request: Request, org: Org) -> Response:
        job = job_of(org, request)
        with job.lock:
            if kind == "successfulResults":
                header, rows = ["sf__Id", "sf__Created", *job.header], list(job.successful_rows)
            elif kind == "failedResults":
                header, rows = ["sf__Id", "sf__Error", *job.header], list(job.failed_rows)
            else:
                header, rows = list(job.header), list(job.unprocessed_rows)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=DELIMITERS[job.column_delimiter], quoting=csv.QUOTE_ALL,
                            lineterminator=LINE_ENDINGS[job.line_ending])
        if header:
            writer.writerow(header)
        writer.writerows(rows)
        org.ctx.count_records(RECORDS_ROUTE, len(rows))
        return Response(out.getvalue(), media_type="text/csv")

    return results


def endpoints() -> list[tuple[str, Callable, list[str]]]:
    base = f"{DATA}/jobs/ingest"
    return [
        (base, create_job, ["POST"]),
        (base, list_jobs, ["GET"]),
        (f"{base}/{{job_id}}", get_job, ["GET"]),
        (f"{base}/{{job_id}}", change_state, ["PATCH"]),
        (f"{base}/{{job_id}}", delete_job, ["DELETE"]),
        (f"{base}/{{job_id}}/batches", upload, ["PUT"]),
        (f"{base}/{{job_id}}/successfulResults", results_endpoint("successfulResults"), ["GET"]),
        (f"{base}/{{job_id}}/failedResults", results_endpoint("failedResults"), ["GET"]),
        (f"{base}/{{job_id}}/unprocessedrecords", results_endpoint("unprocessedrecords"), ["GET"]),
    ]


# ---------------------------------------------------------------------------- processing

def parse_upload(job: IngestJob) -> tuple[list[str], list[list[str]]]:
    """Header and rows of every upload; raises JobFailed when the data as a whole is unusable."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    for raw in job.uploads:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise JobFailed("InvalidBatch : The CSV data is not UTF-8 encoded") from None
        newline_at = text.find("\n")
        uses_crlf = newline_at > 0 and text[newline_at - 1] == "\r"
        if newline_at >= 0 and uses_crlf != (job.line_ending == "CRLF"):
            raise JobFailed(f"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting "
                            f"is {job.line_ending}")
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.column_delimiter],
                                strict=True)
            upload_header = next(reader, None)
            upload_rows = [row for row in reader if row]
        except csv.Error as error:
            raise JobFailed(f"InvalidBatch : Failed to parse CSV: {error}") from None
        if not upload_header:
            continue
        if header is not None and [h.lower() for h in upload_header] != [h.lower() for h in header]:
            raise JobFailed("InvalidBatch : Every upload to a job must have the same header")
        header = upload_header
        rows.extend(upload_rows)
    if header is None:
        raise JobFailed("InvalidBatch : No header row found in the uploaded data")
    for name in header:
        if name.strip().lower() not in FIELDS_BY_LOWER:
            raise JobFailed(f"InvalidBatch : Field name not found : {name.strip()}")
    return header, rows


def process(org: Org, job: IngestJob) -> None:
    try:
        _process(org, job)
    except Exception as error:  # never leave a job stuck InProgress: clients poll until a final state
        with job.lock:
            job.error_message = f"InternalServerError : {type(error).__name__}"
            job.set_state("Failed")
        raise


def _process(org: Org, job: IngestJob) -> None:
    time.sleep(PROCESSING_DELAY_S)
    started = time.monotonic()
    with job.lock:
        if job.state != "UploadComplete":  # aborted while waiting
            return
        job.set_state("InProgress")
    try:
        header, rows = parse_upload(job)
    except JobFailed as failure:
        with job.lock:
            job.error_message = str(failure)
            job.set_state("Failed")
        return
    with job.lock:
        job.header = header
    names = [FIELDS_BY_LOWER[h.strip().lower()].name for h in header]
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start:start + CHUNK_ROWS]
        with job.lock:
            if job.state == "Aborted":
                job.unprocessed_rows.extend(rows[start:])
                return
        outcomes = _apply_chunk(org, job, names, chunk)
        with job.lock:
            for row, (record_id, created, error) in zip(chunk, outcomes):
                if error is None:
                    job.successful_rows.append([record_id, "true" if created else "false", *row])
                else:
                    job.failed_rows.append([record_id or "", error, *row])
                    job.failed += 1
                job.processed += 1
            job.processing_ms = int((time.monotonic() - started) * 1000)
    with job.lock:
        job.uploads.clear()  # the data now lives in the result sets
        if job.state == "InProgress":
            job.set_state("JobComplete")


def _apply_chunk(org: Org, job: IngestJob, names: list[str],
                 chunk: list[list[str]]) -> list[tuple[str | None, bool, str | None]]:
    """Apply rows in one transaction; a failing row writes nothing, so it cannot disturb the others."""
    outcomes: list[tuple[str | None, bool, str | None]] = []
    with org.contacts.transaction() as tx:
        for row in chunk:
            record_id: str | None = None
            try:
                if len(row) != len(names):
                    raise ValidationFailed([FieldError(
                        "INVALID_FIELD", f"Row has {len(row)} columns, the header has {len(names)}")])
                values = {n: (None if v == NULL_MARKER else v) for n, v in zip(names, row) if v != ""}
                record_id = values.pop("Id", None)
                created = False
                if job.operation == "insert":
                    if record_id:
                        raise ValidationFailed([FieldError(
                            "INVALID_FIELD_FOR_INSERT_UPDATE", "Id is not allowed in an insert", ("Id",))])
                    record_id, created = org.contacts.create(tx, values), True
                elif job.operation in ("update", "delete"):
                    if not record_id:
                        raise ValidationFailed([FieldError("MISSING_ARGUMENT", "Id not specified", ("Id",))])
                    if job.operation == "update":
                        record_id = org.contacts.update(tx, record_id, values)
                    else:
                        record_id = org.contacts.delete(tx, record_id)
                else:
                    key = job.external_id_field or "Id"
                    value = record_id if key == "Id" else values.get(key)
                    try:
                        record_id, created = org.contacts.upsert(tx, key, value, values)
                    except MultipleMatches:
                        raise ValidationFailed([FieldError(
                            "DUPLICATE_EXTERNAL_ID", f"{key}: more than one record found for external id field",
                            (key,))]) from None
                outcomes.append((record_id, created, None))
            except ValidationFailed as failure:
                outcomes.append((record_id, False, "; ".join(e.as_bulk() for e in failure.errors)))
    return outcomes
