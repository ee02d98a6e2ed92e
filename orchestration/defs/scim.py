"""A SCIM 2.0 directory as an identity provider: the dlt load of ``raw_scim.users``.

Without SCIM settings (``SCIM_BASE_URL``, ``SCIM_TOKEN``) the asset finishes without calling anything, saying
so in its metadata. A targeted run passes ``scim_run_config(ids)`` so the load fetches just those users.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource
from pydantic import Field

from ingestion.pipeline import warehouse_pipeline
from ingestion.scim import DATASET, TABLE, scim_source
from orchestration.defs.ingestion import (
    RawLoadConfig,
    RawTable,
    ids_run_config,
    raw_table_asset,
    run_load,
    unconfigured_load,
)
from orchestration.defs.resources import IngestTuningResource, ScimResource, WarehouseResource

USERS = RawTable(DATASET, TABLE, "scim",
                 "Users of a SCIM 2.0 directory in the identity columns of raw_b2c.users: changes since "
                 "meta.lastModified where the server filters, else a full scan with change detection.", "scim")
USERS_KEY = USERS.key
INGEST_OP = "scim_users"
PIPELINE_NAME = "scim"


class ScimIngestConfig(RawLoadConfig):
    # SCIM user ids to fetch; empty = changes since the last load (or a full scan where the server cannot filter)
    identity_ids: list[str] = Field(default_factory=list)


def scim_run_config(user_ids: list[str]) -> dict:
    """Run-config fragment that makes the SCIM load fetch only ``user_ids``."""
    return ids_run_config(INGEST_OP, "identity_ids", user_ids)


@raw_table_asset(USERS, INGEST_OP)
def scim_users(context: dg.AssetExecutionContext, config: ScimIngestConfig, dlt: DagsterDltResource,
               scim: ScimResource, warehouse: WarehouseResource,
               ingest_tuning: IngestTuningResource) -> Iterator[Any]:
    if not scim.configured:
        yield unconfigured_load(context, USERS, "SCIM_BASE_URL, SCIM_TOKEN")
        return
    source = scim_source(settings=scim.settings(), warehouse=warehouse.warehouse,
                         identity_ids=config.identity_ids, workers=ingest_tuning.workers)
    context.log.info("SCIM load: %s", f"{len(config.identity_ids)} targeted users" if config.identity_ids
                     else "changes since the last load")
    pipeline = warehouse_pipeline(PIPELINE_NAME, DATASET, warehouse.warehouse, ingest_tuning.dlt_progress)
    yield from run_load(context, dlt, USERS, source, pipeline, warehouse, config.accept_volume_drop)


defs = dg.Definitions(assets=[scim_users])
