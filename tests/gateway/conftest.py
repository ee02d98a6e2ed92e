"""Gateway fixtures: a temporary inbox, signing keys with a JWKS endpoint, and the app under a test client."""
from __future__ import annotations

import base64
import threading
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.crm_contacts import SignUpIdentity
from gateway.security_events import SetVerifier
from inbox import Inbox
from settings import ConnectorSettings, WebhookSettings
from tests.gateway.support import AUDIENCE, ISSUER, JwksServer, SigningKey

CONNECTOR_USER = "b2c-connector"
CONNECTOR_PASSWORD = "s3cret-connector-password"


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey()


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def jwks(signing_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys = [signing_key.jwk()]
    with server.running():
        yield server


class FakeDirectory:
    """Stands in for the CRM: records lookups, answers with a fixed id, can be slow or failing."""

    def __init__(self) -> None:
        self.calls: list[SignUpIdentity] = []
        self.contact_id = "003000000000001AAA"
        self.delay_s = 0.0
        self.error: Exception | None = None
        self.released = threading.Event()

    def find_or_create(self, identity: SignUpIdentity) -> str | None:
        self.calls.append(identity)
        if self.delay_s:
            self.released.wait(self.delay_s)
        if self.error is not None:
            raise self.error
        return self.contact_id


@pytest.fixture
def directory() -> Iterator[FakeDirectory]:
    fake = FakeDirectory()
    yield fake
    fake.released.set()


def webhook_settings(jwks_url: str, **overrides) -> WebhookSettings:
    values = {"jwks_url": jwks_url, "issuer": ISSUER, "audience": AUDIENCE, "max_age_s": 600.0,
              "clock_skew_s": 5.0, "jwks_min_refresh_s": 0.0, "max_body_bytes": 64 * 1024}
    values.update(overrides)
    return WebhookSettings(**values)


@pytest.fixture
def connector_settings() -> ConnectorSettings:
    return ConnectorSettings(username=CONNECTOR_USER, password=CONNECTOR_PASSWORD, budget_s=0.5)


@pytest.fixture
def client(inbox: Inbox, jwks: JwksServer, connector_settings: ConnectorSettings,
           directory: FakeDirectory) -> Iterator[TestClient]:
    app = create_app(inbox=inbox, verifier=SetVerifier(webhook_settings(jwks.url)),
                     connector=connector_settings, directory=directory)
    with TestClient(app) as test_client:
        yield test_client


def basic_auth(user: str = CONNECTOR_USER, password: str = CONNECTOR_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
