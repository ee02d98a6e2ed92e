"""Shared state of one sandbox process: the records of every simulated system, request statistics and settings.

Every simulated system is a module exposing ``routes(ctx) -> list[BaseRoute]``; it keeps its records in
``ctx.state[<system>]`` (native API shapes, so ``/__sandbox/state`` can dump them as they are).
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_log = logging.getLogger("sandbox")


@dataclass
class SandboxConfig:
    base_url: str = ""  # https://127.0.0.1:<port>, known once the socket is bound
    tenant_id: str = "idlinksandbox.onmicrosoft.com"
    extensions_app_id: str = "b2c0e5a1-5e1d-4c2b-9a7f-3c1d2e4f5a6b"
    client_id: str = "idlink-sandbox-client"
    client_secret: str = "sandbox-secret"
    fault_rate: float = 0.0
    latency_ms: float = 0.0
    slow_fault_s: float = (
        4.0  # a "slow" fault answers after this long: past the client timeout the env-file sets
    )
    client_timeout_s: float = 3.0
    daily_api_limit: int = 0  # Salesforce API requests a day; 0 = unlimited
    seed: int = 7
    webhook_url: str = ""  # Akamai webhook listener to deliver SETs to (empty = no delivery)
    duplicate_rule: str = "off"  # Salesforce duplicate rule on Contact email: "off" | "block"
    token_lifetime_s: int = 3600  # lifetime of issued access tokens
    fault_kinds: tuple[str, ...] = ()  # restrict injected faults to these kinds (empty = every kind)
    dynamics_share: float = 0.3  # synthetic people who also have a Dynamics contact (see sandbox.synthetic)
    noise_profile: str = "default"  # how hard the synthetic people are to link (sandbox.synthetic.profiles)
    scim_filter_supported: bool = True  # the SCIM directory announces (and honours) filtering
    # Dataverse service protection (per user; the Web API's defaults) and how long it works on each request
    dataverse_max_concurrent: int = 52
    dataverse_requests_per_window: int = 6000
    dataverse_window_s: float = 300.0
    dataverse_execution_ms: float = 0.0


@dataclass
class SandboxContext:
    config: SandboxConfig
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests_by_route: Counter = field(default_factory=Counter)
    records_by_route: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # hooks run after a record changes: (system, event, record) — the Akamai webhook emitter subscribes here
    listeners: list[Callable[[str, str, dict], None]] = field(default_factory=list)
    # module-private runtime objects (indexes, signing keys); unlike ``state`` never dumped by the admin routes
    runtime: dict[str, Any] = field(default_factory=dict)

    def count_records(self, route: str, n: int) -> None:
        """Record how many records a data route returned (lets tests prove incremental loads fetch little)."""
        with self.lock:
            self.records_by_route[route] += n

    def emit(self, system: str, event: str, record: dict) -> None:
        """Tell listeners a record changed; a failing listener is logged (ids only) and never fails the API call."""
        for listener in list(self.listeners):
            try:
                listener(system, event, record)
            except Exception as exc:  # noqa: BLE001 - another system's hook must not fail this API call
                # type only: exception messages may quote record fields
                _log.error(
                    "listener failed on %s %s of record %s: %s",
                    system,
                    event,
                    record.get("id"),
                    type(exc).__name__,
                )

    def reset_stats(self) -> None:
        with self.lock:
            self.requests_by_route.clear()
            self.records_by_route.clear()
            self.faults.clear()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.requests_by_route),
                "records_returned": dict(self.records_by_route),
                "faults": dict(self.faults),
                "total_requests": sum(self.requests_by_route.values()),
            }


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a bulk load.

    Seeding allocates millions of small dicts that never form cycles; with the collector on, every few
    thousand allocations trigger a collection and the oldest generation is rescanned again and again, which
    costs more than the loading itself. Nesting is fine: only the outermost pause turns the collector back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
