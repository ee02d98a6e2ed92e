"""Salesforce simulator: OAuth client credentials, REST query/sObjects/Collections, Bulk API 2.0 ingest.

The sandbox server composes it through ``routes(ctx)``, seeds it with ``load_contacts(ctx, contacts)`` and
writes ``env(ctx)`` into the environment file that points the pipeline at it.

``POST /__sandbox/salesforce/merge`` with ``{"master": id, "losers": [id, ...]}`` does what a CRM user's merge
does (the REST API has no merge): the losers are deleted with ``MasterRecordId`` set, the master is kept.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.context import SandboxContext
from sandbox.salesforce import bulk, composite, query, sobjects
from sandbox.salesforce.http import (
    UNLIMITED_DISPLAY,
    Org,
    api_endpoint,
    json_response,
    org_of,
    token_endpoint,
    versions,
)
from sandbox.salesforce.schema import EXTERNAL_ID_FIELD, ValidationFailed
from sandbox.salesforce.store import http_status_of

API_VERSION = "62.0"
DATA = "/services/data/v{version}"


def env(ctx: SandboxContext) -> dict[str, str]:
    """Environment variables that point the pipeline's Salesforce client at this simulator."""
    return {
        "SALESFORCE_LOGIN_URL": ctx.config.base_url,
        "SALESFORCE_CLIENT_ID": ctx.config.client_id,
        "SALESFORCE_CLIENT_SECRET": ctx.config.client_secret,
        "SALESFORCE_API_VERSION": API_VERSION,
        "SALESFORCE_EXTERNAL_ID_FIELD": EXTERNAL_ID_FIELD,
    }


def load_contacts(ctx: SandboxContext, contacts: Iterable[Mapping[str, Any]]) -> int:
    """Seed native Contact records (missing Id and timestamps are filled in); returns how many were stored."""
    return org_of(ctx).contacts.load(contacts)


async def limits(request: Request, org: Org) -> Response:
    maximum = org.daily_limit or UNLIMITED_DISPLAY
    jobs = bulk.jobs_of(org)
    with org.ctx.lock:
        open_jobs = sum(1 for job in jobs.by_id.values() if job.state not in bulk.FINAL_STATES)
    return json_response({
        "DailyApiRequests": {"Max": maximum, "Remaining": max(0, maximum - org.api_requests)},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DailyBulkV2QueryFileStorageMB": {"Max": 1048576, "Remaining": 1048576},
        "DataStorageMB": {"Max": 1024, "Remaining": 1024},
        "BulkV2IngestJobsInFlight": {"Current": open_jobs},
    })


def merge_endpoint(ctx: SandboxContext) -> Callable:
    async def merge(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            master, losers = str(body["master"]), [str(loser) for loser in body["losers"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return json_response({"error": 'expected {"master": id, "losers": [id, ...]}'}, 400)
        org = org_of(ctx)
        try:
            with org.contacts.transaction() as tx:
                master_id = org.contacts.merge(tx, master, losers)
        except ValidationFailed as failure:
            return json_response([e.as_rest() for e in failure.errors], http_status_of(failure))
        return json_response({"id": master_id, "merged": losers})

    return merge


def _both(path: str, endpoint: Callable, methods: list[str]) -> list[Route]:
    """Clients differ on trailing slashes (simple-salesforce adds them); answer both spellings."""
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


def routes(ctx: SandboxContext) -> list[BaseRoute]:
    api = api_endpoint(ctx)
    table: list[tuple[str, Callable, list[str]]] = [
        (f"{DATA}/limits", limits, ["GET"]),
        (f"{DATA}/query", query.query_handler(include_deleted=False), ["GET"]),
        (f"{DATA}/queryAll", query.query_handler(include_deleted=True), ["GET"]),
        (f"{DATA}/query/{{locator}}", query.query_more, ["GET"]),
        (f"{DATA}/queryAll/{{locator}}", query.query_more, ["GET"]),
        (f"{DATA}/sobjects", sobjects.describe_global, ["GET"]),
        (f"{DATA}/sobjects/{{sobject}}", sobjects.object_info, ["GET"]),
        (f"{DATA}/sobjects/{{sobject}}", sobjects.create, ["POST"]),
        (f"{DATA}/sobjects/{{sobject}}/describe", sobjects.describe, ["GET"]),
        (f"{DATA}/sobjects/{{sobject}}/{{record_id}}", sobjects.get_record, ["GET"]),
        (f"{DATA}/sobjects/{{sobject}}/{{record_id}}", sobjects.update, ["PATCH"]),
        (f"{DATA}/sobjects/{{sobject}}/{{record_id}}", sobjects.delete, ["DELETE"]),
        (f"{DATA}/composite/sobjects", composite.create_many, ["POST"]),
        (f"{DATA}/composite/sobjects", composite.update_many, ["PATCH"]),
        (f"{DATA}/composite/sobjects", composite.delete_many, ["DELETE"]),
        (f"{DATA}/composite/sobjects/{{sobject}}/{{field}}", composite.upsert_many, ["PATCH"]),
        *bulk.endpoints(),
    ]
    result: list[BaseRoute] = [
        Route("/services/oauth2/token", token_endpoint(ctx), methods=["POST"]),
        Route("/__sandbox/salesforce/merge", merge_endpoint(ctx), methods=["POST"]),
        *_both("/services/data", versions, ["GET"]),
    ]
    for path, handler, methods in table:
        result.extend(_both(path, api(handler), methods))
    # external-id paths take the rest of the URL as the value; registered last so fixed paths win
    result.append(Route(f"{DATA}/sobjects/{{sobject}}/{{field}}/{{value:path}}",
                        api(sobjects.get_by_external_id), methods=["GET"]))
    result.append(Route(f"{DATA}/sobjects/{{sobject}}/{{field}}/{{value:path}}",
                        api(sobjects.upsert), methods=["PATCH"]))
    return result
