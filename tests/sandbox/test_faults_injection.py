"""Fault injection over real HTTPS: each fault kind happens, is counted, and spares token and admin routes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from sandbox.faults import is_data_path
from tests.fixtures_sandbox import RunningSandbox, launch_sandbox

USER_ID = "00000000-0000-4000-8000-000000000001"
EXT_CONTACT_ID = "extension_b2c0e5a15e1d4c2b9a7f3c1d2e4f5a6b_CrmContactId"


@pytest.fixture(scope="module")
def module_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = launch_sandbox(tmp_path_factory.mktemp("faults"), users=[{"id": USER_ID, "displayName": "One"}])
    yield running
    running.stop()


@pytest.fixture
def box(module_box: RunningSandbox) -> RunningSandbox:
    """The module's sandbox with faults off and zeroed counters."""
    module_box.configure(fault_rate=0.0, fault_kinds=[], latency_ms=0, slow_fault_s=4.0)
    module_box.reset_stats()
    return module_box


@contextmanager
def graph_client(box, timeout: float = 10.0) -> Iterator[httpx.Client]:
    """An authenticated Graph client; the token is fetched before any fault is switched on."""
    env = box.env
    with httpx.Client(verify=box.ssl_context(), timeout=timeout, base_url=env["GRAPH_BASE_URL"]) as client:
        token = client.post(
            f"{env['B2C_AUTHORITY_HOST']}/{env['B2C_TENANT_ID']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": env["B2C_CLIENT_ID"],
                "client_secret": env["B2C_CLIENT_SECRET"],
                "scope": f"{env['GRAPH_BASE_URL']}/.default",
            },
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("429", 429, "TooManyRequests"),
        ("500", 500, "InternalServerError"),
        ("503", 503, "ServiceUnavailable"),
    ],
)
def test_error_faults_answer_in_graph_shape_and_are_counted(box, kind: str, status: int, code: str) -> None:
    with graph_client(box) as client:
        box.configure(fault_rate=1.0, fault_kinds=[kind])
        response = client.get("/v1.0/users")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    if status in (429, 503):
        assert response.headers["Retry-After"] == "1"
    stats = box.stats()
    assert stats["faults"] == {kind: 1}
    assert stats["requests"]["GET /v1.0/users"] == 1  # faulted requests still count under their route


def test_salesforce_routes_get_salesforce_shaped_errors(box) -> None:
    box.configure(fault_rate=1.0, fault_kinds=["429"])
    response = box.client.get(f"{box.url}/services/data/v62.0/query", params={"q": "SELECT Id FROM Contact"})
    assert response.status_code == 429
    assert response.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_slow_fault_outlasts_the_client_timeout_then_answers(box) -> None:
    with graph_client(box) as client:
        box.configure(fault_rate=1.0, fault_kinds=["slow"], slow_fault_s=1.0)
        with pytest.raises(httpx.ReadTimeout):
            client.get("/v1.0/users", timeout=0.4)
        box.configure(fault_rate=0.0)
        assert client.get("/v1.0/users").status_code == 200
    assert box.stats()["faults"] == {"slow": 1}


def test_dropped_connection_is_seen_by_the_client_as_a_broken_response(box) -> None:
    with graph_client(box) as client:
        box.configure(fault_rate=1.0, fault_kinds=["drop"])
        with pytest.raises(httpx.TransportError):
            client.get("/v1.0/users")
    assert box.stats()["faults"] == {"drop": 1}


def test_some_dropped_writes_were_applied_before_the_connection_died(box) -> None:
    applied_but_dropped = 0
    with graph_client(box) as client:
        box.configure(fault_rate=1.0, fault_kinds=["drop"])
        for attempt in range(12):
            with pytest.raises(httpx.TransportError):
                client.patch(f"/v1.0/users/{USER_ID}", json={EXT_CONTACT_ID: f"003-{attempt}"})
            faults = box.stats()["faults"]
            if faults.get("drop_after_write", 0) > applied_but_dropped:
                applied_but_dropped += 1
                user = box.state("b2c")["b2c"]["users"][0]
                assert (
                    user[EXT_CONTACT_ID] == f"003-{attempt}"
                )  # the client saw a failure, the write happened
    faults = box.stats()["faults"]
    assert faults["drop_after_write"] == applied_but_dropped >= 1
    assert faults.get("drop", 0) + applied_but_dropped == 12


def test_token_and_admin_routes_are_never_faulted(box) -> None:
    box.configure(fault_rate=1.0)
    env = box.env
    for _ in range(10):
        token = box.client.post(
            f"{env['B2C_AUTHORITY_HOST']}/{env['B2C_TENANT_ID']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": env["B2C_CLIENT_ID"],
                "client_secret": env["B2C_CLIENT_SECRET"],
                "scope": f"{env['GRAPH_BASE_URL']}/.default",
            },
        )
        assert token.status_code == 200
        discovery = box.client.get(
            f"{env['B2C_AUTHORITY_HOST']}/{env['B2C_TENANT_ID']}/v2.0/.well-known/openid-configuration"
        )
        assert discovery.status_code == 200
    assert box.stats()["faults"] == {}


def test_every_fault_kind_occurs_at_full_rate_with_counts_matching_requests(box) -> None:
    box.configure(fault_rate=1.0, slow_fault_s=0.05)
    with graph_client(box, timeout=5.0) as client:
        for _ in range(40):
            try:
                client.get(f"/v1.0/users/{USER_ID}")
            except httpx.TransportError:
                pass
    faults = box.stats()["faults"]
    assert set(faults) == {"429", "500", "503", "slow", "drop"}
    assert sum(faults.values()) == 40


def test_zero_fault_rate_injects_nothing(box) -> None:
    with graph_client(box) as client:
        assert all(client.get("/v1.0/users").status_code == 200 for _ in range(20))
    assert box.stats()["faults"] == {}


def test_latency_delays_data_calls(box) -> None:
    with graph_client(box) as client:
        box.configure(latency_ms=250)
        started = time.perf_counter()
        assert client.get("/v1.0/users").status_code == 200
        assert time.perf_counter() - started >= 0.25


def test_runtime_config_rejects_unknown_or_invalid_settings(box) -> None:
    for payload in (
        {"fault_rate": 1.5},
        {"latency_ms": -1},
        {"no_such_setting": 1},
        {"fault_kinds": ["boom"]},
    ):
        response = box.client.post(f"{box.url}/__sandbox/config", json=payload)
        assert response.status_code == 400
    assert box.configure(daily_api_limit=5)["daily_api_limit"] == 5


def test_reset_stats_zeroes_every_counter(box) -> None:
    with graph_client(box) as client:
        box.configure(fault_rate=1.0, fault_kinds=["500"])
        client.get("/v1.0/users")
    assert box.reset_stats() == {"requests": {}, "records_returned": {}, "faults": {}, "total_requests": 0}


@pytest.mark.parametrize(
    ("path", "faultable"),
    [
        ("/v1.0/users", True),
        ("/services/data/v62.0/query", True),
        ("/__sandbox/stats", False),
        ("/t/oauth2/v2.0/token", False),
        ("/services/oauth2/token", False),
        ("/t/v2.0/.well-known/openid-configuration", False),
        ("/akamai/webhooks/jwks", False),
    ],
)
def test_only_data_paths_are_faultable(path: str, faultable: bool) -> None:
    assert is_data_path(path) is faultable
