"""Finds personal data in files: every file under a folder as text (gzip unpacked, parquet and DuckDB databases
read through their libraries: DuckDB compresses the strings it stores, so its file's bytes may not show them)."""
from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of a DuckDB database file


def file_texts(folder: Path, skip: Iterable[Path] = ()) -> Iterator[tuple[Path, str]]:
    skipped = [p.resolve() for p in skip]
    for path in folder.rglob("*"):
        if not path.is_file() or any(path.resolve() == s or s in path.resolve().parents for s in skipped):
            continue
        if path.suffix == ".parquet":
            yield path, str(pq.read_table(path).to_pylist())
            continue
        data = path.read_bytes()
        if data[8:12] == DUCKDB_MAGIC:
            yield path, duckdb_text(path)
            continue
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        yield path, data.decode("utf-8", errors="replace")


def duckdb_text(path: Path) -> str:
    """Every row of every table of a DuckDB database, as text."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables"
                             " where table_type = 'BASE TABLE'").fetchall()
        return "\n".join(str(value) for schema, table in tables
                         for row in con.execute(f'select * from "{schema}"."{table}"').fetchall() for value in row)


def files_with(values: set[str], folder: Path, skip: Iterable[Path] = ()) -> set[str]:
    """Files under ``folder`` (relative names) holding any of ``values``."""
    return {str(path.relative_to(folder)) for path, text in file_texts(folder, skip)
            if any(value in text for value in values)}
