"""Reverse-ETL assets: push new contacts and external ids to Salesforce, then CRM contact ids to B2C.

Each materialization is one push through ``reverse_etl.runner``; its metadata carries counts only (no PII) and
two checks judge it: the dead-letter table did not grow, and the share of sent records that succeeded.
"""

from pathlib import Path

import dagster as dg
import duckdb

from inbox import Inbox
from orchestration.defs.resources import (
    FieldMappingResource,
    GraphResource,
    InboxResource,
    SalesforceResource,
    WarehouseResource,
)
from reverse_etl.runner import SyncResult, push_b2c, push_salesforce
from reverse_etl.salesforce_writer import DEFAULT_BULK_THRESHOLD, ValidationPolicy
from reverse_etl.state import DEFAULT_MAX_ATTEMPTS, append_external_log

SALESFORCE_KEY = dg.AssetKey(["reverse_etl", "salesforce_contacts"])
B2C_KEY = dg.AssetKey(["reverse_etl", "b2c_contact_ids"])
CONTACTS_TO_CREATE = dg.AssetKey("contacts_to_create")
EXTERNAL_IDS_TO_PUSH = dg.AssetKey("external_ids_to_push")
NO_NEW_DEAD_LETTERS = "no_new_dead_letters"
SUCCESS_RATE = "success_rate"
FAST_LANE_RUN_ID = "fast_lane"  # run_id of the sync_log rows the near-real-time fast lane wrote


class ReverseEtlConfig(dg.Config):
    dry_run: bool = False  # compute and log what would be sent; no write calls
    min_success_rate: float = 0.95  # share of sent records that must succeed for the success-rate check
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # attempts before a permanently failing record is dead-lettered
    max_workers: int = 4  # concurrent requests
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD  # above this many records of one kind, a Bulk API 2.0 job
    # a new contact the CRM refuses for a field value: created without the refused optional fields
    # (drop_field, flagged in reverse_etl.sync_state.dropped_fields) or dead-lettered at once (dead_letter)
    validation_policy: ValidationPolicy = ValidationPolicy.DROP_FIELD


def sync_checks(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(NO_NEW_DEAD_LETTERS, asset=key,
                          description="No record was dead-lettered by this push (review reverse_etl.dead_letters)."),
        dg.AssetCheckSpec(SUCCESS_RATE, asset=key,
                          description="Enough of the records sent by this push were accepted."),
    ]


def sync_materialization(key: dg.AssetKey, result: SyncResult, min_success_rate: float,
                         extra_metadata: dict | None = None) -> dg.MaterializeResult:
    """Counts as metadata, plus the two check results, for one push."""
    metadata = {
        **(extra_metadata or {}),
        "attempted": result.attempted, "succeeded": result.succeeded, "failed": result.failed,
        "skipped": result.skipped, "dead_lettered": result.dead_lettered, "api_calls": result.api_calls,
        "invalid": result.invalid, "parked": result.parked, "pending_after": result.pending_after,
        "limit_reached": result.limit_reached, "dry_run": result.dry_run,
        "success_rate": dg.MetadataValue.float(round(result.success_rate, 4)),
    }
    if result.dry_run:
        metadata["would_send"] = result.would_send
    grown = result.dead_letters_after - result.dead_letters_before
    checks = [
        dg.AssetCheckResult(
            asset_key=key, check_name=NO_NEW_DEAD_LETTERS, passed=grown <= 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"dead_letters_before": result.dead_letters_before,
                      "dead_letters_after": result.dead_letters_after, "dead_lettered_this_run": result.dead_lettered}),
        dg.AssetCheckResult(
            asset_key=key, check_name=SUCCESS_RATE, passed=result.success_rate >= min_success_rate,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"success_rate": dg.MetadataValue.float(round(result.success_rate, 4)),
                      "threshold": dg.MetadataValue.float(min_success_rate), "attempted": result.attempted}),
    ]
    return dg.MaterializeResult(asset_key=key, metadata=metadata, check_results=checks)


def record_fast_lane_writes(warehouse_path: str, inbox_path: str | Path) -> int:
    """Copy the writes the fast lane and the sign-up connector made since the last run from the gateway inbox into
    reverse_etl.sync_log, so the warehouse keeps one audit trail of every change; returns how many rows were
    copied."""
    if not Path(inbox_path).exists():
        return 0
    inbox = Inbox(inbox_path)
    try:
        rows = inbox.unimported_audit()
        if rows:
            with duckdb.connect(warehouse_path) as con:
                append_external_log(con, FAST_LANE_RUN_ID, rows)
            inbox.mark_audit_imported(row["id"] for row in rows)
    finally:
        inbox.close()
    return len(rows)


@dg.asset(
    key=SALESFORCE_KEY,
    deps=[CONTACTS_TO_CREATE, EXTERNAL_IDS_TO_PUSH],
    group_name="reverse_etl",
    pool="warehouse",
    check_specs=sync_checks(SALESFORCE_KEY),
    description="Upserts new contacts (external id = identity id) and sets or clears external ids in Salesforce.",
)
def salesforce_contacts(context: dg.AssetExecutionContext, config: ReverseEtlConfig, warehouse: WarehouseResource,
                        salesforce: SalesforceResource, graph: GraphResource, field_mapping: FieldMappingResource,
                        inbox: InboxResource) -> dg.MaterializeResult:
    if not salesforce.configured:
        raise dg.Failure("Salesforce is not configured: set SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET")
    with warehouse.exclusive(context.log):
        result = push_salesforce(
            warehouse.path, salesforce.settings(), field_mapping.for_client(graph.client_id or salesforce.client_id),
            context.run.run_id,
            dry_run=config.dry_run, max_attempts=config.max_attempts, max_workers=config.max_workers,
            bulk_threshold=config.bulk_threshold, validation_policy=config.validation_policy)
        if result.limit_reached:
            context.log.warning("Salesforce API request limit reached: %d records stay pending for the next run",
                                result.pending_after)
        recorded = record_fast_lane_writes(warehouse.path, inbox.path)
    return sync_materialization(SALESFORCE_KEY, result, config.min_success_rate,
                                extra_metadata={"fast_lane_writes_recorded": recorded})


@dg.asset(
    key=B2C_KEY,
    # after the Salesforce push: contacts it creates reach B2C through the next link run
    deps=[EXTERNAL_IDS_TO_PUSH, SALESFORCE_KEY],
    group_name="reverse_etl",
    pool="warehouse",
    check_specs=sync_checks(B2C_KEY),
    description="Writes the CRM contact id onto B2C users (custom attribute) through Graph $batch.",
)
def b2c_contact_ids(context: dg.AssetExecutionContext, config: ReverseEtlConfig, warehouse: WarehouseResource,
                    graph: GraphResource, field_mapping: FieldMappingResource) -> dg.MaterializeResult:
    if not graph.configured:
        raise dg.Failure("B2C is not configured: set B2C_TENANT_ID, B2C_CLIENT_ID and B2C_CLIENT_SECRET")
    with warehouse.exclusive(context.log):
        result = push_b2c(warehouse.path, graph.settings(), field_mapping.for_client(graph.client_id), context.run.run_id,
                          dry_run=config.dry_run, max_attempts=config.max_attempts, max_workers=config.max_workers)
    return sync_materialization(B2C_KEY, result, config.min_success_rate)


defs = dg.Definitions(assets=[salesforce_contacts, b2c_contact_ids])
