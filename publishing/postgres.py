"""Publishing on Postgres: each published schema's tables refilled from the warehouse's views in one
transaction, and granted to the roles of the matrix.

The marts stay the pipeline's own: readers of a live table would hold locks that make dbt's table swap wait. A
publication deletes and re-inserts the rows of each published table (``links.identity_contact_links`` from
``links_views.identity_contact_links``) in one transaction, which takes no lock a reader holds: a reader never
makes it wait, and every reader's snapshot, a whole repeatable-read transaction included, sees one complete run
(the one before the commit, or this one). Only a table whose columns changed (a new release) is dropped and
created again, waiting at most ``lock_timeout`` for its readers (else the publication fails and the next one
retries); the same holds for a published view over the schema's tables (links.link_evidence), created again only
when its definition changed. Nothing but the matrix is granted: a role reads its schemas and nothing more.

Roles are created without login when missing (the publishing account needs CREATEROLE, or create them once
yourself); people log in as their own users, made members of a role (``GRANT idlink_analyst TO alice``).
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from psycopg2 import errors, sql

from publishing.duckdb_files import Publication, PublishError
from publishing.roles import PUBLISHED_VIEWS_REGISTRY, ROLES, published_schemas, view_schema

log = logging.getLogger(__name__)

SALT_SETTING = "idlink.hash_salt"  # read by the views' keyed_hash (dbt macro keyed_hash)


def _relations(cur: Any, schema: str, kind: str | None = None) -> list[str]:
    """Tables and views of a schema (only those of ``kind``, 'BASE TABLE' or 'VIEW', when given)."""
    cur.execute("select table_name from information_schema.tables where table_schema = %s "
                "and table_type = coalesce(%s, table_type) order by table_name", [schema, kind])
    return [name for (name,) in cur.fetchall()]


def _published_views(cur: Any, schema: str) -> list[tuple[str, str]]:
    """(name, SQL) of the views a published schema holds over its own tables, as dbt recorded them."""
    registry_schema, registry = PUBLISHED_VIEWS_REGISTRY
    if registry not in _relations(cur, registry_schema):
        return []  # built before any published view existed
    cur.execute(sql.SQL("select name, definition from {} where published_schema = %s order by name").format(
        sql.Identifier(registry_schema, registry)), [schema])
    return cur.fetchall()


def _columns(cur: Any, schema: str, name: str) -> list[tuple[str, str]]:
    cur.execute("select column_name, data_type from information_schema.columns where table_schema = %s "
                "and table_name = %s order by ordinal_position", [schema, name])
    return cur.fetchall()


def _ensure_roles(cur: Any) -> None:
    for role in ROLES:
        cur.execute("select 1 from pg_roles where rolname = %s", [role.database_role])
        if cur.fetchone() is None:
            cur.execute(sql.SQL("create role {} nologin").format(sql.Identifier(role.database_role)))


def _refill(cur: Any, schema: str, source: str, name: str, run_id: str, published_at: datetime) -> int:
    """This run's rows in ``schema.name``; the table is (re)created only when missing or its columns changed."""
    table, view = sql.Identifier(schema, name), sql.Identifier(source, name)
    select = sql.SQL("select *, %s::text as published_run_id, %s::timestamp as published_at from {}").format(view)
    wanted = [*_columns(cur, source, name), ("published_run_id", "text"),
              ("published_at", "timestamp without time zone")]
    present = _columns(cur, schema, name)
    if present and present != wanted:
        # waits at most lock_timeout for its readers; the views over it go too and are created again
        cur.execute(sql.SQL("drop table {} cascade").format(table))
        present = []
    if not present:
        cur.execute(sql.SQL("create table {} as ").format(table) + select, [run_id, published_at])
    else:
        cur.execute(sql.SQL("delete from {}").format(table))
        cur.execute(sql.SQL("insert into {} ").format(table) + select, [run_id, published_at])
    return cur.rowcount


