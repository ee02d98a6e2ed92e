"""Dagster assets of the dlt loads: B2C users (``raw_b2c/users``) and Salesforce contacts (``raw_salesforce/contact``).

Both accept run config to fetch only some records (``identity_ids`` / ``contact_ids``), which the near-real-time
sensors build with ``targeted_run_config``. Sources and pipelines are built when the asset runs, from the
resources' settings and the configured warehouse; declaring them here touches neither network nor warehouse.
"""

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from dlt import pipeline as declare_pipeline
from dlt.destinations import duckdb as duckdb_destination
from pydantic import Field

from ingestion import b2c as b2c_ingestion
from ingestion import salesforce as salesforce_ingestion
from ingestion.pipeline import warehouse_pipeline
from ingestion.quality import table_summary
from ingestion.suppression import leave_out
from orchestration.defs.resources import (
    GraphResource,
    IngestTuningResource,
    SalesforceResource,
    WarehouseResource,
)
from privacy import erased_record_ids

B2C_USERS_KEY = dg.AssetKey(["raw_b2c", "users"])
SALESFORCE_CONTACT_KEY = dg.AssetKey(["raw_salesforce", "contact"])
B2C_OP = "b2c_users"
SALESFORCE_OP = "salesforce_contacts"
_KEYS_BY_RESOURCE = {"users": B2C_USERS_KEY, "contact": SALESFORCE_CONTACT_KEY}
_DESCRIPTIONS = {
    B2C_USERS_KEY: "Azure AD B2C users from Microsoft Graph: full scan with change detection, tombstones for "
    "users that disappeared; targeted runs fetch identity_ids only.",
    SALESFORCE_CONTACT_KEY: "Salesforce contacts, incremental on SystemModstamp, deletions via queryAll; "
    "targeted runs fetch contact_ids only.",
}


class B2CIngestConfig(dg.Config):
    # B2C object ids to fetch; empty = full scan with change detection
    identity_ids: list[str] = Field(default_factory=list)


class SalesforceIngestConfig(dg.Config):
    # Contact ids to fetch; empty = incremental load since the last cursor
    contact_ids: list[str] = Field(default_factory=list)


def targeted_run_config(identity_ids: list[str], contact_ids: list[str]) -> dict:
    """Run-config fragment making the B2C and Salesforce loads fetch only these records."""
    return {
        "ops": {
            B2C_OP: {"config": {"identity_ids": sorted(set(identity_ids))}},
            SALESFORCE_OP: {"config": {"contact_ids": sorted(set(contact_ids))}},
        }
    }


class IngestionTranslator(DagsterDltTranslator):
    """Keys = dbt source name + table, group ``ingestion``, no upstream source asset."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        key = _KEYS_BY_RESOURCE[data.resource.name]
        return spec.replace_attributes(
            key=key, group_name="ingestion", deps=[], kinds={"dlt", "duckdb"}, description=_DESCRIPTIONS[key]
        )


def declared_pipeline(name: str, dataset: str):
    # declares the assets only; runs build their pipeline on the configured warehouse. dlt gives every pipeline
    # a working folder, so the declaration's lives in the temp dir rather than next to the warehouse.
    return declare_pipeline(
        pipeline_name=name,
        destination=duckdb_destination(),
        dataset_name=dataset,
        pipelines_dir=os.path.join(tempfile.gettempdir(), "idlink-dlt-declarations"),
    )


def with_summary(events: Iterator[Any], warehouse_path: str, dataset: str, table: str) -> Iterator[Any]:
    """dagster-dlt's events plus row, deletion and quality-flag counts of the table (counts only)."""
    for event in events:
        if isinstance(event, dg.MaterializeResult):
            summary = table_summary(warehouse_path, dataset, table)
            event = dg.MaterializeResult(
                asset_key=event.asset_key, metadata={**(event.metadata or {}), **summary}
            )
        yield event


@dlt_assets(
    dlt_source=b2c_ingestion.b2c_source(),
    dlt_pipeline=declared_pipeline("b2c", b2c_ingestion.DATASET),
    name=B2C_OP,
    dagster_dlt_translator=IngestionTranslator(),
    pool="warehouse",
)
def b2c_users(
    context: dg.AssetExecutionContext,
    config: B2CIngestConfig,
    dlt: DagsterDltResource,
    graph: GraphResource,
    warehouse: WarehouseResource,
    ingest_tuning: IngestTuningResource,
) -> Iterator[Any]:
    if not graph.configured:
        raise dg.Failure("B2C is not configured: set B2C_TENANT_ID, B2C_CLIENT_ID and B2C_CLIENT_SECRET")
    source = leave_out(b2c_ingestion.b2c_source(
        settings=graph.settings(),
        warehouse_path=warehouse.path,
        identity_ids=config.identity_ids,
        dataset_name=b2c_ingestion.DATASET,
        workers=ingest_tuning.workers,
    ), erased_record_ids(warehouse.path, "b2c"))  # erased people are never loaded again
    context.log.info(
        "B2C load: %s", f"{len(config.identity_ids)} targeted users" if config.identity_ids else "full scan"
    )
    with warehouse.exclusive(context.log):
        events = dlt.run(
            context=context,
            dlt_source=source,
            dlt_pipeline=warehouse_pipeline("b2c", b2c_ingestion.DATASET, warehouse.path, ingest_tuning.dlt_progress),
            dagster_dlt_translator=IngestionTranslator(),
        )
        yield from with_summary(events, warehouse.path, b2c_ingestion.DATASET, b2c_ingestion.TABLE)


@dlt_assets(
    dlt_source=salesforce_ingestion.salesforce_source(),
    dlt_pipeline=declared_pipeline("salesforce", salesforce_ingestion.DATASET),
    name=SALESFORCE_OP,
    dagster_dlt_translator=IngestionTranslator(),
    pool="warehouse",
)
def salesforce_contacts(
    context: dg.AssetExecutionContext,
    config: SalesforceIngestConfig,
    dlt: DagsterDltResource,
    salesforce: SalesforceResource,
    warehouse: WarehouseResource,
    ingest_tuning: IngestTuningResource,
) -> Iterator[Any]:
    if not salesforce.configured:
        raise dg.Failure("Salesforce is not configured: set SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET")
    source = leave_out(salesforce_ingestion.salesforce_source(
        settings=salesforce.settings(), contact_ids=config.contact_ids, workers=ingest_tuning.workers
    ), erased_record_ids(warehouse.path, "salesforce"))
    context.log.info(
        "Salesforce load: %s",
        f"{len(config.contact_ids)} targeted contacts" if config.contact_ids else "incremental",
    )
    with warehouse.exclusive(context.log):
        events = dlt.run(
            context=context,
            dlt_source=source,
            dlt_pipeline=warehouse_pipeline("salesforce", salesforce_ingestion.DATASET, warehouse.path,
                                            ingest_tuning.dlt_progress),
            dagster_dlt_translator=IngestionTranslator(),
        )
        yield from with_summary(events, warehouse.path, salesforce_ingestion.DATASET, salesforce_ingestion.TABLE)


defs = dg.Definitions(assets=[b2c_users, salesforce_contacts])
