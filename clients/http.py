"""One retrying HTTP call shared by every API client.

Retries throttling (429), transient server errors (500/502/503/504), timeouts and dropped connections with
exponential backoff and full jitter, honours ``Retry-After`` and never spends more than ``retry_max_s`` in
total. Any other status is handed back to the caller, which knows what a 4xx means for its API.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# a dropped connection shows up as ChunkedEncodingError when the body is cut short after the headers
_TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 30.0


class ApiError(Exception):
    """An API call that failed for good (or, with ``retryable``, one that kept failing until the budget ran out)."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable


class RequestLimitExceeded(ApiError):
    """Salesforce's API request limit is used up: retrying only burns more of it, so the run ends cleanly."""


class _TrustingSession(requests.Session):
    """A session whose configured CA bundle wins over ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``.

    Plain requests lets those variables override ``session.verify``, which would silently ignore
    ``IDLINK_CA_BUNDLE`` on machines that set them.
    """

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings


def new_session(ca_bundle: str | None) -> requests.Session:
    """A keep-alive session that trusts ``ca_bundle`` (or the system store when None)."""
    session = _TrustingSession()
    if ca_bundle:
        session.verify = ca_bundle
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def route_of(url: str) -> str:
    """The method-free, query-free path of a URL: safe to show in errors (queries may carry record values)."""
    return urlsplit(url).path or "/"


def error_code_and_message(response: requests.Response) -> tuple[str | None, str]:
    """Error code and message from a Graph / Dataverse (``{"error": {...}}``), Salesforce (``[{...}]``) or SCIM
    (``{"scimType", "detail"}``) error body."""
    try:
        body = response.json()
    except ValueError:
        return None, (response.reason or f"HTTP {response.status_code}")
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode"), str(body[0].get("message", ""))[:300]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return err.get("code"), str(err.get("message", ""))[:300]
        if isinstance(err, str):  # OAuth token endpoints
            return err, str(body.get("error_description", ""))[:300]
        if "detail" in body or "scimType" in body:  # RFC 7644 error
            return body.get("scimType"), str(body.get("detail", ""))[:300]
    return None, (response.reason or f"HTTP {response.status_code}")


def successful_content(method: str, response: requests.Response, fallback_url: str) -> bytes:
    """The body of a successful answer, or an ApiError naming the route (never its query) and the API's error."""
    if response.status_code < 400:
        return response.content
    code, message = error_code_and_message(response)
    raise ApiError(
        f"{method} {route_of(response.url or fallback_url)} failed with HTTP {response.status_code}: "
        f"{f'{code}: ' if code else ''}{message}",
        status=response.status_code,
        code=code,
    )


def parse_retry_after(raw: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` value (delta-seconds or HTTP date), or None."""
    if not raw:
        return None
    raw = str(raw).strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def retry_after_seconds(response: requests.Response) -> float | None:
    """Seconds asked for by the ``Retry-After`` header of ``response``, or None."""
    return parse_retry_after(response.headers.get("Retry-After"))


class _RetryableStatus(Exception):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _sleep(seconds: float) -> None:
    # module-level indirection so tests can observe the waits without sleeping
    time.sleep(seconds)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout_s: float,
    retry_max_s: float,
    **requests_kwargs: Any,
) -> requests.Response:
    """Send one request, retrying transient failures within ``retry_max_s`` seconds in total.

    Returns the final response for any non-retryable status. Raises ``ApiError(retryable=True)`` when the
    budget is spent on retryable failures.
    """
    started = time.monotonic()
    deadline = started + retry_max_s
    jitter = tenacity.wait_random_exponential(multiplier=_BACKOFF_BASE_S, max=_BACKOFF_CAP_S)

    def wait(retry_state: tenacity.RetryCallState) -> float:
        delay = jitter(retry_state)
        outcome = retry_state.outcome
        if outcome is not None and isinstance(outcome.exception(), _RetryableStatus):
            asked = retry_after_seconds(outcome.exception().response)
            if asked is not None:
                delay = asked
        return min(delay, max(0.0, deadline - time.monotonic()))

    def stop(retry_state: tenacity.RetryCallState) -> bool:
        # stop when the budget is gone, or when the server asks for a pause longer than what is left
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True
        outcome = retry_state.outcome
        if outcome is not None and isinstance(outcome.exception(), _RetryableStatus):
            asked = retry_after_seconds(outcome.exception().response)
            if asked is not None and asked > remaining:
                return True
        return False

    def attempt() -> requests.Response:
        remaining = deadline - time.monotonic()
        timeout = max(0.5, min(timeout_s, remaining)) if retry_max_s > 0 else timeout_s
        response = session.request(method, url, timeout=timeout, **requests_kwargs)
        if response.status_code in RETRYABLE_STATUSES:
            raise _RetryableStatus(response)
        return response

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type((_RetryableStatus, *_TRANSPORT_ERRORS)),
        wait=wait,
        stop=stop,
        sleep=lambda seconds: _sleep(seconds),
        reraise=True,
    )
    route = route_of(url)
    try:
        return retrying(attempt)
    except _RetryableStatus as exc:
        code, message = error_code_and_message(exc.response)
        attempts = retrying.statistics.get("attempt_number", 1)
        raise ApiError(
            f"{method} {route} still failing with HTTP {exc.response.status_code} after {attempts} attempts"
            f" ({time.monotonic() - started:.1f} s): {message}",
            status=exc.response.status_code,
            code=code,
            retryable=True,
        ) from None
    except _TRANSPORT_ERRORS as exc:
        attempts = retrying.statistics.get("attempt_number", 1)
        raise ApiError(
            f"{method} {route} unreachable after {attempts} attempts"
            f" ({time.monotonic() - started:.1f} s): {type(exc).__name__}",
            status=None,
            code=type(exc).__name__,
            retryable=True,
        ) from None
