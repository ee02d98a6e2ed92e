"""One retrying HTTP call shared by every API client.

Retries throttling (429), transient server errors (500/502/503/504), timeouts and dropped connections with
exponential backoff and full jitter, honours ``Retry-After`` and never spends more than ``retry_max_s`` in
total. Any other status is handed back to the caller, which knows what a 4xx means for its API.

Only an idempotent request is retried blindly: repeating it changes nothing, whether or not the first attempt
reached the server. A non-idempotent one (by default a POST, e.g. creating a record) is retried only when it
provably never reached the server: the connection could not be opened, or the server answered 429 (refused
before processing). A timeout, a connection dropped after sending or a 5xx leaves its outcome unknown: it is
not repeated, and the caller learns ``ApiError.outcome_unknown`` (or gets the 5xx) and must find out what
happened, e.g. by reading the record back by a key it chose.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import tenacity
import urllib3
from requests.adapters import HTTPAdapter

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Methods repeated without harm. PATCH is idempotent in general only by convention: every PATCH idlink sends
# sets values (an update by id, an upsert by external id), so sending it twice leaves the same record.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})
# a dropped connection shows up as ChunkedEncodingError when the body is cut short after the headers
_TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 30.0


class ApiError(Exception):
    """An API call that failed for good (or, with ``retryable``, one that kept failing until the budget ran out)."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, retryable: bool = False,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        # a non-idempotent request may or may not have been carried out (see the module docstring)
        self.outcome_unknown = outcome_unknown


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


def path_segment(value: object) -> str:
    """``value`` as one URL path segment: every character that could end or climb the segment (``/``, ``?``,
    ``#``, ``%``) percent-encoded, and a segment of dots refused, so data (an id from a webhook, a record)
    always addresses the record it names and no other."""
    text = str(value)
    if text.strip(".") == "":
        raise ValueError("a path segment cannot be empty or only dots")
    return quote(text, safe="")


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


def never_sent(exc: BaseException) -> bool:
    """True when a transport error proves the request never reached the server (no connection was opened)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.exceptions.ChunkedEncodingError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout_s: float,
    retry_max_s: float,
    idempotent: bool | None = None,
    **requests_kwargs: Any,
) -> requests.Response:
    """Send one request, retrying transient failures within ``retry_max_s`` seconds in total.

    ``idempotent`` (default: by method, see ``IDEMPOTENT_METHODS``) decides what may be retried (module
    docstring). Returns the final response for any status not retried. Raises ``ApiError(retryable=True)`` when
    the budget is spent on retryable failures, and ``ApiError(outcome_unknown=True)`` when a non-idempotent
    request failed in a way that does not tell whether it was carried out.
    """
    if idempotent is None:
        idempotent = method.upper() in IDEMPOTENT_METHODS
    retry_statuses = RETRYABLE_STATUSES if idempotent else frozenset({429})
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
        if response.status_code in retry_statuses:
            raise _RetryableStatus(response)
        return response

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, _RetryableStatus):
            return True
        return isinstance(exc, _TRANSPORT_ERRORS) and (idempotent or never_sent(exc))

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(retryable),
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
        if not idempotent and not never_sent(exc):
            raise ApiError(
                f"{method} {route} failed after it was sent ({type(exc).__name__}): not repeated, its outcome is "
                "unknown",
                status=None,
                code=type(exc).__name__,
                outcome_unknown=True,
            ) from None
        raise ApiError(
            f"{method} {route} unreachable after {attempts} attempts"
            f" ({time.monotonic() - started:.1f} s): {type(exc).__name__}",
            status=None,
            code=type(exc).__name__,
            retryable=True,
        ) from None
