"""Helpers of the ingestion tests: settings pointing at a running sandbox and warehouse queries."""

from __future__ import annotations

import dataclasses

import duckdb

from clients.settings import GraphSettings, SalesforceSettings


def graph_settings(env: dict[str, str], **overrides) -> GraphSettings:
    return dataclasses.replace(GraphSettings.from_env(env), **overrides)


def salesforce_settings(env: dict[str, str], **overrides) -> SalesforceSettings:
    return dataclasses.replace(SalesforceSettings.from_env(env), **overrides)


def query(warehouse: str, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(warehouse, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def scalar(warehouse: str, sql: str, params: list | None = None):
    return query(warehouse, sql, params)[0][0]
