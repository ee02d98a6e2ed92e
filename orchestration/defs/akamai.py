"""Akamai Identity Cloud as a second identity provider: the dlt load of ``raw_akamai.users`` and the
reverse-ETL push of CRM contact ids onto Akamai users.

A targeted run (e.g. from a webhook) passes ``akamai_run_config(uuids)`` so the load fetches just those users.
Without Akamai settings both assets finish without calling anything (Akamai is optional), saying so in
their metadata.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource
from pydantic import Field

from ingestion.akamai import DATASET, TABLE, akamai_source
from ingestion.pipeline import warehouse_pipeline
from orchestration.defs.ingestion import (
    RawLoadConfig,
    RawTable,
    ids_run_config,
    raw_table_asset,
    run_load,
    unconfigured_load,
)
from orchestration.defs.resources import (
    AkamaiResource,
    FieldMappingResource,
    IngestTuningResource,
    WarehouseResource,
)
from orchestration.defs.reverse_etl import (
    EXTERNAL_IDS_TO_PUSH,
    SALESFORCE_KEY,
    ReverseEtlConfig,
    push_asset,
    push_if_configured,
)
from reverse_etl.akamai_writer import push_akamai

USERS = RawTable(DATASET, TABLE, "akamai",
                 "Akamai Identity Cloud users in the identity columns of raw_b2c.users (key id = uuid): full scan "
                 "with change detection; targeted runs (webhooks) fetch identity_ids only.", "akamai")
USERS_KEY = USERS.key
CONTACT_IDS_KEY = dg.AssetKey(["reverse_etl", "akamai_contact_ids"])
INGEST_OP = "akamai_users"
PIPELINE_NAME = "akamai"


class AkamaiIngestConfig(RawLoadConfig):
    # Akamai uuids to fetch; empty = full scan with change detection
    identity_ids: list[str] = Field(default_factory=list)


def akamai_run_config(uuids: list[str]) -> dict:
    """Run-config fragment that makes the Akamai load fetch only ``uuids``."""
    return ids_run_config(INGEST_OP, "identity_ids", uuids)


@raw_table_asset(USERS, INGEST_OP)
def akamai_users(context: dg.AssetExecutionContext, config: AkamaiIngestConfig, dlt: DagsterDltResource,
                 akamai: AkamaiResource, warehouse: WarehouseResource,
                 ingest_tuning: IngestTuningResource) -> Iterator[Any]:
    if not akamai.configured:
        yield unconfigured_load(context, USERS, "AKAMAI_BASE_URL, AKAMAI_CLIENT_ID, AKAMAI_CLIENT_SECRET")
        return
    source = akamai_source(settings=akamai.settings(), warehouse=warehouse.warehouse,
                           identity_ids=config.identity_ids)
    pipeline = warehouse_pipeline(PIPELINE_NAME, DATASET, warehouse.warehouse, ingest_tuning.dlt_progress)
    context.log.info("Akamai load: %s", f"{len(config.identity_ids)} targeted users" if config.identity_ids
                     else "full scan")
    yield from run_load(context, dlt, USERS, source, pipeline, warehouse, config.accept_volume_drop)


@push_asset(
    CONTACT_IDS_KEY, system="akamai", kind="akamai", target="user",
    # after the Salesforce push: contacts it creates reach Akamai through the next link run
    deps=[EXTERNAL_IDS_TO_PUSH, SALESFORCE_KEY],
    description="Writes the CRM contact id onto Akamai Identity Cloud users (entity.update of one attribute).",
)
def akamai_contact_ids(context: dg.AssetExecutionContext, config: ReverseEtlConfig, warehouse: WarehouseResource,
                       akamai: AkamaiResource, field_mapping: FieldMappingResource) -> dg.MaterializeResult:
    return push_if_configured(
        context, CONTACT_IDS_KEY, "akamai", akamai.configured,
        lambda: push_akamai(warehouse.warehouse, akamai.settings(), field_mapping.mapping(), context.run.run_id,
                            dry_run=config.dry_run, max_attempts=config.max_attempts, max_workers=config.max_workers),
        config, warehouse, "Akamai is not configured: no contact ids pushed",
        # the only sign that CRM contact ids never reach Akamai users
        unconfigured_level="warning")


defs = dg.Definitions(assets=[akamai_users, akamai_contact_ids])
