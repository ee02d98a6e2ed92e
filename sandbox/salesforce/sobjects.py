"""sObject REST endpoints for Contact: describe, read, create, update, soft delete and upsert by external id."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.salesforce.http import ApiError, Org, json_body, json_response
from sandbox.salesforce.schema import FIELDS_BY_LOWER, describe_contact
from sandbox.salesforce.store import MultipleMatches

SUPPORTED_OBJECTS = ("Contact",)


def check_object(request: Request) -> None:
    if request.path_params["sobject"].lower() != "contact":
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def record_url(version: str, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/Contact/{record_id}"


def as_api_record(record: dict[str, Any], version: str, fields: list[str] | None = None) -> dict[str, Any]:
    names = fields if fields is not None else list(record)
    body: dict[str, Any] = {"attributes": {"type": "Contact", "url": record_url(version, record["Id"])}}
    for name in names:
        body[name] = record.get(name)
    return body


def requested_fields(request: Request) -> list[str] | None:
    raw = request.query_params.get("fields")
    if not raw:
        return None
    names = []
    for name in (n.strip() for n in raw.split(",") if n.strip()):
        spec = FIELDS_BY_LOWER.get(name.lower())
        if spec is None:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Contact")
        names.append(spec.name)
    return names


def payload_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object with the record's fields")
    return body


async def describe_global(request: Request, org: Org) -> Response:
    version = request.path_params["version"]
    return json_response({
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [{
            "name": "Contact", "label": "Contact", "keyPrefix": "003", "custom": False, "queryable": True,
            "createable": True, "updateable": True, "deletable": True,
            "urls": {"sobject": f"/services/data/v{version}/sobjects/Contact",
                     "describe": f"/services/data/v{version}/sobjects/Contact/describe"},
        }],
    })


async def object_info(request: Request, org: Org) -> Response:
    check_object(request)
    described = describe_contact(request.path_params["version"])
    return json_response({"objectDescribe": {k: v for k, v in described.items() if k != "fields"}, "recentItems": []})


async def describe(request: Request, org: Org) -> Response:
    check_object(request)
    return json_response(describe_contact(request.path_params["version"]))


async def create(request: Request, org: Org) -> Response:
    check_object(request)
    payload = payload_object(await json_body(request))
    with org.contacts.transaction() as tx:
        record_id = org.contacts.create(tx, payload)
    return json_response({"id": record_id, "success": True, "errors": []}, 201)


async def get_record(request: Request, org: Org) -> Response:
    check_object(request)
    with org.ctx.lock:
        record = org.contacts.get(request.path_params["record_id"])
    return json_response(as_api_record(record, request.path_params["version"], requested_fields(request)))


async def update(request: Request, org: Org) -> Response:
    check_object(request)
    payload = payload_object(await json_body(request))
    with org.contacts.transaction() as tx:
        org.contacts.update(tx, request.path_params["record_id"], payload)
    return Response(status_code=204)


async def delete(request: Request, org: Org) -> Response:
    check_object(request)
    with org.contacts.transaction() as tx:
        org.contacts.delete(tx, request.path_params["record_id"])
    return Response(status_code=204)


def multiple_choices(version: str, ids: list[str]) -> Response:
    return json_response([record_url(version, i) for i in ids], 300)


async def get_by_external_id(request: Request, org: Org) -> Response:
    check_object(request)
    version = request.path_params["version"]
    ids = org.contacts.find_by_external_id(request.path_params["field"], request.path_params["value"].rstrip("/"))
    if not ids:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if len(ids) > 1:
        return multiple_choices(version, ids)
    with org.ctx.lock:
        record = org.contacts.get(ids[0])
    return json_response(as_api_record(record, version, requested_fields(request)))


async def upsert(request: Request, org: Org) -> Response:
    check_object(request)
    payload = payload_object(await json_body(request))
    version = request.path_params["version"]
    try:
        with org.contacts.transaction() as tx:
            record_id, created = org.contacts.upsert(
                tx, request.path_params["field"], request.path_params["value"].rstrip("/"), payload)
    except MultipleMatches as several:
        return multiple_choices(version, several.ids)
    return json_response({"id": record_id, "success": True, "errors": [], "created": created},
                         201 if created else 200)
