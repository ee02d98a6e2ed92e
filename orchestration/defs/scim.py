"""A SCIM 2.0 directory as an identity provider: the dlt load of ``raw_scim.users``.

Without SCIM settings (``SCIM_BASE_URL``, ``SCIM_TOKEN``) the asset finishes without calling anything, saying
so in its metadata. A targeted run passes ``scim_run_config(ids)`` so the load fetches just those users.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from pydantic import Field

from ingestion.pipeline import warehouse_pipeline
from ingestion.scim import DATASET, TABLE, scim_source
from orchestration.defs.ingestion import declared_pipeline, with_summary
from orchestration.defs.resources import IngestTuningResource, ScimResource, WarehouseResource

USERS_KEY = dg.AssetKey(["raw_scim", "users"])
INGEST_OP = "scim_users"
PIPELINE_NAME = "scim"


class ScimIngestConfig(dg.Config):
    # SCIM user ids to fetch; empty = changes since the last load (or a full scan where the server cannot filter)
    identity_ids: list[str] = Field(default_factory=list)


def scim_run_config(user_ids: list[str]) -> dict:
    """Run-config fragment that makes the SCIM load fetch only ``user_ids``."""
    return {"ops": {INGEST_OP: {"config": {"identity_ids": sorted(set(user_ids))}}}}


class ScimTranslator(DagsterDltTranslator):
    """``raw_scim/users`` (= dbt source name + table) in group ``ingestion``, with no upstream source asset."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        return super().get_asset_spec(data).replace_attributes(
            key=USERS_KEY, group_name="ingestion", deps=[], kinds={"dlt", "duckdb"},
            description="Users of a SCIM 2.0 directory in the identity columns of raw_b2c.users: changes since "
                        "meta.lastModified where the server filters, else a full scan with change detection.")


@dlt_assets(
    dlt_source=scim_source(),
    dlt_pipeline=declared_pipeline(PIPELINE_NAME, DATASET),
    name=INGEST_OP,
    dagster_dlt_translator=ScimTranslator(),
    pool="warehouse",
)
def scim_users(context: dg.AssetExecutionContext, config: ScimIngestConfig, dlt: DagsterDltResource,
               scim: ScimResource, warehouse: WarehouseResource,
               ingest_tuning: IngestTuningResource) -> Iterator[Any]:
    if not scim.configured:
        context.log.info("SCIM is not configured (SCIM_BASE_URL, SCIM_TOKEN): nothing loaded")
        yield dg.MaterializeResult(asset_key=USERS_KEY, metadata={"configured": False, "rows_loaded": 0})
        return
    source = scim_source(settings=scim.settings(), warehouse_path=warehouse.path, identity_ids=config.identity_ids,
                         workers=ingest_tuning.workers)
    context.log.info("SCIM load: %s", f"{len(config.identity_ids)} targeted users" if config.identity_ids
                     else "changes since the last load")
    pipeline = warehouse_pipeline(PIPELINE_NAME, DATASET, warehouse.path, ingest_tuning.dlt_progress)
    with warehouse.exclusive(context.log):  # the pool alone is not enough under an instance without its limit
        events = dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline,
                         dagster_dlt_translator=ScimTranslator())
        yield from with_summary(events, warehouse.path, DATASET, TABLE)


defs = dg.Definitions(assets=[scim_users])
