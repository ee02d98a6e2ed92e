"""Behaviour of the shared retrying HTTP call."""

from __future__ import annotations

import time

import pytest
import requests
import urllib3

from clients import http
from clients.http import ApiError, retry_after_seconds, send
from tests.clients.fakes import make_response, scripted_session

URL = "https://api.example.test/v1/things?q=secret-value"


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """Records the backoff waits instead of sleeping through them."""
    recorded: list[float] = []
    monkeypatch.setattr(http, "_sleep", recorded.append)
    return recorded


def test_transient_server_errors_are_retried_until_success(waits):
    session, adapter = scripted_session([(503,), (502,), (200, {"ok": True})])
    response = send(session, "GET", URL, timeout_s=5, retry_max_s=60)
    assert response.status_code == 200
    assert len(adapter.requests) == 3
    assert len(waits) == 2


def test_retry_after_header_sets_the_wait(waits):
    session, _ = scripted_session([(429, None, {"Retry-After": "7"}), (200, {})])
    send(session, "GET", URL, timeout_s=5, retry_max_s=60)
    assert waits == [7.0]


def test_backoff_without_retry_after_is_jittered_and_grows_within_cap(waits):
    session, _ = scripted_session([(500,)] * 6 + [(200, {})])
    send(session, "GET", URL, timeout_s=5, retry_max_s=600)
    assert len(waits) == 6
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(http._BACKOFF_CAP_S, http._BACKOFF_BASE_S * 2**attempt)


def test_retry_after_longer_than_the_budget_gives_up_at_once(waits):
    session, adapter = scripted_session([(429, None, {"Retry-After": "3600"}), (200, {})])
    with pytest.raises(ApiError) as info:
        send(session, "GET", URL, timeout_s=5, retry_max_s=10)
    assert info.value.retryable and info.value.status == 429
    assert len(adapter.requests) == 1 and waits == []


def test_total_retry_time_is_bounded_by_the_budget():
    session, adapter = scripted_session(responder=lambda request: make_response(request, 503))
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        send(session, "GET", URL, timeout_s=5, retry_max_s=1.5)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5
    assert len(adapter.requests) >= 2
    assert info.value.retryable and info.value.status == 503


def test_client_errors_are_returned_without_retry(waits):
    session, adapter = scripted_session([(400, [{"errorCode": "MALFORMED_QUERY", "message": "bad"}])])
    response = send(session, "GET", URL, timeout_s=5, retry_max_s=60)
    assert response.status_code == 400
    assert len(adapter.requests) == 1 and waits == []


def test_dropped_connections_and_timeouts_are_retried(waits):
    session, adapter = scripted_session(
        [
            requests.ConnectionError("reset"),
            requests.ReadTimeout("slow"),
            requests.exceptions.ChunkedEncodingError("body cut short"),
            (200, {}),
        ]
    )
    assert send(session, "GET", URL, timeout_s=5, retry_max_s=60).status_code == 200
    assert len(adapter.requests) == 4


def test_exhausted_retries_name_the_route_but_not_the_query(waits):
    session, _ = scripted_session(responder=lambda request: requests.ConnectionError("down"))
    with pytest.raises(ApiError) as info:
        send(session, "GET", URL, timeout_s=5, retry_max_s=0.01)
    assert "/v1/things" in str(info.value)
    assert "secret-value" not in str(info.value)
    assert info.value.retryable and info.value.status is None


def test_retry_after_accepts_http_dates():
    request = requests.Request("GET", URL).prepare()
    response = make_response(request, 429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_seconds(response) == 0.0
    assert retry_after_seconds(make_response(request, 429)) is None


def test_configured_ca_bundle_wins_over_requests_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    bundle = str(tmp_path / "ca.pem")
    session = http.new_session(bundle)
    merged = session.merge_environment_settings("https://api.example.test/", {}, None, None, None)
    assert merged["verify"] == bundle


def refused() -> requests.ConnectionError:
    """What requests raises when no connection could be opened: the request never left."""
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, URL, reason))


def test_a_post_that_may_have_reached_the_server_is_never_repeated(waits):
    for failure in (requests.ConnectionError("reset after sending"), requests.ReadTimeout("no answer"),
                    requests.exceptions.ChunkedEncodingError("answer cut short")):
        session, adapter = scripted_session([failure, (201, {"id": "second"})])
        with pytest.raises(ApiError) as info:
            send(session, "POST", URL, timeout_s=5, retry_max_s=60)
        assert info.value.outcome_unknown and not info.value.retryable
        assert len(adapter.requests) == 1


def test_a_post_answered_with_a_server_error_is_handed_back_unrepeated(waits):
    session, adapter = scripted_session([(503,), (201, {})])
    assert send(session, "POST", URL, timeout_s=5, retry_max_s=60).status_code == 503
    assert len(adapter.requests) == 1


def test_a_post_that_never_reached_the_server_or_was_throttled_is_retried(waits):
    session, adapter = scripted_session([refused(), requests.exceptions.ConnectTimeout("no connection"),
                                         (429, None, {"Retry-After": "1"}), (201, {})])
    assert send(session, "POST", URL, timeout_s=5, retry_max_s=60).status_code == 201
    assert len(adapter.requests) == 4


def test_a_post_declared_idempotent_is_retried_like_a_get(waits):
    session, adapter = scripted_session([requests.ReadTimeout("slow"), (503,), (200, {})])
    assert send(session, "POST", URL, timeout_s=5, retry_max_s=60, idempotent=True).status_code == 200
    assert len(adapter.requests) == 3
