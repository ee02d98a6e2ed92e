"""Test support for the gateway: RSA signing keys, Security Event Tokens and a JWKS server on loopback."""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "Akamai Identity Cloud"
AUDIENCE = "https://gateway.test/webhooks/akamai"


class SigningKey:
    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or uuid.uuid4().hex
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        return {**RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True),
                "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, claims: dict, kid: str | None = None, alg: str = "RS256") -> str:
        return jwt.encode(claims, self.private, algorithm=alg,
                          headers={"kid": kid or self.kid, "typ": "secevent+jwt"})


def set_claims(event: str = "entityCreated", sub: str | None = None, **overrides) -> dict:
    """Claims shaped like Identity Cloud's Webhooks v3: the subject inside the one event object."""
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "iat": now, "toe": now, "jti": str(uuid.uuid4()),
        "txn": str(uuid.uuid4()),
        "events": {event: {"entityType": "user", "sub": sub or str(uuid.uuid4()), "id": str(uuid.uuid4())}},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


class JwksServer:
    """Publishes a mutable key set over HTTP and counts how often it is fetched."""

    def __init__(self) -> None:
        self.keys: list[dict] = []
        self.fetches = 0
        self.fail = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                if server.fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks"

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
