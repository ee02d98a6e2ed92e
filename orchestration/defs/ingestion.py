"""Dagster assets of the dlt loads: B2C users (``raw_b2c_users``) and Salesforce contacts
(``raw_salesforce_contact``), and what every raw table's asset shares (``RawTable``, ``raw_table_asset``,
``run_load``): its spec, its volume check and the judged materialization.

Both accept run config to fetch only some records (``identity_ids`` / ``contact_ids``), which the near-real-time
sensors build with ``targeted_run_config``. Sources and pipelines are built when the asset runs, from the
resources' settings and the configured warehouse; declaring them here touches neither network nor warehouse.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData
from pydantic import Field

from ingestion import b2c as b2c_ingestion
from ingestion import salesforce as salesforce_ingestion
from ingestion.pipeline import warehouse_pipeline
from ingestion.quality import MAX_LIVE_ROW_DROP, MIN_ROWS_TO_JUDGE, judge_load, table_summary
from ingestion.suppression import leave_out
from orchestration.catalog import (
    OWNERS,
    PIPELINE_FRESHNESS,
    ROW_COUNT,
    WAREHOUSE_KIND,
    raw_table_key,
    storage,
)
from orchestration.defs.resources import (
    GraphResource,
    IngestTuningResource,
    SalesforceResource,
    WarehouseResource,
)
from privacy import erased_record_ids
from warehouse import Warehouse, load_scope

B2C_OP = "b2c_users"
SALESFORCE_OP = "salesforce_contacts"
LIVE_ROW_VOLUME = "live_row_volume"  # the volume check every raw table carries


@dataclass(frozen=True)
class RawTable:
    """A raw table one dlt load writes: where it lives, which system it copies (a kind in the UI), what it is, and
    the provider or CRM its records' ids belong to (whose erased records the load leaves out)."""

    schema: str
    table: str
    system: str
    description: str
    records_of: str

    @property
    def key(self) -> dg.AssetKey:
        return raw_table_key(self.schema, self.table)

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


class RawTableTranslator(DagsterDltTranslator):
    """Points the events of a dlt load at its raw table's asset (the load's one resource is that table)."""

    def __init__(self, raw: RawTable) -> None:
        self.raw = raw

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        return raw_table_spec(self.raw)


def raw_table_spec(raw: RawTable) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=raw.key, group_name="ingestion", description=raw.description, owners=OWNERS,
        kinds={"dlt", WAREHOUSE_KIND, raw.system}, freshness_policy=PIPELINE_FRESHNESS, metadata=storage(raw.name))


def raw_table_asset(raw: RawTable, op_name: str) -> Any:
    """The decorator of a dlt load's asset: its raw table, and the volume check that stops the run when the load
    left an implausible table. A multi-asset rather than ``@dlt_assets``, which would declare the dlt source and
    pipeline at import time and keep both in the asset's metadata (shown as "(unserializable)" in the UI), and
    has no place for checks; the step runs the source through ``DagsterDltResource.run`` all the same."""
    return dg.multi_asset(specs=[raw_table_spec(raw)], check_specs=[volume_check_spec(raw)], name=op_name,
                          pool="warehouse")


def volume_check_spec(raw: RawTable) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        LIVE_ROW_VOLUME, asset=raw.key, blocking=True,
        description=f"{raw.name} still holds a plausible number of live rows: it fails, and stops the linking and "
        f"every push of the run, when the load wrote rows and left none live, or when live rows fell to none or "
        f"by more than {MAX_LIVE_ROW_DROP:.0%} since the last accepted load (judged from {MIN_ROWS_TO_JUDGE} "
        "rows). A removal that is real is accepted by running once with accept_volume_drop: true.")


class RawLoadConfig(dg.Config):
    # a person's word that a large drop of live rows is real: the volume check passes and takes it as baseline
    accept_volume_drop: bool = False


class B2CIngestConfig(RawLoadConfig):
    # B2C object ids to fetch; empty = full scan with change detection
    identity_ids: list[str] = Field(default_factory=list)


class SalesforceIngestConfig(RawLoadConfig):
    # Contact ids to fetch; empty = incremental load since the last cursor
    contact_ids: list[str] = Field(default_factory=list)


B2C_USERS = RawTable(b2c_ingestion.DATASET, b2c_ingestion.TABLE, "azure",
                     "Azure AD B2C / Entra External ID users from Microsoft Graph: full scan with change detection, "
                     "tombstones for users that disappeared; targeted runs fetch identity_ids only.", "b2c")
SALESFORCE_CONTACTS = RawTable(salesforce_ingestion.DATASET, salesforce_ingestion.TABLE, "salesforce",
                               "Salesforce contacts, incremental on SystemModstamp, deletions via queryAll; "
                               "targeted runs fetch contact_ids only.", "salesforce")
B2C_USERS_KEY = B2C_USERS.key
SALESFORCE_CONTACT_KEY = SALESFORCE_CONTACTS.key


