"""Publishing as a Dagster asset: after every linking run, each role's database (or, on a Postgres warehouse,
its granted schemas) is replaced by this run's copy (``publishing.publish``), so analysts query at any time and
never hold the pipeline's warehouse.

Metadata carries paths, row counts and seconds only.
"""
import dagster as dg

from orchestration.catalog import OWNERS, STORAGE_KIND, WAREHOUSE_KIND
from orchestration.defs.linking import linking_dbt_assets
from orchestration.defs.resources import PublishingResource, WarehouseResource
from publishing import publish, published_schemas
from warehouse import PUBLISH

PUBLISHED_KEY = dg.AssetKey("published_databases")


def published_view_keys(dbt_assets: dg.AssetsDefinition) -> list[dg.AssetKey]:
    """The dbt views the publisher copies (models/published/<schema>/<schema>__<relation>.sql)."""
    prefixes = tuple(f"{schema}__" for schema in published_schemas())
    return sorted((key for key in dbt_assets.keys if key.path[-1].startswith(prefixes)),
                  key=lambda key: key.to_user_string())


@dg.asset(
    key=PUBLISHED_KEY,
    deps=published_view_keys(linking_dbt_assets),
    group_name="publishing",
    pool="warehouse",
    kinds={"duckdb"},
    owners=OWNERS,
    # several schemas copied into one file per role: no single table to name; each materialization names the files
    metadata={STORAGE_KIND: WAREHOUSE_KIND},
    description="The analyst, compliance and (when configured) steward databases, each replaced atomically by "
    "this run's copy of its schemas: readers always see one complete run and never block the pipeline.",
)
def published_databases(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        publishing: PublishingResource) -> dg.MaterializeResult:
    settings = publishing.settings()
    # on DuckDB it attaches the warehouse file: the lock keeps every other step out meanwhile
    with warehouse.exclusive(PUBLISH, context.log):
        publications = publish(warehouse.warehouse, settings, context.run.run_id)
    metadata: dict = {"run_id": context.run.run_id}
    for publication in publications:
        if publication.path is not None:  # on Postgres the schemas are on the server
            metadata[f"{publication.role}_path"] = dg.MetadataValue.path(str(publication.path))
        metadata[f"{publication.role}_tables"] = dg.MetadataValue.json(publication.tables)
        metadata[f"{publication.role}_seconds"] = dg.MetadataValue.float(publication.seconds)
    return dg.MaterializeResult(metadata=metadata)


defs = dg.Definitions(assets=[published_databases])
