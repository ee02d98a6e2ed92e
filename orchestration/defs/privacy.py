"""Privacy as Dagster assets: erasure requests applied by every run before the dbt build (staging waits for
``privacy/erased_subjects``, a dbt source), the warehouse rewritten after the build when someone was erased (the
CRM policy of an erasure is applied by each CRM's push), and a daily job purging what outlived its retention.
Metadata carries counts only.
"""
import dataclasses

import dagster as dg

from orchestration.catalog import OWNERS, STORAGE_KIND, WAREHOUSE_KIND, storage
from orchestration.defs.akamai import USERS_KEY as AKAMAI_USERS_KEY
from orchestration.defs.ingestion import B2C_USERS_KEY, SALESFORCE_CONTACT_KEY
from orchestration.defs.linking import linking_dbt_assets
from orchestration.defs.resources import InboxResource, PrivacyResource, WarehouseResource
from privacy import CrmPolicy, apply_erasures, compact_warehouse, purge_expired
from warehouse import PRIVACY

ERASED_SUBJECTS_KEY = dg.AssetKey(["privacy", "erased_subjects"])
COMPACTION_KEY = dg.AssetKey(["privacy", "warehouse_compaction"])
RETENTION_KEY = dg.AssetKey(["privacy", "retention_purge"])


@dg.asset(
    key=ERASED_SUBJECTS_KEY,
    deps=[B2C_USERS_KEY, SALESFORCE_CONTACT_KEY, AKAMAI_USERS_KEY],
    group_name="privacy",
    pool="warehouse",
    owners=OWNERS,
    kinds={"python", WAREHOUSE_KIND},
    metadata=storage("privacy.erased_subjects"),
    description="Applies erasure requests (python -m privacy erase; provider deletions when IDLINK_ERASE_DELETED): "
    "the person's rows leave every raw table, the inbox and the reverse-ETL state; keys and the time stay.",
)
def erased_subjects(context: dg.AssetExecutionContext, warehouse: WarehouseResource, inbox: InboxResource,
                    privacy: PrivacyResource) -> dg.MaterializeResult:
    with warehouse.exclusive(PRIVACY, context.log):  # the Dynamics and SCIM loads may run meanwhile
        result = apply_erasures(warehouse.warehouse, inbox.path, CrmPolicy(privacy.crm_policy),
                                erase_deleted=privacy.erase_deleted)
    if result.erased:
        context.log.info("erased %d people; CRM policy %s for %d contacts", result.erased, privacy.crm_policy,
                         result.contacts)
    return dg.MaterializeResult(metadata={"erased": result.erased, "crm_contacts": result.contacts,
                                          "raw_rows_removed": result.raw_rows,
                                          "inbox_events_removed": result.inbox_events,
                                          "crm_policy": privacy.crm_policy})


@dg.asset(
    key=COMPACTION_KEY,
    deps=sorted(linking_dbt_assets.keys, key=lambda key: key.to_user_string()),
    group_name="privacy",
    pool="warehouse",
    owners=OWNERS,
    kinds={"python", WAREHOUSE_KIND},
    # the whole warehouse rewritten: no single table to name
    metadata={STORAGE_KIND: WAREHOUSE_KIND},
    description="After a run that erased someone: the warehouse rewritten into a fresh file (on Postgres its "
    "tables by VACUUM FULL), so no block of the erased rows or of the tables dbt replaced stays on disk. A run "
    "that erased nobody does nothing.",
)
def warehouse_compaction(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.exclusive(PRIVACY, context.log):
        return dg.MaterializeResult(metadata={"rewritten": compact_warehouse(warehouse.warehouse)})


@dg.asset(
    key=RETENTION_KEY,
    group_name="retention",
    pool="warehouse",
    owners=OWNERS,
    kinds={"python", WAREHOUSE_KIND},
    metadata={STORAGE_KIND: WAREHOUSE_KIND},  # rows of many tables and the inbox: no single table to name
    description="Purges what outlived its retention (RETENTION_*_DAYS): tombstones (then the warehouse is "
    "rewritten), ended snapshot versions, sync log rows, dead letters, handed-on inbox events.",
)
def retention_purge(context: dg.AssetExecutionContext, warehouse: WarehouseResource, inbox: InboxResource,
                    privacy: PrivacyResource) -> dg.MaterializeResult:
    with warehouse.exclusive(PRIVACY, context.log):
        result = purge_expired(warehouse.warehouse, inbox.path, privacy.retention())
    return dg.MaterializeResult(metadata=dataclasses.asdict(result))


retention_job = dg.define_asset_job(
    name="retention_purge",
    selection=dg.AssetSelection.groups("retention"),
    description="Purge everything kept longer than its retention period.",
)

daily_retention_purge = dg.ScheduleDefinition(
    name="daily_retention_purge",
    job=retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="03:30 UTC: the retention purge.",
)

defs = dg.Definitions(assets=[erased_subjects, warehouse_compaction, retention_purge], jobs=[retention_job],
                      schedules=[daily_retention_purge])
