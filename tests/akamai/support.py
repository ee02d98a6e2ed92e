"""Test support for the Akamai tests: synthetic entities, a threaded HTTP server and a webhook receiver."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import uvicorn
from faker import Faker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route


def fake_entities(n: int, seed: int = 11) -> list[dict]:
    """Users in Identity Cloud's shape, like the sandbox's synthetic generator produces."""
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    users = []
    for i in range(n):
        users.append({
            "uuid": fake.uuid4(),
            "email": f"user{i}.{fake.user_name()}@example.org",
            "emailVerified": "2024-01-02 03:04:05.000000 +0000",
            "givenName": fake.first_name(),
            "familyName": fake.last_name(),
            "mobileNumber": f"07700 900{i % 1000:03d}",
            "primaryAddress": {"address1": fake.street_address(), "city": fake.city(),
                               "zip": fake.postcode(), "country": "GB"},
            "created": "2024-01-01 00:00:00.000000 +0000",
            "lastUpdated": "2024-01-01 00:00:00.000000 +0000",
            "consents": {"crmSync": {"granted": i % 2 == 0}},
        })
    return users


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(routes: list[BaseRoute], middleware: Sequence[Middleware] = ()) -> Iterator[str]:
    """Serve ``routes`` over plain HTTP on a free loopback port in a thread; yields the base URL."""
    port = free_port()
    app = Starlette(routes=routes, middleware=list(middleware))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@dataclass
class WebhookReceiver:
    """Records every SET posted to it; answers with the statuses in ``script`` first, then 202."""

    url: str = ""  # set once served
    delay_s: float = 0.0  # how long each answer takes
    script: list[int] = field(default_factory=list)
    received: list[tuple[str, str, int]] = field(default_factory=list)  # (content type, token, answer)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def endpoint(self, request: Request) -> Response:
        token = (await request.body()).decode()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        with self.lock:
            status = self.script.pop(0) if self.script else 202
            self.received.append((request.headers.get("content-type", ""), token, status))
        return Response(status_code=status)

    def routes(self) -> list[BaseRoute]:
        return [Route("/webhooks/akamai", self.endpoint, methods=["POST"])]

    def acknowledged(self) -> list[str]:
        with self.lock:
            return [token for _, token, status in self.received if 200 <= status < 300]

    def wait_for(self, predicate: Callable[[WebhookReceiver], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError("webhook receiver did not see the expected deliveries in time")
            time.sleep(0.02)


def make_warehouse(path: str, rows: list[tuple]) -> None:
    """A warehouse holding only marts.external_ids_to_push with ``(system, target, attribute, value)`` rows."""
    with duckdb.connect(path) as con:
        con.execute("create schema marts")
        con.execute("""create table marts.external_ids_to_push (target_system varchar, target_id varchar,
            attribute varchar, value varchar, reason varchar, identity_provider varchar, identity_id varchar,
            crm varchar, contact_id varchar, client_id varchar)""")
        con.executemany("insert into marts.external_ids_to_push values (?, ?, ?, ?, ?, ?, ?, ?, ?, null)",
                        [(system, target, attr, value, "link" if value else "withdrawn", system, target,
                          "salesforce", value) for system, target, attr, value in rows])
