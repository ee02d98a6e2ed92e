"""Dynamics 365 / Dataverse as a CRM: the dlt load of ``raw_dynamics.contact`` (change tracking) and the push of
new contacts and external ids through ``$batch``.

Without Dataverse settings (``DATAVERSE_URL``, ``DATAVERSE_TENANT_ID``, ``DATAVERSE_CLIENT_ID``,
``DATAVERSE_CLIENT_SECRET``) both assets finish without calling anything, saying so in their metadata; the
linking build then links in Salesforce only (see ``configured_crms``).
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource
from pydantic import Field

from ingestion.dynamics import DATASET, TABLE, dynamics_source
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
    DataverseResource,
    FieldMappingResource,
    IngestTuningResource,
    WarehouseResource,
)
from orchestration.defs.reverse_etl import (
    CONTACT_FIELDS_TO_PUSH,
    CONTACTS_TO_CREATE,
    EXTERNAL_IDS_TO_PUSH,
    ReverseEtlConfig,
    push_asset,
    push_if_configured,
)
from reverse_etl.dynamics_writer import SYSTEM, push_dynamics

CONTACTS = RawTable(DATASET, TABLE, "dynamics365",
                    "Dynamics 365 / Dataverse contacts through the Web API, incremental by change tracking (delta "
                    "link in dlt state; deletions as tombstones); targeted runs fetch contact_ids only.", "dynamics")
CONTACT_KEY = CONTACTS.key
PUSH_KEY = dg.AssetKey(["reverse_etl", "dynamics_contacts"])
INGEST_OP = "dynamics_contacts"
PIPELINE_NAME = "dynamics"


class DynamicsIngestConfig(RawLoadConfig):
    # Dataverse contact ids (GUIDs) to fetch; empty = the changes since the last load (delta link)
    contact_ids: list[str] = Field(default_factory=list)


def dynamics_run_config(contact_ids: list[str]) -> dict:
    """Run-config fragment that makes the Dynamics load fetch only ``contact_ids``."""
    return ids_run_config(INGEST_OP, "contact_ids", contact_ids)


@raw_table_asset(CONTACTS, INGEST_OP)
def dynamics_contacts(context: dg.AssetExecutionContext, config: DynamicsIngestConfig, dlt: DagsterDltResource,
                      dynamics: DataverseResource, warehouse: WarehouseResource,
                      ingest_tuning: IngestTuningResource) -> Iterator[Any]:
    if not dynamics.configured:
        yield unconfigured_load(context, CONTACTS, "DATAVERSE_URL, DATAVERSE_TENANT_ID, DATAVERSE_CLIENT_ID, "
                                                   "DATAVERSE_CLIENT_SECRET")
        return
    source = dynamics_source(settings=dynamics.settings(), warehouse=warehouse.warehouse,
                             contact_ids=config.contact_ids, workers=ingest_tuning.workers)
    context.log.info("Dynamics load: %s", f"{len(config.contact_ids)} targeted contacts" if config.contact_ids
                     else "changes since the last load")
    pipeline = warehouse_pipeline(PIPELINE_NAME, DATASET, warehouse.warehouse, ingest_tuning.dlt_progress)
    yield from run_load(context, dlt, CONTACTS, source, pipeline, warehouse, config.accept_volume_drop)


@push_asset(
    PUSH_KEY, system="dynamics", kind="dynamics365", target="contact",
    deps=[CONTACTS_TO_CREATE, EXTERNAL_IDS_TO_PUSH, CONTACT_FIELDS_TO_PUSH],
    description="Creates missing contacts in Dynamics (upsert by alternate key, create-only) and sets or clears "
                "the identity id on linked contacts, through $batch of change sets.",
)
def dynamics_contacts_push(context: dg.AssetExecutionContext, config: ReverseEtlConfig, warehouse: WarehouseResource,
                           dynamics: DataverseResource, field_mapping: FieldMappingResource) -> dg.MaterializeResult:
    return push_if_configured(
        context, PUSH_KEY, SYSTEM, dynamics.configured,
        lambda: push_dynamics(warehouse.warehouse, dynamics.settings(), field_mapping.mapping(), context.run.run_id,
                              dry_run=config.dry_run, max_attempts=config.max_attempts,
                              max_workers=config.max_workers),
        config, warehouse, "Dynamics is not configured: nothing pushed")


defs = dg.Definitions(assets=[dynamics_contacts, dynamics_contacts_push])
