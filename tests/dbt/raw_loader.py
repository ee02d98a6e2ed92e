"""Turns synthetic records (native API shapes) into the raw warehouse tables the ingestion pipelines write,
through the ingestion code's own page builders and normalisation, and bulk-loads them into DuckDB from Arrow.

Used by the dbt tests and by bench/linking.py, so linking is measured on exactly the columns production loads.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from ingestion.akamai import EntityPageBuilder
from ingestion.b2c import SCHEMA as IDENTITY_SCHEMA
from ingestion.b2c import UserPageBuilder
from ingestion.columns import table_from_columns
from ingestion.quality import Quarantine
from ingestion.salesforce import SCHEMA as CONTACT_SCHEMA
from ingestion.salesforce import ContactPageBuilder
from settings import AkamaiSettings, GraphSettings

DEFAULT_EXTENSIONS_APP_ID = "b2c0e5a1-5e1d-4c2b-9a7f-3c1d2e4f5a6b"
EXTERNAL_ID_FIELD = "External_User_Id__c"
PAGE = 50_000  # records per builder call: bounded memory for column lists

RawTables = dict[tuple[str, str], pa.Table]


def b2c_users_table(users: Sequence[dict], extensions_app_id: str = DEFAULT_EXTENSIONS_APP_ID,
                    now: datetime | None = None) -> pa.Table:
    """``raw_b2c.users`` rows for Graph user objects, as the B2C source builds them."""
    settings = GraphSettings(tenant_id="synthetic", client_id="synthetic", client_secret="unused",
                             extensions_app_id=extensions_app_id,
                             # the default ones and the client signed up through, as the sandbox's tenant has them
                             custom_attributes=(*GraphSettings.custom_attributes, "SignUpClientId"))
    builder = UserPageBuilder(settings)
    return _build(builder.build, users, "b2c", IDENTITY_SCHEMA, now)


def akamai_users_table(entities: Sequence[dict], now: datetime | None = None) -> pa.Table:
    """``raw_akamai.users`` rows for Identity Cloud entities, as the Akamai source builds them."""
    settings = AkamaiSettings(base_url="https://akamai.invalid", client_id="synthetic", client_secret="unused")
    builder = EntityPageBuilder(settings)
    return _build(builder.build, entities, "akamai", IDENTITY_SCHEMA, now)


def salesforce_contacts_table(contacts: Sequence[dict], now: datetime | None = None) -> pa.Table:
    """``raw_salesforce.contact`` rows for Salesforce Contact records, as the Salesforce source builds them."""
    builder = ContactPageBuilder(EXTERNAL_ID_FIELD)
    return _build(builder.build, contacts, "salesforce", CONTACT_SCHEMA, now)


def _build(build, records: Sequence[Any], source: str, schema: pa.Schema, now: datetime | None) -> pa.Table:
    now = now or datetime.now(UTC)
    quarantine = Quarantine(source)
    batches = [table_from_columns(schema, build(list(records[start:start + PAGE]), f"{source}/{start}",
                                                quarantine, now))
               for start in range(0, len(records), PAGE)]
    return pa.concat_tables(batches) if batches else schema.empty_table()


def raw_tables(users: Sequence[dict], contacts: Sequence[dict], akamai_users: Sequence[dict] = (),
               extensions_app_id: str = DEFAULT_EXTENSIONS_APP_ID) -> RawTables:
    """All raw tables for a synthetic dataset; Akamai only when it has users (absent source = zero rows)."""
    tables: RawTables = {
        ("raw_b2c", "users"): b2c_users_table(users, extensions_app_id),
        ("raw_salesforce", "contact"): salesforce_contacts_table(contacts),
    }
    if akamai_users:
        tables[("raw_akamai", "users")] = akamai_users_table(akamai_users)
    return tables


def load_raw_tables(con: duckdb.DuckDBPyConnection, tables: RawTables) -> dict[str, int]:
    """Replaces each raw table with the given rows in one Arrow scan; returns row counts by table."""
    counts: dict[str, int] = {}
    for (dataset, table), rows in tables.items():
        con.execute(f'create schema if not exists "{dataset}"')
        con.register("incoming_rows", rows)
        try:
            con.execute(f'create or replace table "{dataset}"."{table}" as select * from incoming_rows')
        finally:
            con.unregister("incoming_rows")
        counts[f"{dataset}.{table}"] = rows.num_rows
    return counts


def write_parquet(tables: RawTables, directory) -> None:
    """Caches raw tables as Parquet (one file per table) so large benchmark datasets are generated once."""
    from pathlib import Path

    import pyarrow.parquet as pq

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for (dataset, table), rows in tables.items():
        pq.write_table(rows, out / f"{dataset}.{table}.parquet")


def read_parquet(directory) -> RawTables:
    from pathlib import Path

    import pyarrow.parquet as pq

    return {tuple(path.name.removesuffix(".parquet").split(".", 1)): pq.read_table(path)
            for path in sorted(Path(directory).glob("*.parquet"))}


