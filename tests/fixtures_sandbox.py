"""Pytest plugin: API sandboxes running as subprocesses (``python -m sandbox serve``), reached over real HTTPS.

Fixtures
--------
``sandbox`` (session scope)
    One shared sandbox: ``--size 200 --seed 7``, no faults, no latency. Tests must not change its settings or
    depend on exact request counts (other tests use it too); use ``sandbox_factory`` for that.

``sandbox_factory`` (function scope)
    ``start(*, users=None, contacts=None, akamai_users=None, size=None, fault_rate=0.0, latency_ms=0,
    extra_args=(), seeds=None) -> RunningSandbox`` starts a private sandbox; ``users`` / ``contacts`` /
    ``akamai_users`` are lists of native records written to JSONL seed files, ``seeds`` the same for any seed
    target of ``sandbox.seed.SEED_TARGETS`` by its name (``{"scim_users": [...]}``). Every sandbox started is stopped at teardown.

``RunningSandbox``
    ``.url`` (admin base, ``SANDBOX_URL``), ``.env`` (every variable of the env file), ``.ca_bundle``,
    ``.stats()``, ``.state(system=None)``, ``.configure(**settings)`` (``fault_rate``, ``latency_ms``,
    ``daily_api_limit``, ``slow_fault_s``, ``fault_kinds``, ``token_lifetime_s``, ``duplicate_rule``),
    ``.reset_stats()``, ``.apply_env(monkeypatch)`` (sets every env-file variable), ``.client`` (an httpx client
    trusting the sandbox CA), ``.ssl_context()``, ``.stderr()``, ``.stop()``.

``launch_sandbox(workdir, **same keywords as start)``
    The launcher behind both fixtures, for module-scoped sandboxes (reset them between tests with
    ``configure(...)`` and ``reset_stats()``); the caller stops what it launches.

Startup waits for the env file (the sandbox writes it once it listens); a sandbox that exits or does not get
ready within ``SANDBOX_START_TIMEOUT_S`` fails the test with its stderr. Passing records starts in about two
seconds; ``size`` adds synthetic-data generation. Note that ``requests`` lets an ambient ``REQUESTS_CA_BUNDLE``
override a session's ``verify``: clients under test must pass the sandbox CA per request.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sandbox.seed import SEED_TARGETS, write_jsonl

REPO_ROOT = Path(__file__).resolve().parents[1]
SANDBOX_START_TIMEOUT_S = 90.0


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


@dataclass
class RunningSandbox:
    process: subprocess.Popen
    env: dict[str, str]
    workdir: Path
    stderr_path: Path
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.env["SANDBOX_URL"]

    @property
    def ca_bundle(self) -> str:
        return self.env["SANDBOX_CA_BUNDLE"]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_bundle)

    @property
    def client(self) -> httpx.Client:
        """An HTTPS client trusting the sandbox CA (admin calls; tests may use it for raw API calls too)."""
        if self._client is None:
            self._client = httpx.Client(verify=self.ssl_context(), timeout=30.0)
        return self._client

    def _admin(self, method: str, route: str, payload: Any = None, params: dict | None = None) -> Any:
        response = self.client.request(
            method,
            f"{self.url}/__sandbox/{route}",
            params=params,
            content=orjson.dumps(payload) if payload is not None else None,
        )
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def state(self, system: str | None = None) -> dict[str, Any]:
        return self._admin("GET", "state", params={"system": system} if system else None)

    def configure(self, **settings: Any) -> dict[str, Any]:
        return self._admin("POST", "config", settings)

    def reset_stats(self) -> dict[str, Any]:
        return self._admin("POST", "reset-stats")

    def apply_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _die_with_parent() -> None:
    """Runs in the child before exec: on Linux, the sandbox gets SIGTERM if the test process dies abruptly."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def launch_sandbox(
    workdir: Path,
    *,
    users: list[dict] | None = None,
    contacts: list[dict] | None = None,
    akamai_users: list[dict] | None = None,
    size: int | None = None,
    fault_rate: float = 0.0,
    latency_ms: float = 0,
    extra_args: Iterable[str] = (),
    timeout_s: float = SANDBOX_START_TIMEOUT_S,
    seeds: Mapping[str, list[dict]] | None = None,
) -> RunningSandbox:
    """Start ``python -m sandbox serve`` in ``workdir`` and wait until it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    env_file = workdir / "sandbox.env"
    env_file.unlink(missing_ok=True)  # its appearance is the readiness signal: never trust a stale one
    args = [
        sys.executable,
        "-m",
        "sandbox",
        "serve",
        "--port",
        "0",
        "--env-file",
        str(env_file),
        "--state-dir",
        str(workdir / "state"),
        "--fault-rate",
        str(fault_rate),
        "--latency-ms",
        str(latency_ms),
    ]
    records_by_system = {"users": users, "contacts": contacts, "akamai_users": akamai_users, **(seeds or {})}
    for target in SEED_TARGETS:
        records = records_by_system.get(target.system)
        if records is not None:
            args += [target.option, str(write_jsonl(workdir / f"{target.system}.jsonl", records))]
    if size is not None:
        args += ["--size", str(size)]
    args += list(extra_args)
    stderr_path = workdir / "sandbox.stderr"
    child_env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    }
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=child_env,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl, safe between fork and exec
        )
    running = RunningSandbox(process=process, env={}, workdir=workdir, stderr_path=stderr_path)
    deadline = time.monotonic() + timeout_s
    while not env_file.exists():
        if process.poll() is not None:
            raise RuntimeError(
                f"sandbox exited with {process.returncode} before it was ready:\n{running.stderr()}"
            )
        if time.monotonic() > deadline:
            running.stop()
            raise TimeoutError(f"sandbox not ready after {timeout_s:.0f} s:\n{running.stderr()}")
        time.sleep(0.05)
    running.env = read_env_file(env_file)
    return running


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., RunningSandbox]]:
    started: list[RunningSandbox] = []

    def start(
        *,
        users: list[dict] | None = None,
        contacts: list[dict] | None = None,
        akamai_users: list[dict] | None = None,
        size: int | None = None,
        fault_rate: float = 0.0,
        latency_ms: float = 0,
        extra_args: Iterable[str] = (),
        seeds: Mapping[str, list[dict]] | None = None,
    ) -> RunningSandbox:
        running = launch_sandbox(
            tmp_path / f"sandbox-{len(started)}",
            users=users,
            contacts=contacts,
            akamai_users=akamai_users,
            size=size,
            fault_rate=fault_rate,
            latency_ms=latency_ms,
            extra_args=extra_args,
            seeds=seeds,
        )
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = launch_sandbox(tmp_path_factory.mktemp("sandbox-shared"), size=200, extra_args=("--seed", "7"))
    yield running
    running.stop()