def _define_view(cur: Any, schema: str, name: str, definition: str) -> None:
    """The published view ``schema.name`` as ``definition``; left alone while its definition is unchanged (its
    comment names the definition's digest), so its readers never make a publication wait."""
    view = sql.Identifier(schema, name)
    marker = "idlink definition " + hashlib.sha256(definition.encode()).hexdigest()
    cur.execute("select obj_description(to_regclass(format('%%I.%%I', %s::text, %s::text)), 'pg_class')",
                [schema, name])
    if cur.fetchone()[0] == marker:
        return
    cur.execute(sql.SQL("drop view if exists {}").format(view))  # a new release: waits at most lock_timeout
    cur.execute(sql.SQL("create view {} as ").format(view) + sql.SQL(definition))
    cur.execute(sql.SQL("comment on view {} is {}").format(view, sql.Literal(marker)))


def publish_schemas(conn: Any, run_id: str, salt: str | None = None, *, published_at: datetime | None = None,
                    lock_timeout_s: float = 2.0) -> list[Publication]:
    """Publish every schema of the matrix on ``conn`` (psycopg2, the account that owns the warehouse) in one
    transaction and grant each to its roles. Returns one ``Publication`` per role (``path`` None: the schemas
    are on the server)."""
    published_at = published_at or datetime.now(UTC).replace(tzinfo=None)
    started = time.perf_counter()
    tables: dict[str, int] = {}
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select set_config(%s, %s, true)", [SALT_SETTING, salt or secrets.token_hex(16)])
            cur.execute("select set_config('lock_timeout', %s, true)", [f"{int(lock_timeout_s * 1000)}ms"])
            _ensure_roles(cur)
            for schema in published_schemas():
                source = view_schema(schema)
                relations = _relations(cur, source)
                if not relations:
                    raise PublishError(f"schema {source} has no views: build the dbt project first")
                live = sql.Identifier(schema)
                cur.execute(sql.SQL("create schema if not exists {}").format(live))
                for name in relations:
                    tables[f"{schema}.{name}"] = _refill(cur, schema, source, name, run_id, published_at)
                views = _published_views(cur, schema)
                for gone in set(_relations(cur, schema, "VIEW")) - {name for name, _ in views}:
                    cur.execute(sql.SQL("drop view {}").format(sql.Identifier(schema, gone)))
                for name, definition in views:
                    _define_view(cur, schema, name, definition)
                for gone in set(_relations(cur, schema, "BASE TABLE")) - {*relations, "publication"}:
                    cur.execute(sql.SQL("drop table {} cascade").format(sql.Identifier(schema, gone)))
                cur.execute(sql.SQL("create table if not exists {}.publication (relation text, row_count bigint, "
                                    "published_run_id text, published_at timestamp)").format(live))
                cur.execute(sql.SQL("delete from {}.publication").format(live))
                cur.executemany(sql.SQL("insert into {}.publication values (%s, %s, %s, %s)").format(live),
                                [(name, tables[f"{schema}.{name}"], run_id, published_at) for name in relations])
                cur.execute(sql.SQL("revoke all on schema {} from public").format(live))
                for role in ROLES:
                    grantee = sql.Identifier(role.database_role)
                    if schema in role.schemas:
                        cur.execute(sql.SQL("grant usage on schema {} to {}").format(live, grantee))
                        cur.execute(sql.SQL("grant select on all tables in schema {} to {}").format(live, grantee))
    except errors.LockNotAvailable as exc:
        raise PublishError("a published table whose columns changed is still being read: the next publication "
                           "replaces it") from exc
    seconds = round(time.perf_counter() - started, 3)
    log.info("published schemas %s in %.2f s", ", ".join(published_schemas()), seconds)
    return [Publication(role.name, None, run_id, published_at,
                        {name: rows for name, rows in tables.items() if name.split(".")[0] in role.schemas},
                        seconds) for role in ROLES]
