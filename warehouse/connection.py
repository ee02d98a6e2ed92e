"""One connection to the warehouse that runs the same SQL on DuckDB and Postgres.

Statements are written once with ``?`` placeholders in SQL both engines speak; the Postgres connection turns
them into psycopg2's ``%s``. Rows from Python reach SQL as a temporary relation (``input_table``): DuckDB scans
the Arrow table in place, Postgres gets a temporary table filled by ``COPY``. Both connections are in autocommit
mode; ``transaction()`` groups statements.
"""

from __future__ import annotations

import contextlib
import io
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Self

import duckdb
import psycopg2
import psycopg2.extensions
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg2 import sql as pg_sql

# what a warehouse call raises when the database refuses it (locked, missing, unreachable), on either engine
ERRORS = (duckdb.Error, psycopg2.Error)


class Connection(ABC):
    """What the stages need of a warehouse connection; ``raw`` is the engine's own connection for the rest."""

    engine: str
    raw: Any

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement (several without params); its rows when it returns any, else []."""

    @abstractmethod
    def arrow(self, sql: str, params: Sequence[Any] = (), schema: pa.Schema | None = None) -> pa.Table:
        """A query's result as an Arrow table (of ``schema``'s types when given)."""

    @abstractmethod
    def input_table(self, name: str, table: pa.Table) -> contextlib.AbstractContextManager[None]:
        """``table`` readable as relation ``name`` for the duration of the block."""

    @abstractmethod
    def modify(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT, UPDATE or DELETE; how many rows it changed."""

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""
        for row in rows:
            self.execute(sql, row)

    @abstractmethod
    def close(self) -> None: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Statements in the block commit together, or not at all."""
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self.scalar("select count(*) from information_schema.tables where table_schema = ? "
                                "and table_name = ?", [schema, table]))

    def columns(self, schema: str, table: str) -> list[str]:
        return [name for (name,) in self.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position", [schema, table])]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBConnection(Connection):
    engine = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.raw = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        result = self.raw.execute(sql, list(params))
        return result.fetchall() if result.description else []

    def arrow(self, sql: str, params: Sequence[Any] = (), schema: pa.Schema | None = None) -> pa.Table:
        table = self.raw.sql(sql, params=list(params) or None).to_arrow_table()  # no copy of the rows
        return table.cast(schema) if schema is not None and table.schema != schema else table

    @contextlib.contextmanager
    def input_table(self, name: str, table: pa.Table) -> Iterator[None]:
        self.raw.register(name, table)
        try:
            yield
        finally:
            self.raw.unregister(name)

    def modify(self, sql: str, params: Sequence[Any] = ()) -> int:
        rows = self.raw.execute(sql, list(params)).fetchall()  # DuckDB answers a change with its row count
        return int(rows[0][0]) if rows else 0

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(sql, [list(row) for row in rows])

    def close(self) -> None:
        self.raw.close()


def _pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg2's ``%s`` (and a literal ``%`` doubled), outside quoted text and names."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append("%%" if char == "%" else char)
    return "".join(out)


_PG_TYPES = {pa.null(): "text", pa.string(): "text", pa.large_string(): "text", pa.int32(): "integer", pa.int64(): "bigint",
             pa.bool_(): "boolean", pa.float64(): "double precision"}


def _pg_type(dtype: pa.DataType) -> str:
    if pa.types.is_timestamp(dtype):
        return "timestamptz" if dtype.tz else "timestamp"
    return _PG_TYPES[dtype]


class PostgresConnection(Connection):
    engine = "postgres"

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.raw.cursor() as cur:
            if params:
                cur.execute(_pyformat(sql), list(params))
            else:
                cur.execute(sql)
            return cur.fetchall() if cur.description else []

    def arrow(self, sql: str, params: Sequence[Any] = (), schema: pa.Schema | None = None) -> pa.Table:
        with self.raw.cursor() as cur:
            cur.execute(_pyformat(sql) if params else sql, list(params) or None)
            names = [column.name for column in cur.description]
            rows = cur.fetchall()
        columns = list(zip(*rows)) if rows else [() for _ in names]
        if schema is None:
            return pa.table({name: list(values) for name, values in zip(names, columns)})
        return pa.table([pa.array(values, schema.field(name).type) for name, values in zip(names, columns)],
                        schema=schema)

    @contextlib.contextmanager
    def input_table(self, name: str, table: pa.Table) -> Iterator[None]:
        relation = pg_sql.Identifier(name)
        columns = pg_sql.SQL(", ").join(
            pg_sql.SQL("{} {}").format(pg_sql.Identifier(f.name), pg_sql.SQL(_pg_type(f.type))) for f in table.schema)
        body = io.BytesIO()
        # a null is written unquoted and empty, an empty string quoted: COPY's CSV reads them back the same way
        pa_csv.write_csv(table, body, pa_csv.WriteOptions(include_header=False))
        body.seek(0)
        with self.raw.cursor() as cur:
            cur.execute(pg_sql.SQL("create temporary table {} ({})").format(relation, columns))
            cur.copy_expert(pg_sql.SQL("copy {} from stdin with (format csv)").format(relation).as_string(self.raw),
                            body)
        try:
            yield
        finally:
            # in a failed transaction the table goes with its rollback (it was created inside it)
            if self.raw.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_INERROR:
                with self.raw.cursor() as cur:
                    cur.execute(pg_sql.SQL("drop table if exists {}").format(relation))

    def modify(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.raw.cursor() as cur:
            cur.execute(_pyformat(sql) if params else sql, list(params) or None)
            return cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(_pyformat(sql), [list(row) for row in rows])

    def close(self) -> None:
        self.raw.close()
