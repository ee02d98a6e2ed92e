"""Webhooks v3 of the simulated Identity Cloud tenant: signing keys, Security Event Tokens, delivery.

The SET format is documented in ``sandbox/akamai/__init__.py``. Delivery runs on background threads so the Entity
API answers without waiting for the listener; a delivery that gets a non-2xx answer or no answer at all is
retried on a shortened version of Identity Cloud's schedule (``first_retry_s`` doubling up to
``max_retry_s``) until acknowledged or ``max_attempts`` is spent, after which it stays in the failed list.
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import os
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "Akamai Identity Cloud"
SET_CONTENT_TYPE = "application/secevent+jwt"
EVENT_NAMES = ("entityCreated", "entityUpdated", "entityDeleted")
HISTORY_LIMIT = 20_000  # settled deliveries kept for the admin route; older ones are forgotten


class SigningKeys:
    """The tenant's RS256 keys: one current key that signs, plus the previous one still published in the
    JWKS after a rotation so tokens signed just before it keep verifying."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current = self._new_key()
        self._previous: tuple[str, rsa.RSAPrivateKey] | None = None

    @staticmethod
    def _new_key() -> tuple[str, rsa.RSAPrivateKey]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha1(der).hexdigest(), key  # 40-hex key id, like the tenant's

    @property
    def kid(self) -> str:
        return self._current[0]

    def rotate(self, keep_previous: bool = True) -> str:
        with self._lock:
            self._previous = self._current if keep_previous else None
            self._current = self._new_key()
            return self._current[0]

    def sign(self, claims: dict) -> str:
        kid, key = self._current
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "secevent+jwt"})

    def jwks(self) -> dict:
        keys = []
        for kid, key in [k for k in (self._current, self._previous) if k is not None]:
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}


@dataclass
class DeliveryPolicy:
    first_retry_s: float = 0.5
    max_retry_s: float = 30.0
    max_attempts: int = 12
    timeout_s: float = 5.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> DeliveryPolicy:
        """Overrides from ``SANDBOX_AKAMAI_WEBHOOK_{FIRST_RETRY_S,MAX_RETRY_S,MAX_ATTEMPTS,TIMEOUT_S}``."""
        env = os.environ if environ is None else environ
        policy = cls()
        for name in ("first_retry_s", "max_retry_s", "max_attempts", "timeout_s"):
            raw = env.get(f"SANDBOX_AKAMAI_WEBHOOK_{name.upper()}")
            if raw:
                setattr(policy, name, type(getattr(policy, name))(float(raw)))
        return policy

    def delay_before(self, attempt: int) -> float:
        """Wait before delivery attempt ``attempt`` (2 = first retry)."""
        return min(self.max_retry_s, self.first_retry_s * 2 ** max(0, attempt - 2))


@dataclass
class Delivery:
    jti: str
    event: str
    sub: str
    token: str
    attempts: int = 0
    status: str = "pending"  # pending | delivered | failed
    last_status: int | None = None
    last_error: str | None = None
    created_at: float = field(default_factory=time.time)
    delivered_at: float | None = None

    def summary(self) -> dict[str, Any]:
        return {"jti": self.jti, "event": self.event, "sub": self.sub, "attempts": self.attempts,
                "status": self.status, "last_status": self.last_status, "last_error": self.last_error}


