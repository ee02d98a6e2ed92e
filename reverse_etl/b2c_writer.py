"""Writes the CRM contact id onto B2C users (a custom attribute) through Graph ``$batch``.

Each batch is one ``POST /$batch`` of at most 20 ``PATCH /users/{id}`` sub-requests. Sub-responses are judged
one by one: 2xx written; 429 / 5xx sent again (honouring ``Retry-After``) while the time budget lasts, then left
pending for the next run; 404 dead-lettered at once (the identity is gone); other 4xx are permanent errors.
PATCH of an attribute is idempotent, so a resend after a crash changes nothing.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import requests

from clients.graph import BATCH_LIMIT, GraphClient
from clients.http import ApiError, RequestLimitExceeded, path_segment
from reverse_etl.attribute_writer import AttributeWriter
from reverse_etl.state import Outcome, SyncRecord

_RETRYABLE = frozenset({429, 500, 502, 503, 504})
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 30.0


def _retry_after(headers: dict[str, Any]) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def _error_code(body: Any) -> str | None:
    # the code only: Graph's message may quote the value it refused
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


class B2CWriter(AttributeWriter):
    system = "b2c"
    target_label = "user id"

    def __init__(self, client: GraphClient, *, batch_size: int = BATCH_LIMIT, retry_budget_s: float | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 1 <= batch_size <= BATCH_LIMIT:
            raise ValueError(f"batch_size must be between 1 and {BATCH_LIMIT}")
        super().__init__(batch_size)
        self.client = client
        self.retry_budget_s = client.settings.retry_max_s if retry_budget_s is None else retry_budget_s
        self._sleep = sleep

    def send(self, batch: list[SyncRecord]) -> list[Outcome]:
        deadline = time.monotonic() + self.retry_budget_s
        waiting = {str(i): record for i, record in enumerate(batch)}
        outcomes: dict[str, Outcome] = {}
        round_no = 0
        while waiting:
            sub_requests = [
                {"id": sub_id, "method": "PATCH", "url": f"/users/{path_segment(record.target)}",
                 "headers": {"Content-Type": "application/json"}, "body": dict(record.payload)}
                for sub_id, record in waiting.items()
            ]
            self._count_call()
            try:
                try:
                    responses = self.client.batch(sub_requests)
                except requests.RequestException as exc:
                    # a connection that died mid-answer: PATCH is idempotent, the next run resends
                    raise ApiError(f"$batch connection failed: {type(exc).__name__}", code=type(exc).__name__,
                                   retryable=True) from None
            except RequestLimitExceeded:
                raise
            except ApiError as exc:
                # the whole $batch failed: transient ones stay pending, a refused request is permanent
                permanent = not exc.retryable and exc.status is not None and 400 <= exc.status < 500
                for record in waiting.values():
                    outcomes[record.key] = Outcome.failure(record.key, exc.code or f"HTTP_{exc.status}",
                                                           permanent=permanent)
                break
            retry: dict[str, SyncRecord] = {}
            asked: list[float] = []
            for response in responses:
                record = waiting[response["id"]]
                status = response["status"]
                code = _error_code(response.get("body"))
                if 200 <= status < 300:
                    outcomes[record.key] = Outcome.success(record.key, record.target)
                elif status == 404:
                    outcomes[record.key] = Outcome.failure(record.key, code or "IDENTITY_GONE",
                                                           "identity no longer exists", give_up=True)
                elif status in _RETRYABLE:
                    retry[response["id"]] = record
                    outcomes[record.key] = Outcome.failure(record.key, code or f"HTTP_{status}")
                    wait = _retry_after(response.get("headers") or {})
                    if wait is not None:
                        asked.append(wait)
                else:
                    outcomes[record.key] = Outcome.failure(record.key, code or f"HTTP_{status}", permanent=True)
            if not retry:
                break
            round_no += 1
            # the server's pause when it names one, else exponential backoff with full jitter
            delay = max(asked) if asked else random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** round_no))
            if time.monotonic() + delay >= deadline:
                break  # budget spent: these stay pending (outcome already recorded as transient)
            self._sleep(delay)
            waiting = retry
        return [outcomes[record.key] for record in batch]
