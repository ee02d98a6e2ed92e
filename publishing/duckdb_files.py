"""Publishing to DuckDB files: one file per role, replaced atomically after every linking run.

DuckDB admits one writing process per file and no writer while another process reads, so analysts never open
the warehouse: they open their role's file. Each publication is written to a new file beside the old one and
renamed over it, so

* a reader always sees one complete run (the file it opened, until it reopens);
* a reader never blocks the pipeline: the rename does not care who holds the old file open (its readers keep
  reading the old run until they close it);
* a crash mid-publication leaves the previous file in place (the half-written one is removed next time).

Every table carries ``published_run_id`` and ``published_at``; each schema has a ``publication`` table naming
the run, the time and each table's row count. A schema's published views (``links.link_evidence``, recorded by
dbt in ``publishing.views``) are created over its tables, not copied. Each schema is computed and written once
per publication (a role holding another's schemas starts from a copy of its file), roles sharing nothing are
written side by side, and every file is complete before any is swapped in.

Nearly all of a publication's time is DuckDB compressing the identifier strings it writes (about 0.5 CPU-µs
each; 2.6 M rows in the analyst file at 1M): see bench/publish.py and the README for the figures.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from publishing.roles import PUBLISHED_VIEWS_REGISTRY, Role, view_schema

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


def _published_views(con: duckdb.DuckDBPyConnection, schema: str) -> list[tuple[str, str]]:
    """(name, SQL) of the views a published schema holds over its own tables, as dbt recorded them."""
    registry_schema, registry = PUBLISHED_VIEWS_REGISTRY
    if registry not in _relations(con, registry_schema):
        return []  # built before any published view existed
    return con.execute(f"select name, definition from {_identifier(registry_schema)}.{_identifier(registry)} "
                       "where published_schema = ? order by name", [schema]).fetchall()


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


@dataclass
class _RoleFile:
    """One role's file being written: in a private folder beside its target (same file system, so the rename is
    atomic; neither the new file nor DuckDB's write-ahead log is ever readable by anyone but this account)."""

    role: Role
    path: Path
    workdir: Path
    base: _RoleFile | None = None  # an earlier role file holding a subset of this role's schemas: copied, not redone
    tables: dict[str, int] | None = None
    seconds: float = 0.0

    @property
    def partial(self) -> Path:
        return self.workdir / self.path.name

    @property
    def alias(self) -> str:
        return f"published_{self.role.name}"


def _plan(targets: Mapping[Role, Path]) -> list[list[_RoleFile]]:
    """Each role's file, in chains written one after another (chains run side by side): a role whose schemas
    include another role's starts from a copy of that role's file, so every schema is computed and compressed
    once per publication (the steward's ``links`` is the analyst's file, copied)."""
    files: list[_RoleFile] = []
    for role, path in sorted(targets.items(), key=lambda item: len(item[0].schemas)):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_partials(path)
        workdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=_PARTIAL_SUFFIX, dir=path.parent))
        bases = [f for f in files if set(f.role.schemas) <= set(role.schemas)]
        files.append(_RoleFile(role, path, workdir, max(bases, key=lambda f: len(f.role.schemas), default=None)))
    chains: list[list[_RoleFile]] = []
    for file in files:
        chain = next((c for c in chains if any(f is file.base for f in c)), None)
        if chain is None:
            chains.append([file])
        else:
            chain.append(file)
    return chains


def _session(con: duckdb.DuckDBPyConnection, warehouse: str, salt: str) -> None:
    """A cursor reads the warehouse's views as dbt created them, with the salt their keyed hashes read."""
    con.execute(f"use {_identifier(warehouse)}")
    con.execute(f"set variable {SALT_VARIABLE} = ?", [salt])


