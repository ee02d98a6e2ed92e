"""The warehouse as privacy sees it: which tables hold records of which system, and making deleted rows leave
its storage: the DuckDB file is rewritten (DuckDB keeps the blocks of deleted rows and dropped tables until it
reuses them); on Postgres the tables are rewritten by VACUUM FULL (a plain DELETE leaves the old row versions in
the table's pages until vacuumed)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb

from warehouse import Connection, Warehouse

RAW_PREFIX = "raw_"  # raw_<system>: every table of such a schema holds records of that system
DLT_STAGING_SUFFIX = "_staging"  # dlt's merge loads keep the last rows loaded in raw_<system>_staging


def raw_tables(con: Connection) -> list[tuple[str, str, str, str]]:
    """(system, schema, table, key column) of every raw table: each table of a ``raw_<system>`` schema, keyed
    by ``id`` (records) or ``record_key`` (quarantine); dlt's own tables hold no records."""
    rows = con.execute(f"""
        select table_schema, table_name, column_name from information_schema.columns
        where table_schema like '{RAW_PREFIX}%' and table_name not like '\\_dlt\\_%' escape '\\'
            and column_name in ('id', 'record_key')
        order by table_schema, table_name, column_name""")
    found: dict[tuple[str, str], str] = {}
    for schema, table, column in rows:
        found.setdefault((schema, table), column)  # 'id' sorts before 'record_key'
    return [(_system(schema), schema, table, column) for (schema, table), column in found.items()]


def _system(schema: str) -> str:
    """raw_b2c -> b2c; dlt's merge staging copy raw_b2c_staging (the last rows loaded) -> b2c as well."""
    return schema[len(RAW_PREFIX):].removesuffix(DLT_STAGING_SUFFIX)


def rewrite_warehouse(path: Path, then_sql: str | None = None, params: Sequence = ()) -> None:
    """Copy the warehouse into a fresh file, which holds only live data (DuckDB keeps the blocks of deleted rows
    and dropped tables in a file until it reuses them), run ``then_sql`` in the copy, and swap it in."""
    fresh = path.with_name(f".{path.name}.compacting")
    fresh.unlink(missing_ok=True)
    try:
        with duckdb.connect() as con:
            con.execute("attach ? as erased_from (read_only)", [str(path)])
            con.execute("attach ? as compacted", [str(fresh)])
            con.execute("copy from database erased_from to compacted")
            if then_sql:
                con.execute("use compacted")
                con.execute(then_sql, list(params))
            con.execute("use memory")
            con.execute("detach erased_from")
            con.execute("detach compacted")
        fd = os.open(fresh, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(fresh, path)
        path.with_name(path.name + ".wal").unlink(missing_ok=True)
    finally:
        fresh.unlink(missing_ok=True)


def rewrite_storage(warehouse: Warehouse, then_sql: str | None = None, params: Sequence = ()) -> None:
    """Make deleted rows leave the warehouse's storage, then run ``then_sql``: the DuckDB file rewritten
    (``rewrite_warehouse``), or on Postgres every table that can hold personal data (raw tables, snapshots, the
    reverse-ETL state) rewritten by VACUUM FULL."""
    if not warehouse.url:
        rewrite_warehouse(warehouse.path, then_sql, params)
        return
    with warehouse.connect() as con:
        tables = {(schema, table) for _, schema, table, _ in raw_tables(con)}
        tables |= {(schema, table) for schema, table in con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' "
            "and table_schema in ('snapshots', 'reverse_etl')")}
        for schema, table in sorted(tables):
            con.execute(f'vacuum full "{schema}"."{table}"')  # autocommit: VACUUM runs outside a transaction
        if then_sql:
            con.execute(then_sql, params)
