"""A real Postgres server for tests: `postgres_url` gives each test module its own fresh database.

`IDLINK_TEST_POSTGRES_URL` (a superuser libpq URL) points the tests at an existing server; otherwise a
throwaway cluster is created with `initdb` in a temporary folder and stopped at the end of the session.
Postgres refuses to run as root, so as root the cluster runs as the `postgres` user.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"Postgres server binary '{name}' not found: install the postgresql package")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class TemporaryCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="idlink-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    def start(self) -> str:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres_user([_pg_bin("initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
                               "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8"]),
            check=True, capture_output=True,
        )
        subprocess.run(
            _as_postgres_user([_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w",
                               "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                               "start"]),
            check=True, capture_output=True,
        )
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(_as_postgres_user([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                       capture_output=True, check=False)  # already stopped is fine
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server_url():
    """Superuser URL of the session's Postgres server (its `postgres` database)."""
    configured = os.environ.get("IDLINK_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    cluster = TemporaryCluster()
    try:
        url = cluster.start()
    except subprocess.CalledProcessError as exc:
        cluster.stop()
        raise RuntimeError(f"could not start a temporary Postgres cluster: {exc.stderr.decode(errors='replace')}")
    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg2.connect(url).close()
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    yield url
    cluster.stop()


@pytest.fixture(scope="module")
def postgres_url(postgres_server_url):
    """URL of a fresh, empty database on the real Postgres server, dropped after the module."""
    name = f"idlink_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(postgres_server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_server_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()
