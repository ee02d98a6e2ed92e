"""Helpers of the ingestion tests: settings pointing at a running sandbox and warehouse queries."""

from __future__ import annotations

import dataclasses

import duckdb

from settings import GraphSettings, SalesforceSettings, load_settings


def graph_settings(env: dict[str, str], **overrides) -> GraphSettings:
    return dataclasses.replace(load_settings(env).graph, **overrides)


def salesforce_settings(env: dict[str, str], **overrides) -> SalesforceSettings:
    return dataclasses.replace(load_settings(env).salesforce, **overrides)


def query(warehouse: str, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(warehouse, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def scalar(warehouse: str, sql: str, params: list | None = None):
    return query(warehouse, sql, params)[0][0]