class WebhookSender:
    """Signs one SET per entity change and delivers it to ``url`` from a small pool of worker threads."""

    def __init__(self, keys: SigningKeys, *, url_source, audience_source, application_id: str,
                 client_id: str, capture_host: str, policy: DeliveryPolicy | None = None,
                 verify: Any = True, workers: int = 4) -> None:
        self.keys = keys
        self.policy = policy or DeliveryPolicy.from_env()
        self._url_source = url_source  # callables: the listener URL may be set after the routes are built
        self._audience_source = audience_source
        self._application_id = application_id
        self._client_id = client_id
        self._capture_host = capture_host
        self._verify = verify
        self._workers = workers
        self._queue: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.deliveries: dict[str, Delivery] = {}
        self.counts: dict[str, int] = {"enqueued": 0, "attempts": 0, "delivered": 0, "retried": 0, "failed": 0}

    def url(self) -> str:
        """Where deliveries go right now (empty: nowhere)."""
        return self._url_source() or ""

    def build_claims(self, event: str, type_name: str, entity_uuid: str) -> dict:
        if event not in EVENT_NAMES:
            raise ValueError(f"unknown event {event}")
        now = int(time.time())
        return {
            "iss": ISSUER,
            "aud": self._audience_source(),
            "iat": now,
            "toe": now,
            "jti": str(uuidlib.uuid4()),
            "txn": str(uuidlib.uuid4()),
            "events": {event: {
                "captureApplicationId": self._application_id,
                "captureClientId": self._client_id,
                "entityType": type_name,
                "globalSub": f"capture-v1://{self._capture_host}/{self._application_id}/{type_name}/{entity_uuid}",
                "sub": entity_uuid,
                "id": str(uuidlib.uuid4()),
            }},
        }

    def publish(self, event: str, type_name: str, entity_uuid: str) -> Delivery | None:
        """Queue one SET for delivery; None when no listener URL is configured."""
        if not self.url():
            return None
        claims = self.build_claims(event, type_name, entity_uuid)
        delivery = Delivery(jti=claims["jti"], event=event, sub=entity_uuid, token=self.keys.sign(claims))
        with self._cond:
            self.deliveries[delivery.jti] = delivery
            self.counts["enqueued"] += 1
            self._schedule(delivery, 0.0)
            self._start_workers()
        return delivery

    def _schedule(self, delivery: Delivery, delay: float) -> None:
        heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), delivery))
        self._cond.notify()

    def _start_workers(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self._workers and not self._closed:
            thread = threading.Thread(target=self._work, name="akamai-webhooks", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _next_due(self) -> Delivery | None:
        with self._cond:
            while not self._closed:
                if self._queue:
                    due, _, delivery = self._queue[0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._queue)
                        return delivery
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _work(self) -> None:
        with httpx.Client(verify=self._verify, timeout=self.policy.timeout_s) as http:
            while (delivery := self._next_due()) is not None:
                self._attempt(http, delivery)

    def _attempt(self, http: httpx.Client, delivery: Delivery) -> None:
        url = self.url()
        status, error = None, None
        try:
            response = http.post(url, content=delivery.token,
                                 headers={"Content-Type": SET_CONTENT_TYPE, "Accept": "application/json"})
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        with self._cond:
            delivery.attempts += 1
            delivery.last_status, delivery.last_error = status, error
            self.counts["attempts"] += 1
            if status is not None and 200 <= status < 300:
                delivery.status, delivery.delivered_at = "delivered", time.time()
                self.counts["delivered"] += 1
                self._forget_settled()
            elif delivery.attempts >= self.policy.max_attempts:
                delivery.status = "failed"
                self.counts["failed"] += 1
            elif not self._closed:
                self.counts["retried"] += 1
                self._schedule(delivery, self.policy.delay_before(delivery.attempts + 1))

    def _forget_settled(self) -> None:
        # a long-running sandbox must not grow without bound; pending and failed ones are always kept
        excess = len(self.deliveries) - HISTORY_LIMIT
        if excess <= 0:
            return
        for jti in [j for j, d in self.deliveries.items() if d.status == "delivered"][:excess]:
            del self.deliveries[jti]

    def redeliver_failed(self) -> int:
        """Put every failed delivery back in the queue (Identity Cloud's manual redelivery)."""
        with self._cond:
            failed = [d for d in self.deliveries.values() if d.status == "failed"]
            for delivery in failed:
                delivery.status, delivery.attempts = "pending", 0
                self.counts["failed"] -= 1
                self._schedule(delivery, 0.0)
            if failed:
                self._start_workers()
            return len(failed)

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            pending = sum(1 for d in self.deliveries.values() if d.status == "pending")
            return {
                "url_configured": bool(self.url()),
                "kid": self.keys.kid,
                "policy": {"first_retry_s": self.policy.first_retry_s, "max_retry_s": self.policy.max_retry_s,
                           "max_attempts": self.policy.max_attempts, "timeout_s": self.policy.timeout_s},
                "counts": {**self.counts, "pending": pending},
                "deliveries": [d.summary() for d in self.deliveries.values()],
            }

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """True once nothing is pending (used by tests and the demo to settle)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._cond:
                if not any(d.status == "pending" for d in self.deliveries.values()):
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=self.policy.timeout_s + 1)
