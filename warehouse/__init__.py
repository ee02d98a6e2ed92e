"""The warehouse every stage shares: the DuckDB file at ``WAREHOUSE_PATH`` (default), or a Postgres database
when ``WAREHOUSE_URL`` is set.

``Warehouse`` says where it is. ``Warehouse.connect()`` gives a ``Connection`` that runs one text of SQL on
either engine (written once, with ``?`` placeholders, in what both engines speak) and hands Python rows in as a
temporary relation (``input_table``). ``Warehouse.exclusive(scope)`` is what a step holds while it writes: on
DuckDB, which admits one writing process per file, one lock beside the file whatever the scope; on Postgres,
where several runs and readers work at once, an advisory lock per scope (``scopes``), so only two steps writing
the same thing wait for each other.

Imports: ``settings`` only.
"""

from warehouse.connection import ERRORS, Connection, DuckDBConnection, PostgresConnection
from warehouse.location import DUCKDB, POSTGRES, Warehouse, redacted
from warehouse.scopes import BUILD, DECISIONS, PRIVACY, PUBLISH, load_scope, push_scope

__all__ = [
    "BUILD",
    "DECISIONS",
    "DUCKDB",
    "ERRORS",
    "POSTGRES",
    "PRIVACY",
    "PUBLISH",
    "Connection",
    "DuckDBConnection",
    "PostgresConnection",
    "Warehouse",
    "load_scope",
    "push_scope",
    "redacted",
]
