"""Where the warehouse is, how to connect to it and how a step holds it while it writes."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import duckdb
import filelock
import psycopg2
import psycopg2.errors
import psycopg2.extensions

from settings import Settings
from warehouse.connection import Connection, DuckDBConnection, PostgresConnection

DUCKDB = "duckdb"
POSTGRES = "postgres"
WAIT_LOG_S = 30.0  # how often a step waiting for the warehouse says so
_LOCK_NAMESPACE = "idlink:"


def redacted(url: str) -> str:
    """A libpq URL without its password, fit for logs and metadata."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Warehouse:
    """The DuckDB file at ``path``, or the Postgres database at ``url`` (then ``path``'s folder keeps only local
    working files: dlt's pipeline folders, dbt's artifacts)."""

    path: Path
    url: str | None = field(default=None, repr=False)  # may carry a password

    @classmethod
    def of(cls, location: Warehouse | str | os.PathLike) -> Warehouse:
        """A warehouse as given, or the DuckDB file at a path (scripts and tests pass paths)."""
        if isinstance(location, Warehouse):
            return location
        return cls(Path(location))

    @classmethod
    def from_settings(cls, settings: Settings) -> Warehouse:
        return cls(settings.warehouse_path, settings.warehouse_url)

    @property
    def engine(self) -> str:
        return POSTGRES if self.url else DUCKDB

    @property
    def local_dir(self) -> Path:
        """The folder of this warehouse's local working files (created)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.path.parent

    def __str__(self) -> str:
        return redacted(self.url) if self.url else str(self.path)

    @property
    def key(self) -> str:
        """A short name of this warehouse, the same in every process (for per-warehouse working folders)."""
        identity = redacted(self.url) if self.url else str(self.path.resolve())
        return f"{'postgres' if self.url else self.path.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"

    def exists(self) -> bool:
        """Whether there is anything to read yet (a Postgres server is taken to exist)."""
        return bool(self.url) or self.path.exists()

    def connect(self, read_only: bool = False) -> Connection:
        """A new connection (close it, or use it as a context manager). Read-only connections can write nothing;
        on DuckDB they fail when the file does not exist yet."""
        if self.url:
            conn = psycopg2.connect(self.url, application_name="idlink")
            conn.set_session(readonly=read_only, autocommit=True)
            return PostgresConnection(conn)
        if read_only and not self.path.exists():
            raise FileNotFoundError(f"warehouse {self.path} does not exist yet: run ingest_and_link first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return DuckDBConnection(duckdb.connect(str(self.path), read_only=read_only))

    @contextlib.contextmanager
    def exclusive(self, scope: str, log: logging.Logger | Any | None = None) -> Iterator[None]:
        """Hold the warehouse for writing ``scope`` (``warehouse.scopes``), waiting as long as it takes: the
        holder finishes or dies, which frees it. DuckDB: one inter-process lock beside the file for every scope.
        Postgres: an advisory lock per scope on a connection of its own, released when it closes."""
        if not self.url:
            lock = filelock.FileLock(str(self.local_dir / f"{self.path.name}.step-lock"))
            _wait(lambda: _acquire_file_lock(lock), log)
            try:
                yield
            finally:
                lock.release()
            return
        conn = psycopg2.connect(self.url, application_name=f"idlink {scope}")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("set lock_timeout = %s", [f"{int(WAIT_LOG_S * 1000)}ms"])
                _wait(lambda: _acquire_advisory_lock(cur, scope), log)
            yield
        finally:
            conn.close()

    def dbt_environment(self) -> dict[str, str]:
        """The variables dbt_project/profiles.yml reads to reach this warehouse."""
        if not self.url:
            return {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(self.path)}
        dsn = psycopg2.extensions.parse_dsn(self.url)
        return {"DBT_TARGET": "postgres", "DBT_POSTGRES_HOST": dsn.get("host", "localhost"),
                "DBT_POSTGRES_PORT": str(dsn.get("port", 5432)), "DBT_POSTGRES_USER": dsn.get("user", "postgres"),
                "DBT_POSTGRES_PASSWORD": dsn.get("password", ""), "DBT_POSTGRES_DBNAME": dsn.get("dbname", "idlink")}


def _acquire_file_lock(lock: filelock.FileLock) -> bool:
    try:
        lock.acquire(timeout=WAIT_LOG_S)
    except filelock.Timeout:
        return False
    return True


def _acquire_advisory_lock(cur: Any, scope: str) -> bool:
    try:
        cur.execute("select pg_advisory_lock(hashtextextended(%s, 0))", [_LOCK_NAMESPACE + scope])
    except psycopg2.errors.LockNotAvailable:
        return False
    return True


def _wait(acquire: Any, log: logging.Logger | Any | None) -> None:
    """Call ``acquire`` (which waits up to WAIT_LOG_S) until it succeeds, saying so each time it did not."""
    started = time.monotonic()
    while not acquire():
        if log is not None:
            log.info("waiting for another step to release the warehouse (%.0f s so far)",
                     time.monotonic() - started)
