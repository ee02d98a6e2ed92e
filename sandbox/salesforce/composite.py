"""sObject Collections: create, update, upsert and delete up to 200 records per call.

Results come back in request order. With ``allOrNone`` every record is rolled back when any fails, and the
records that were fine report ``ALL_OR_NONE_OPERATION_ROLLED_BACK``. A failing record never writes anything
(validation precedes the write), so without ``allOrNone`` one transaction can carry the whole batch.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.salesforce.http import ApiError, Org, json_body, json_response
from sandbox.salesforce.schema import FIELDS_BY_LOWER, FieldError, ValidationFailed
from sandbox.salesforce.store import MultipleMatches, Transaction

MAX_RECORDS = 200
ROLLED_BACK = FieldError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)


def _batch(body: Any) -> tuple[bool, list[Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", 'Expected {"allOrNone": bool, "records": [...]}')
    records = body["records"]
    if len(records) > MAX_RECORDS:
        raise ApiError(400, "EXCEEDED_ID_LIMIT",
                       f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call")
    return bool(body.get("allOrNone", False)), records


def _check_record(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValidationFailed([FieldError("JSON_PARSER_ERROR", "Each record must be a JSON object")])
    sobject = (record.get("attributes") or {}).get("type", "Contact")
    if str(sobject).lower() != "contact":
        raise ValidationFailed([FieldError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")])
    return record


def _run(org: Org, all_or_none: bool, items: list[Any],
         operation: Callable[[Transaction, Any], dict[str, Any]], upsert: bool) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    failed = False
    with org.contacts.transaction() as tx:
        for item in items:
            try:
                results.append(operation(tx, item))
            except ValidationFailed as failure:
                failed = True
                results.append(_failure(failure.errors, upsert, _known_id(item)))
        if all_or_none and failed:
            org.contacts.rollback(tx)
            # a rolled-back create has no id any more; an update keeps the id the caller sent
            results = [
                _failure([ROLLED_BACK], upsert, _known_id(item)) if r["success"] else r
                for item, r in zip(items, results)
            ]
    return results


def _known_id(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return next((v for k, v in item.items() if k.lower() == "id" and isinstance(v, str)), None)
    return None


def _failure(errors: list[FieldError], upsert: bool, record_id: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"id": record_id, "success": False, "errors": [e.as_collection() for e in errors]}
    if upsert:
        result["created"] = False
    return result


async def create_many(request: Request, org: Org) -> Response:
    all_or_none, records = _batch(await json_body(request))

    def create(tx: Transaction, record: Any) -> dict[str, Any]:
        return {"id": org.contacts.create(tx, _check_record(record)), "success": True, "errors": []}

    return json_response(_run(org, all_or_none, records, create, upsert=False))


async def update_many(request: Request, org: Org) -> Response:
    all_or_none, records = _batch(await json_body(request))

    def update(tx: Transaction, record: Any) -> dict[str, Any]:
        record_id = _known_id(_check_record(record))
        if not record_id:
            raise ValidationFailed([FieldError("MISSING_ARGUMENT", "Id not specified in an update call", ("Id",))])
        return {"id": org.contacts.update(tx, record_id, record), "success": True, "errors": []}

    return json_response(_run(org, all_or_none, records, update, upsert=False))


async def upsert_many(request: Request, org: Org) -> Response:
    if request.path_params["sobject"].lower() != "contact":
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    field = request.path_params["field"].rstrip("/")
    spec = FIELDS_BY_LOWER.get(field.lower())
    if spec is None or not spec.external_id:
        raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}")
    all_or_none, records = _batch(await json_body(request))

    def upsert(tx: Transaction, record: Any) -> dict[str, Any]:
        record = _check_record(record)
        value = next((v for k, v in record.items() if k.lower() == spec.name.lower()), None)
        if value is None or str(value).strip() == "":
            raise ValidationFailed([FieldError("MISSING_ARGUMENT", f"{spec.name} not specified", (spec.name,))])
        try:
            record_id, created = org.contacts.upsert(tx, spec.name, str(value), record)
        except MultipleMatches:
            raise ValidationFailed([FieldError(
                "DUPLICATE_EXTERNAL_ID", f"{spec.name}: more than one record found for external id field",
                (spec.name,))]) from None
        return {"id": record_id, "success": True, "errors": [], "created": created}

    return json_response(_run(org, all_or_none, records, upsert, upsert=True))


async def delete_many(request: Request, org: Org) -> Response:
    ids = [i.strip() for i in request.query_params.get("ids", "").split(",") if i.strip()]
    if not ids:
        raise ApiError(400, "MISSING_ARGUMENT", "ids not specified")
    if len(ids) > MAX_RECORDS:
        raise ApiError(400, "EXCEEDED_ID_LIMIT",
                       f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call")
    all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"

    def delete(tx: Transaction, record_id: Any) -> dict[str, Any]:
        return {"id": org.contacts.delete(tx, record_id), "success": True, "errors": []}

    return json_response(_run(org, all_or_none, ids, delete, upsert=False))
