"""The two jobs people run: link without touching outside systems, or sync everything."""
import dagster as dg

ingest_and_link_job = dg.define_asset_job(
    name="ingest_and_link",
    selection=dg.AssetSelection.groups("ingestion", "privacy", "linking", "publishing"),
    description="Ingest identities and CRM contacts, rebuild the link tables and publish them. Writes nothing to "
    "outside systems.",
)

full_sync_job = dg.define_asset_job(
    name="full_sync",
    selection=dg.AssetSelection.groups("ingestion", "privacy", "linking", "publishing",
                                                "reverse_etl"),
    description="Ingest, link, and push new contacts and external IDs back to the CRM and the identity providers.",
)

defs = dg.Definitions(jobs=[ingest_and_link_job, full_sync_job])
