"""SOQL query endpoints: ``query``, ``queryAll`` and paging by ``nextRecordsUrl`` through server-side cursors.

A query is evaluated once, when it starts; its cursor keeps the matching ids so each further page costs only
its own rows. Cursors stay readable until they sit idle for ``CURSOR_IDLE_S`` (a client may retry a page
that failed in transit), and at most ``MAX_CURSORS`` are kept (least recently used go first).
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sandbox.salesforce.http import ApiError, Org, json_response
from sandbox.salesforce.ids import QUERY_LOCATOR_PREFIX
from sandbox.salesforce.schema import SOQL_SCHEMA
from sandbox.salesforce.soql import SoqlError, compile_query, parse

DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
CURSOR_IDLE_S = 15 * 60
MAX_CURSORS = 20
RECORDS_ROUTE = "salesforce:query"
LOCATOR_PATTERN = re.compile(r"^(01g[0-9A-Za-z]{15})-(\d+)$")


@dataclass
class Cursor:
    ids: list[str]
    fields: list[str]
    batch_size: int
    last_used: float


class Cursors:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()

    def open(self, cursor: Cursor) -> str:
        locator = QUERY_LOCATOR_PREFIX + secrets.token_hex(8)[:15]
        with self._lock:
            self._expire()
            self._cursors[locator] = cursor
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.popitem(last=False)
        return locator

    def get(self, locator: str) -> Cursor | None:
        with self._lock:
            self._expire()
            cursor = self._cursors.get(locator)
            if cursor is not None:
                cursor.last_used = time.monotonic()
                self._cursors.move_to_end(locator)
            return cursor

    def _expire(self) -> None:
        horizon = time.monotonic() - CURSOR_IDLE_S
        for locator in [k for k, c in self._cursors.items() if c.last_used < horizon]:
            del self._cursors[locator]

    def __len__(self) -> int:
        return len(self._cursors)


def cursors_of(org: Org) -> Cursors:
    with org.ctx.lock:
        return org.extras.setdefault("query_cursors", Cursors())


def batch_size_of(request: Request) -> int:
    """``Sforce-Query-Options: batchSize=N`` is a hint Salesforce clamps to 200..2000."""
    for option in request.headers.get("sforce-query-options", "").split(","):
        name, _, value = option.strip().partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, int(value.strip())))
    return DEFAULT_BATCH_SIZE


def page(org: Org, version: str, locator: str, cursor: Cursor, offset: int) -> dict[str, Any]:
    end = min(offset + cursor.batch_size, len(cursor.ids))
    records = org.contacts.records
    url_prefix = f"/services/data/v{version}/sobjects/Contact/"
    fields = cursor.fields
    rows = []
    for record_id in cursor.ids[offset:end]:
        record = records.get(record_id)
        if record is None:  # removed by a state reset since the query ran
            continue
        row: dict[str, Any] = {"attributes": {"type": "Contact", "url": url_prefix + record_id}}
        for name in fields:
            row[name] = record.get(name)
        rows.append(row)
    body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": end >= len(cursor.ids), "records": rows}
    if not body["done"]:
        body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
    org.ctx.count_records(RECORDS_ROUTE, len(rows))
    return body


def query_handler(include_deleted: bool):
    async def handler(request: Request, org: Org) -> Response:
        text = request.query_params.get("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string (q) is required")
        try:
            compiled = compile_query(parse(text), "Contact", SOQL_SCHEMA)
        except SoqlError as error:
            raise ApiError(400, error.error_code, error.message) from None
        with org.ctx.lock:  # records are replaced on write, so a list of them is a consistent snapshot
            snapshot = list(org.contacts.records.values())
        include = (lambda r: True) if include_deleted else (lambda r: not r.get("IsDeleted"))
        ids = await run_in_threadpool(compiled.select_ids, snapshot, include)
        version = request.path_params["version"]
        if compiled.count_only:
            return json_response({"totalSize": len(ids), "done": True, "records": []})
        cursor = Cursor(ids, compiled.fields, batch_size_of(request), time.monotonic())
        if len(ids) <= cursor.batch_size:
            return json_response(page(org, version, "", cursor, 0))
        locator = cursors_of(org).open(cursor)
        return json_response(page(org, version, locator, cursor, 0))

    return handler


async def query_more(request: Request, org: Org) -> Response:
    match = LOCATOR_PATTERN.match(request.path_params["locator"].rstrip("/"))
    cursor = cursors_of(org).get(match.group(1)) if match else None
    if cursor is None or int(match.group(2)) > len(cursor.ids):
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return json_response(page(org, request.path_params["version"], match.group(1), cursor, int(match.group(2))))
