"""Akamai Identity Cloud as a second identity provider: the dlt load of ``raw_akamai.users`` and the
reverse-ETL push of CRM contact ids onto Akamai users.

A targeted run (e.g. from a webhook) passes ``akamai_run_config(uuids)`` so the load fetches just those users.
Without Akamai settings both assets finish without calling anything (Akamai is optional), saying so in
their metadata.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from pydantic import Field

from ingestion.akamai import DATASET, TABLE, akamai_source
from ingestion.pipeline import warehouse_pipeline
from ingestion.suppression import leave_out
from orchestration.defs.ingestion import declared_pipeline, with_summary
from orchestration.defs.resources import (
    AkamaiResource,
    FieldMappingResource,
    GraphResource,
    IngestTuningResource,
    WarehouseResource,
)
from orchestration.defs.reverse_etl import (
    EXTERNAL_IDS_TO_PUSH,
    SALESFORCE_KEY,
    ReverseEtlConfig,
    sync_checks,
    sync_materialization,
)
from privacy import erased_record_ids
from reverse_etl.akamai_writer import push_akamai
from reverse_etl.runner import SyncResult

USERS_KEY = dg.AssetKey(["raw_akamai", "users"])
CONTACT_IDS_KEY = dg.AssetKey(["reverse_etl", "akamai_contact_ids"])
INGEST_OP = "akamai_users"
PIPELINE_NAME = "akamai"


class AkamaiIngestConfig(dg.Config):
    # Akamai uuids to fetch; empty = full scan with change detection
    identity_ids: list[str] = Field(default_factory=list)


def akamai_run_config(uuids: list[str]) -> dict:
    """Run-config fragment that makes the Akamai load fetch only ``uuids``."""
    return {"ops": {INGEST_OP: {"config": {"identity_ids": sorted(set(uuids))}}}}


class AkamaiTranslator(DagsterDltTranslator):
    """``raw_akamai/users`` (= dbt source name + table) in group ``ingestion``, with no upstream source asset."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        return super().get_asset_spec(data).replace_attributes(
            key=USERS_KEY, group_name="ingestion", deps=[], kinds={"dlt", "duckdb"},
            description="Akamai Identity Cloud users in the identity columns of raw_b2c.users (key id = uuid).")


@dlt_assets(
    dlt_source=akamai_source(),
    dlt_pipeline=declared_pipeline(PIPELINE_NAME, DATASET),
    name=INGEST_OP,
    dagster_dlt_translator=AkamaiTranslator(),
    pool="warehouse",
)
def akamai_users(context: dg.AssetExecutionContext, config: AkamaiIngestConfig, dlt: DagsterDltResource,
                 akamai: AkamaiResource, warehouse: WarehouseResource,
                 ingest_tuning: IngestTuningResource) -> Iterator[Any]:
    if not akamai.configured:
        context.log.warning("Akamai is not configured (AKAMAI_BASE_URL, AKAMAI_CLIENT_ID, AKAMAI_CLIENT_SECRET): "
                            "nothing loaded")
        yield dg.MaterializeResult(asset_key=USERS_KEY, metadata={"configured": False, "rows_loaded": 0})
        return
    source = leave_out(akamai_source(settings=akamai.settings(), warehouse_path=warehouse.path,
                                     identity_ids=config.identity_ids), erased_record_ids(warehouse.path, "akamai"))
    pipeline = warehouse_pipeline(PIPELINE_NAME, DATASET, warehouse.path, ingest_tuning.dlt_progress)
    context.log.info("Akamai load: %s", f"{len(config.identity_ids)} targeted users" if config.identity_ids
                     else "full scan")
    with warehouse.exclusive(context.log):
        events = dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline,
                         dagster_dlt_translator=AkamaiTranslator())
        yield from with_summary(events, warehouse.path, DATASET, TABLE)


@dg.asset(
    key=CONTACT_IDS_KEY,
    # after the Salesforce push: contacts it creates reach Akamai through the next link run
    deps=[EXTERNAL_IDS_TO_PUSH, SALESFORCE_KEY],
    group_name="reverse_etl",
    pool="warehouse",
    check_specs=sync_checks(CONTACT_IDS_KEY),
    description="Writes the CRM contact id onto Akamai Identity Cloud users (entity.update of one attribute).",
)
def akamai_contact_ids(context: dg.AssetExecutionContext, config: ReverseEtlConfig, warehouse: WarehouseResource,
                       akamai: AkamaiResource, graph: GraphResource,
                       field_mapping: FieldMappingResource) -> dg.MaterializeResult:
    if not akamai.configured:
        context.log.warning("Akamai is not configured: no contact ids pushed")
        result = SyncResult(system="akamai", run_id=context.run.run_id, dry_run=config.dry_run)
    else:
        mapping = field_mapping.for_client(graph.client_id or akamai.client_id)
        with warehouse.exclusive(context.log):
            result = push_akamai(warehouse.path, akamai.settings(), mapping, context.run.run_id,
                                 dry_run=config.dry_run, max_attempts=config.max_attempts,
                                 max_workers=config.max_workers)
    done = sync_materialization(CONTACT_IDS_KEY, result, config.min_success_rate)
    return dg.MaterializeResult(asset_key=CONTACT_IDS_KEY, metadata={**done.metadata, "configured": akamai.configured},
                                check_results=done.check_results)


defs = dg.Definitions(assets=[akamai_users, akamai_contact_ids])
