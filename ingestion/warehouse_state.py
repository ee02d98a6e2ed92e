"""Read-only look at what an earlier load left in the warehouse: content hashes and last known rows.

Connections are opened read-only and closed before dlt loads, because DuckDB allows one writer per file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import duckdb
import pyarrow as pa


def _table_exists(con: duckdb.DuckDBPyConnection, dataset: str, table: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [dataset, table],
    ).fetchall()
    return bool(found and found[0][0])


def known_hashes(warehouse_path: str, dataset: str, table: str) -> dict[str, str | None]:
    """``id -> content_hash`` of every row already loaded; deleted rows map to None (so they never match)."""
    if not os.path.exists(warehouse_path):
        return {}
    con = duckdb.connect(warehouse_path, read_only=True)
    try:
        if not _table_exists(con, dataset, table):
            return {}
        result = con.sql(
            f"select id, case when coalesce(is_deleted, false) then null else content_hash end "
            f'from "{dataset}"."{table}"'
        ).to_arrow_table()
    finally:
        con.close()
    return dict(zip(result.column(0).to_pylist(), result.column(1).to_pylist()))


def previous_rows(
    warehouse_path: str, dataset: str, table: str, ids: Sequence[str], schema: pa.Schema
) -> pa.Table:
    """The last loaded rows of ``ids`` in the columns of ``schema`` (so tombstones keep what was known)."""
    empty = schema.empty_table()
    if not ids or not os.path.exists(warehouse_path):
        return empty
    con = duckdb.connect(warehouse_path, read_only=True)
    try:
        if not _table_exists(con, dataset, table):
            return empty
        present = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                [dataset, table],
            ).fetchall()
        }
        select = ", ".join(f'"{f.name}"' if f.name in present else f'null as "{f.name}"' for f in schema)
        con.register("wanted_ids", pa.table({"id": pa.array(list(ids), pa.string())}))
        result = con.sql(
            f'select {select} from "{dataset}"."{table}" where id in (select id from wanted_ids)'
        ).to_arrow_table()
    finally:
        con.close()
    return result.cast(schema) if result.schema != schema else result
