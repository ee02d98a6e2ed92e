"""Reverse-ETL assets: push new contacts and external ids to Salesforce, then CRM contact ids to B2C, and what
every push asset shares (``push_asset``, ``push_materialization``).

Each materialization is one push through ``reverse_etl.runner``; its metadata carries counts only (no PII), the run
log says what it wrote and why a write failed (keys and codes, never values), and two checks judge it: the share
of sent records that were accepted (blocking: a push that mostly fails fails its run and holds back the pushes
after it) and whether the dead-letter table grew (a warning: a record the system refuses for good is a data
problem to review, not a reason to stop everyone else's writes).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from inbox import Inbox
from orchestration.catalog import OWNERS, storage
from orchestration.defs.resources import (
    FieldMappingResource,
    GraphResource,
    InboxResource,
    SalesforceResource,
    WarehouseResource,
)
from reverse_etl.outcomes import SYSTEM_NAMES, run_pushes
from reverse_etl.runner import SyncResult, push_b2c, push_salesforce
from reverse_etl.salesforce_writer import DEFAULT_BULK_THRESHOLD, ValidationPolicy
from reverse_etl.state import DEFAULT_MAX_ATTEMPTS, append_external_log
from warehouse import Connection, Warehouse, push_scope

SALESFORCE_KEY = dg.AssetKey(["reverse_etl", "salesforce_contacts"])
B2C_KEY = dg.AssetKey(["reverse_etl", "b2c_contact_ids"])
CONTACTS_TO_CREATE = dg.AssetKey("contacts_to_create")
EXTERNAL_IDS_TO_PUSH = dg.AssetKey("external_ids_to_push")
CONTACT_FIELDS_TO_PUSH = dg.AssetKey("contact_fields_to_push")
NO_NEW_DEAD_LETTERS = "no_new_dead_letters"
SUCCESS_RATE = "success_rate"
FAST_LANE_RUN_ID = "fast_lane"  # run_id of the sync_log rows the near-real-time fast lane wrote


class ReverseEtlConfig(dg.Config):
    dry_run: bool = False  # compute and log what would be sent; no write calls
    min_success_rate: float = 0.95  # share of sent records that must succeed for the success-rate check
    # below this many records sent, the rate says little (1 failure of 1 is 0%): the check passes, saying so,
    # and each refused record is retried, then dead-lettered (no_new_dead_letters warns)
    min_attempts_to_judge: int = 20
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # attempts before a permanently failing record is dead-lettered
    max_workers: int = 4  # concurrent requests
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD  # above this many records of one kind, a Bulk API 2.0 job
    # a new contact the CRM refuses for a field value: created without the refused optional fields
    # (drop_field, flagged in reverse_etl.sync_state.dropped_fields) or dead-lettered at once (dead_letter)
    validation_policy: ValidationPolicy = ValidationPolicy.DROP_FIELD


def push_asset(key: dg.AssetKey, *, system: str, kind: str, target: str, deps: list[dg.AssetKey],
               description: str) -> Any:
    """The decorator of a push asset: group ``reverse_etl``, pool ``warehouse``, its two checks, and as storage
    the object it writes on in the outside system (``salesforce.Contact``)."""
    return dg.asset(key=key, deps=deps, group_name="reverse_etl", pool="warehouse", check_specs=sync_checks(key),
                    owners=OWNERS, kinds={"python", kind}, metadata=storage(f"{system}.{target}", kind),
                    description=description)


def sync_checks(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(NO_NEW_DEAD_LETTERS, asset=key,
                          description="No record was dead-lettered by this push. A warning: the record failed for "
                                      "good and waits in reverse_etl.dead_letters for a person; the other writes "
                                      "go on."),
        dg.AssetCheckSpec(SUCCESS_RATE, asset=key, blocking=True,
                          description="Enough of the records sent by this push were accepted (min_success_rate, "
                                      "judged from min_attempts_to_judge records sent; fewer, or none, pass with a "
                                      "note). Blocking: a push that mostly fails fails the run and holds back the "
                                      "pushes after it; writes are idempotent, so the next run resends them."),
    ]


def push_materialization(context: dg.AssetExecutionContext, key: dg.AssetKey, result: SyncResult,
                         config: ReverseEtlConfig, warehouse: WarehouseResource,
                         extra_metadata: dict | None = None) -> dg.MaterializeResult:
    """Counts as metadata and the two check results for one push, after saying in the run log what it wrote
    and, for each kind of refusal, its code, the keys of a few records and what it means."""
    if not result.dry_run:
        with warehouse.connect() as con:
            log_pushes(context.log, result, con)
    return sync_materialization(key, result, config, extra_metadata)


def push_if_configured(context: dg.AssetExecutionContext, key: dg.AssetKey, system: str, configured: bool,
                       push: Callable[[], SyncResult], config: ReverseEtlConfig, warehouse: WarehouseResource,
                       unconfigured: str, unconfigured_level: str = "info") -> dg.MaterializeResult:
    """One optional system's push under its scope of the warehouse: ``push()`` when ``configured``, else an empty
    result and ``unconfigured`` in the run log at ``unconfigured_level`` (a warning where nothing else would tell
    the data team what is missing); the materialization says which."""
    with warehouse.exclusive(push_scope(system), context.log):
        if configured:
            result = push()
        else:
            getattr(context.log, unconfigured_level)(unconfigured)
            result = SyncResult(system=system, run_id=context.run.run_id, dry_run=config.dry_run)
        done = push_materialization(context, key, result, config, warehouse)
    return dg.MaterializeResult(asset_key=key, metadata={**done.metadata, "configured": configured},
                                check_results=done.check_results)


def log_pushes(log: Any, result: SyncResult, con: Connection) -> None:
    pushes = run_pushes(con, result.run_id, result.system)
    log.info("%s: %s (%d sent, %d unchanged, %d API calls)", SYSTEM_NAMES.get(result.system, result.system),
             pushes.summary(result.system), result.attempted, result.skipped, result.api_calls)
    for failure in pushes.failures:
        log.warning("%s %s %s for %s%s: %s", failure.system, failure.operation, failure.code(),
                    ", ".join(failure.sample_keys), " and others" if failure.count > len(failure.sample_keys)
                    else "", failure.explain())


def sync_materialization(key: dg.AssetKey, result: SyncResult, config: ReverseEtlConfig,
                         extra_metadata: dict | None = None) -> dg.MaterializeResult:
    """Counts as metadata, plus the two check results, for one push."""
    metadata = {
        **(extra_metadata or {}),
        "system": result.system,
        "attempted": result.attempted, "succeeded": result.succeeded, "failed": result.failed,
        "skipped": result.skipped, "dead_lettered": result.dead_lettered, "api_calls": result.api_calls,
        "invalid": result.invalid, "parked": result.parked, "pending_after": result.pending_after,
        "limit_reached": result.limit_reached, "dry_run": result.dry_run,
    }
    if result.attempted:
        metadata["success_rate"] = dg.MetadataValue.float(round(result.success_rate, 4))
    if result.dry_run:
        metadata["would_send"] = result.would_send
    grown = result.dead_letters_after - result.dead_letters_before
    checks = [
        dg.AssetCheckResult(
            asset_key=key, check_name=NO_NEW_DEAD_LETTERS, passed=grown <= 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{grown} record{'' if grown == 1 else 's'} failed for good in this push" if grown > 0
            else None,
            metadata={"dead_letters_before": result.dead_letters_before,
                      "dead_letters_after": result.dead_letters_after, "dead_lettered_this_run": result.dead_lettered}),
        success_rate_check(key, result, config),
    ]
    return dg.MaterializeResult(asset_key=key, metadata=metadata, check_results=checks)


def success_rate_check(key: dg.AssetKey, result: SyncResult, config: ReverseEtlConfig) -> dg.AssetCheckResult:
    """The accepted share of the records sent, judged only from ``min_attempts_to_judge`` records on: with none
    sent there is nothing to judge, with a few a single refusal would swing it."""
    metadata: dict[str, Any] = {"attempted": result.attempted, "succeeded": result.succeeded,
                                "threshold": dg.MetadataValue.float(config.min_success_rate),
                                "min_attempts_to_judge": config.min_attempts_to_judge}
    if result.attempted == 0:
        return dg.AssetCheckResult(asset_key=key, check_name=SUCCESS_RATE, passed=True, metadata=metadata,
                                   description="not judged: nothing was sent")
    rate = round(result.success_rate, 4)
    metadata["success_rate"] = dg.MetadataValue.float(rate)
    if result.attempted < config.min_attempts_to_judge:
        return dg.AssetCheckResult(
            asset_key=key, check_name=SUCCESS_RATE, passed=True, metadata=metadata,
            description=f"not judged: {result.succeeded} of {result.attempted} accepted, fewer than the "
                        f"{config.min_attempts_to_judge} records a rate needs")
    passed = rate >= config.min_success_rate
    return dg.AssetCheckResult(
        asset_key=key, check_name=SUCCESS_RATE, passed=passed, severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata, description=f"{result.succeeded} of {result.attempted} accepted ({rate:.1%}; "
                                       f"{'at least' if passed else 'below'} {config.min_success_rate:.0%})")


def record_fast_lane_writes(warehouse: Warehouse, inbox_path: str | Path) -> int:
    """Copy the writes the fast lane and the sign-up connector made since the last run from the gateway inbox into
    reverse_etl.sync_log, so the warehouse keeps one audit trail of every change; returns how many rows were
    copied."""
    if not Path(inbox_path).exists():
        return 0
    inbox = Inbox(inbox_path)
    try:
        rows = inbox.unimported_audit()
        if rows:
            with warehouse.connect() as con:
                append_external_log(con, FAST_LANE_RUN_ID, rows)
            inbox.mark_audit_imported(row["id"] for row in rows)
    finally:
        inbox.close()
    return len(rows)


@push_asset(
    SALESFORCE_KEY, system="salesforce", kind="salesforce", target="Contact",
    deps=[CONTACTS_TO_CREATE, EXTERNAL_IDS_TO_PUSH, CONTACT_FIELDS_TO_PUSH],
    description="Upserts new contacts (external id = identity id), updates the fields linked contacts follow and "
                "sets or clears external ids in Salesforce, each identity through its client's mapping entry.",
)
def salesforce_contacts(context: dg.AssetExecutionContext, config: ReverseEtlConfig, warehouse: WarehouseResource,
                        salesforce: SalesforceResource, field_mapping: FieldMappingResource,
                        inbox: InboxResource) -> dg.MaterializeResult:
    if not salesforce.configured:
        raise dg.Failure("Salesforce is not configured: set SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET")
    with warehouse.exclusive(push_scope("salesforce"), context.log):
        result = push_salesforce(
            warehouse.warehouse, salesforce.settings(), field_mapping.mapping(),
            context.run.run_id,
            dry_run=config.dry_run, max_attempts=config.max_attempts, max_workers=config.max_workers,
            bulk_threshold=config.bulk_threshold, validation_policy=config.validation_policy)
        if result.limit_reached:
            context.log.warning("Salesforce API request limit reached: %d records stay pending for the next run",
                                result.pending_after)
        recorded = record_fast_lane_writes(warehouse.warehouse, inbox.path)
        return push_materialization(context, SALESFORCE_KEY, result, config, warehouse,
                                    extra_metadata={"fast_lane_writes_recorded": recorded})


@push_asset(
    B2C_KEY, system="b2c", kind="azure", target="users",
    # after the Salesforce push: contacts it creates reach B2C through the next link run
    deps=[EXTERNAL_IDS_TO_PUSH, SALESFORCE_KEY],
    description="Writes the CRM contact id onto B2C users (custom attribute) through Graph $batch.",
)
def b2c_contact_ids(context: dg.AssetExecutionContext, config: ReverseEtlConfig, warehouse: WarehouseResource,
                    graph: GraphResource, field_mapping: FieldMappingResource) -> dg.MaterializeResult:
    if not graph.configured:
        raise dg.Failure("B2C is not configured: set B2C_TENANT_ID, B2C_CLIENT_ID and B2C_CLIENT_SECRET")
    with warehouse.exclusive(push_scope("b2c"), context.log):
        result = push_b2c(warehouse.warehouse, graph.settings(), field_mapping.mapping(), context.run.run_id,
                          dry_run=config.dry_run, max_attempts=config.max_attempts,
                          max_workers=config.max_workers)
        return push_materialization(context, B2C_KEY, result, config, warehouse)


defs = dg.Definitions(assets=[salesforce_contacts, b2c_contact_ids])
