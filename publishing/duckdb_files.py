"""Publishing to DuckDB files: one file per role, replaced atomically after every linking run.

DuckDB admits one writing process per file and no writer while another process reads, so analysts never open
the warehouse: they open their role's file. Each publication is written to a new file beside the old one and
renamed over it, so

* a reader always sees one complete run (the file it opened, until it reopens);
* a reader never blocks the pipeline: the rename does not care who holds the old file open (its readers keep
  reading the old run until they close it);
* a crash mid-publication leaves the previous file in place (the half-written one is removed next time).

Every table carries ``published_run_id`` and ``published_at``; each schema has a ``publication`` table naming
the run, the time and each table's row count.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from publishing.roles import Role, view_schema

log = logging.getLogger(__name__)

SALT_VARIABLE = "idlink_hash_salt"  # read by the views' keyed_hash (dbt macro keyed_hash)
_PARTIAL_SUFFIX = ".publishing"
# a file with personal fields in clear is readable by its owner (the pipeline's account) only; the others get the
# usual read access, narrowed where needed by the permissions of the folder they are published to
_PERSONAL_FILE_MODE = 0o600
_SHARED_FILE_MODE = 0o644


@dataclass(frozen=True)
class Publication:
    """One role's published database: where, which run, and the row count of each ``schema.table``."""

    role: str
    path: Path | None  # None on Postgres (schemas on the server)
    run_id: str
    published_at: datetime
    tables: dict[str, int]
    seconds: float


class PublishError(RuntimeError):
    """The warehouse has nothing to publish yet (no views built), or a view could not be copied."""


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relations(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """Tables and views dbt built in a warehouse schema (a new view is published without any change here)."""
    return [name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_catalog = current_database() "
        "and table_schema = ? order by table_name", [schema]).fetchall()]


def _remove_partials(path: Path) -> None:
    """What a crashed publication left beside ``path``."""
    for leftover in path.parent.glob(f".{path.name}.*{_PARTIAL_SUFFIX}"):
        shutil.rmtree(leftover, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(con: duckdb.DuckDBPyConnection, role: Role, partial: Path, run_id: str,
           published_at: datetime) -> dict[str, int]:
    stamp = f"{_literal(run_id)} as published_run_id, {_literal(published_at.isoformat(sep=' '))}::timestamp " \
            "as published_at"
    tables: dict[str, int] = {}
    con.execute(f"attach {_literal(str(partial))} as published")
    try:
        for schema in role.schemas:
            source = view_schema(schema)
            relations = _relations(con, source)
            if not relations:
                raise PublishError(f"schema {source} has no views: build the dbt project first")
            con.execute(f'create schema published."{schema}"')
            for name in relations:
                con.execute(f'create table published."{schema}"."{name}" as '
                            f'select *, {stamp} from "{source}"."{name}"')
                tables[f"{schema}.{name}"] = con.execute(
                    f'select count(*) from published."{schema}"."{name}"').fetchone()[0]
            counts = [(name, tables[f"{schema}.{name}"]) for name in relations]
            con.execute(f'create table published."{schema}".publication (relation varchar, row_count bigint, '
                        'published_run_id varchar, published_at timestamp)')
            con.executemany(f'insert into published."{schema}".publication values (?, ?, ?, ?)',
                            [(name, rows, run_id, published_at) for name, rows in counts])
    finally:
        con.execute("detach published")
    return tables


def publish_files(warehouse_path: str | os.PathLike, targets: Mapping[Role, Path], run_id: str,
                  salt: str | None = None, *, published_at: datetime | None = None) -> list[Publication]:
    """Copy each role's schemas from the warehouse's ``<schema>_views`` into the role's file and swap it in.

    ``salt`` keys the hashes analysts join on; without one, a random salt is drawn for this publication (keys
    then join within one publication only). The warehouse is opened read-only and only for this call."""
    published_at = published_at or datetime.now(UTC).replace(tzinfo=None)
    salt = salt or secrets.token_hex(16)
    results = []
    with duckdb.connect() as con:
        # the warehouse attached read-only under its own name (the name dbt's views were created in), the new
        # files beside it read-write: an in-memory connection can hold both
        warehouse = Path(warehouse_path)
        con.execute(f"attach {_literal(str(warehouse))} as {_identifier(warehouse.stem)} (read_only)")
        con.execute(f"use {_identifier(warehouse.stem)}")
        con.execute(f"set variable {SALT_VARIABLE} = ?", [salt])
        for role, path in targets.items():
            started = time.perf_counter()
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            _remove_partials(path)
            # written in a private folder beside the file (same file system, so the rename is atomic): neither
            # the new file nor DuckDB's write-ahead log is ever readable by anyone but this account
            workdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=_PARTIAL_SUFFIX, dir=path.parent))
            try:
                partial = workdir / path.name
                tables = _write(con, role, partial, run_id, published_at)
                partial.chmod(_PERSONAL_FILE_MODE if role.holds_personal_data else _SHARED_FILE_MODE)
                _fsync(partial)
                os.replace(partial, path)
                _fsync(path.parent)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            results.append(Publication(role.name, path, run_id, published_at, tables,
                                       round(time.perf_counter() - started, 3)))
            log.info("published %s database (%d tables) in %.2f s", role.name, len(tables), results[-1].seconds)
    return results