def _write(con: duckdb.DuckDBPyConnection, file: _RoleFile, relations: Mapping[str, list[str]],
           views: Mapping[str, list[tuple[str, str]]], run_id: str, published_at: datetime) -> None:
    """The role's schemas into its new (private) file, each schema's tables then the views over them; row counts
    are what each insert reports, not a second scan."""
    started = time.perf_counter()
    tables = dict(file.base.tables) if file.base else {}
    if file.base:
        shutil.copyfile(file.base.partial, file.partial)
    stamp = f"{_literal(run_id)} as published_run_id, {_literal(published_at.isoformat(sep=' '))}::timestamp " \
            "as published_at"
    database = _identifier(file.alias)
    con.execute(f"attach {_literal(str(file.partial))} as {database}")
    try:
        for schema in file.role.schemas:
            if file.base and schema in file.base.role.schemas:
                continue
            target = f"{database}.{_identifier(schema)}"
            con.execute(f"create schema {target}")
            for name in relations[schema]:
                (tables[f"{schema}.{name}"],) = con.execute(
                    f"create table {target}.{_identifier(name)} as "
                    f"select *, {stamp} from {_identifier(view_schema(schema))}.{_identifier(name)}").fetchone()
            for name, definition in views[schema]:  # its SQL names the schema's tables: bound in this file
                try:
                    con.execute(f"create view {target}.{_identifier(name)} as {definition}")
                except duckdb.Error as exc:
                    raise PublishError(f"the published view {schema}.{name} could not be created: {exc}") from exc
            con.execute(f"create table {target}.publication (relation varchar, row_count bigint, "
                        "published_run_id varchar, published_at timestamp)")
            con.executemany(f"insert into {target}.publication values (?, ?, ?, ?)",
                            [(name, tables[f"{schema}.{name}"], run_id, published_at) for name in relations[schema]])
    finally:
        con.execute(f"detach {database}")  # checkpoints: the file is complete without its write-ahead log
    file.partial.chmod(_PERSONAL_FILE_MODE if file.role.holds_personal_data else _SHARED_FILE_MODE)
    _fsync(file.partial)
    file.tables = tables
    file.seconds = time.perf_counter() - started


def publish_files(warehouse_path: str | os.PathLike, targets: Mapping[Role, Path], run_id: str,
                  salt: str | None = None, *, published_at: datetime | None = None) -> list[Publication]:
    """Copy each role's schemas from the warehouse's ``<schema>_views`` into the role's file and swap it in.

    ``salt`` keys the hashes analysts join on; without one, a random salt is drawn for this publication (keys
    then join within one publication only). The warehouse is opened read-only and only for this call. Every
    file is written before any is swapped in, so a failed publication replaces none."""
    started = time.perf_counter()
    published_at = published_at or datetime.now(UTC).replace(tzinfo=None)
    salt = salt or secrets.token_hex(16)
    warehouse = Path(warehouse_path)
    # a one-shot bulk copy: rows need not keep the views' order, which lets DuckDB insert with all its threads
    with duckdb.connect(config={"preserve_insertion_order": False}) as con:
        # the warehouse attached read-only under its own name (the name dbt's views were created in), the new
        # files beside it read-write: an in-memory connection can hold them all
        con.execute(f"attach {_literal(str(warehouse))} as {_identifier(warehouse.stem)} (read_only)")
        _session(con, warehouse.stem, salt)
        schemas = dict.fromkeys(schema for role in targets for schema in role.schemas)
        relations = {schema: _relations(con, view_schema(schema)) for schema in schemas}
        views = {schema: _published_views(con, schema) for schema in schemas}
        for schema, names in relations.items():
            if not names:
                raise PublishError(f"schema {view_schema(schema)} has no views: build the dbt project first")
        chains = _plan(targets)
        try:
            def write_chain(chain: list[_RoleFile]) -> None:
                with con.cursor() as cursor:
                    _session(cursor, warehouse.stem, salt)
                    for file in chain:
                        _write(cursor, file, relations, views, run_id, published_at)

            # roles that share nothing are written side by side (one DuckDB instance, a cursor each)
            with ThreadPoolExecutor(max_workers=len(chains)) as pool:
                for done in [pool.submit(write_chain, chain) for chain in chains]:
                    done.result()
            files = {file.role: file for chain in chains for file in chain}
            for file in files.values():
                os.replace(file.partial, file.path)
                _fsync(file.path.parent)
        finally:
            for chain in chains:
                for file in chain:
                    shutil.rmtree(file.workdir, ignore_errors=True)
    results = [Publication(role.name, files[role].path, run_id, published_at, files[role].tables,
                           round(files[role].seconds, 3)) for role in targets]
    for publication in results:
        log.info("published %s database (%d tables) in %.2f s", publication.role, len(publication.tables),
                 publication.seconds)
    log.info("publication of %d databases took %.2f s", len(results), time.perf_counter() - started)
    return results
