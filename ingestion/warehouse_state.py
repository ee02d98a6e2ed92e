"""Read-only look at what an earlier load left in the warehouse: content hashes and last known rows.

Connections are opened read-only and closed before dlt loads, because DuckDB allows one writer per file.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from warehouse import Warehouse


def known_hashes(warehouse: Warehouse, dataset: str, table: str) -> dict[str, str | None]:
    """``id -> content_hash`` of every row already loaded; deleted rows map to None (so they never match)."""
    if not warehouse.exists():
        return {}
    with warehouse.connect(read_only=True) as con:
        if not con.table_exists(dataset, table):
            return {}
        result = con.arrow(
            f"select id, case when coalesce(is_deleted, false) then null else content_hash end as content_hash "
            f'from "{dataset}"."{table}"'
        )
    return dict(zip(result.column(0).to_pylist(), result.column(1).to_pylist()))


def previous_rows(
    warehouse: Warehouse, dataset: str, table: str, ids: Sequence[str], schema: pa.Schema
) -> pa.Table:
    """The last loaded rows of ``ids`` in the columns of ``schema`` (so tombstones keep what was known)."""
    empty = schema.empty_table()
    if not ids or not warehouse.exists():
        return empty
    with warehouse.connect(read_only=True) as con:
        if not con.table_exists(dataset, table):
            return empty
        present = set(con.columns(dataset, table))
        select = ", ".join(f'"{f.name}"' if f.name in present else f'null as "{f.name}"' for f in schema)
        with con.input_table("wanted_ids", pa.table({"id": pa.array(list(ids), pa.string())})):
            return con.arrow(f'select {select} from "{dataset}"."{table}" where id in (select id from wanted_ids)',
                             schema=schema)