def targeted_run_config(identity_ids: list[str], contact_ids: list[str]) -> dict:
    """Run-config fragment making the B2C and Salesforce loads fetch only these records."""
    return {
        "ops": {
            B2C_OP: {"config": {"identity_ids": sorted(set(identity_ids))}},
            SALESFORCE_OP: {"config": {"contact_ids": sorted(set(contact_ids))}},
        }
    }


def run_load(context: dg.AssetExecutionContext, dlt: DagsterDltResource, raw: RawTable, source: Any,
             pipeline: Any, warehouse: WarehouseResource, accept_volume_drop: bool) -> Iterator[Any]:
    """Run one dlt load into its raw table, holding the warehouse; its materialization carries counts only and
    the volume check. Erased people are never loaded again: their ids are read under the same hold (a read-only
    open while another process writes would fail)."""
    with warehouse.exclusive(load_scope(raw.schema), context.log):
        source = leave_out(source, erased_record_ids(warehouse.warehouse, raw.records_of))
        for event in dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline,
                             dagster_dlt_translator=RawTableTranslator(raw)):
            if isinstance(event, dg.MaterializeResult):
                summary = table_summary(warehouse.warehouse, raw.schema, raw.table)
                yield judged_load(context, raw, {**(event.metadata or {}), **summary}, warehouse.warehouse,
                                  accept_volume_drop)
            else:
                yield event


def unconfigured_load(context: dg.AssetExecutionContext, raw: RawTable, settings: str) -> dg.MaterializeResult:
    """The materialization of a load whose system is not configured: nothing loaded, nothing to judge."""
    context.log.info("%s is not configured (%s): nothing loaded", raw.system, settings)
    return dg.MaterializeResult(
        asset_key=raw.key, metadata={"configured": False, "rows_loaded": 0, **storage(raw.name)},
        check_results=[dg.AssetCheckResult(asset_key=raw.key, check_name=LIVE_ROW_VOLUME, passed=True,
                                           description=f"not judged: {raw.system} is not configured")])


def ids_run_config(op: str, field: str, ids: Iterable[str]) -> dict:
    """Run-config fragment that makes the load ``op`` fetch only ``ids`` (its config ``field``)."""
    return {"ops": {op: {"config": {field: sorted(set(ids))}}}}


def judged_load(context: dg.AssetExecutionContext, raw: RawTable, metadata: dict[str, Any],
                warehouse: Warehouse, accept_volume_drop: bool) -> dg.MaterializeResult:
    """The load's metadata (dlt's and the table's counts, the storage as the definition names it) with the
    verdict of the volume check against the last accepted load into this warehouse."""
    total, deleted = metadata.get("rows_total", 0), metadata.get("rows_deleted", 0)
    live = total - deleted
    verdict = judge_load(warehouse, raw.schema, raw.table, live, _number(metadata.get("rows_loaded")),
                         accept_drop=accept_volume_drop)
    if not verdict.passed:
        context.log.error("%s: %s; linking and pushes of this run are stopped", raw.name, verdict.reason)
    metadata = {**metadata, **storage(raw.name), ROW_COUNT: total, "rows_live": live}
    return dg.MaterializeResult(
        asset_key=raw.key, metadata=metadata,
        check_results=[dg.AssetCheckResult(
            asset_key=raw.key, check_name=LIVE_ROW_VOLUME, passed=verdict.passed, description=verdict.reason,
            metadata={"rows_live": live, **({} if verdict.previous is None
                                            else {"last_accepted_rows_live": verdict.previous})})])


def _number(value: Any) -> int:
    value = getattr(value, "value", value)
    return int(value) if isinstance(value, (int, float)) else 0


@raw_table_asset(B2C_USERS, B2C_OP)
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
    source = b2c_ingestion.b2c_source(
        settings=graph.settings(),
        warehouse=warehouse.warehouse,
        identity_ids=config.identity_ids,
        dataset_name=b2c_ingestion.DATASET,
        workers=ingest_tuning.workers,
    )
    context.log.info(
        "B2C load: %s", f"{len(config.identity_ids)} targeted users" if config.identity_ids else "full scan"
    )
    pipeline = warehouse_pipeline("b2c", b2c_ingestion.DATASET, warehouse.warehouse, ingest_tuning.dlt_progress)
    yield from run_load(context, dlt, B2C_USERS, source, pipeline, warehouse, config.accept_volume_drop)


@raw_table_asset(SALESFORCE_CONTACTS, SALESFORCE_OP)
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
    source = salesforce_ingestion.salesforce_source(
        settings=salesforce.settings(), contact_ids=config.contact_ids, workers=ingest_tuning.workers)
    context.log.info(
        "Salesforce load: %s",
        f"{len(config.contact_ids)} targeted contacts" if config.contact_ids else "incremental",
    )
    pipeline = warehouse_pipeline("salesforce", salesforce_ingestion.DATASET, warehouse.warehouse,
                                  ingest_tuning.dlt_progress)
    yield from run_load(context, dlt, SALESFORCE_CONTACTS, source, pipeline, warehouse,
                        config.accept_volume_drop)


defs = dg.Definitions(assets=[b2c_users, salesforce_contacts])
