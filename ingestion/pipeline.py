"""dlt pipelines writing into the one DuckDB warehouse, and convenience runs usable without Dagster."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import dlt
from dlt.common.pipeline import LoadInfo

from clients.settings import GraphSettings, SalesforceSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"


def resolve_warehouse_path(value: str | None = None) -> str:
    """Absolute path of the warehouse (``value``, else ``WAREHOUSE_PATH``, else the default under the repo root).

    Relative paths are taken against the repo root; the folder is created.
    """
    raw = value or os.environ.get("WAREHOUSE_PATH") or DEFAULT_WAREHOUSE
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = REPO_ROOT / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path.resolve())


def warehouse_pipeline(pipeline_name: str, dataset_name: str, warehouse_path: str) -> dlt.Pipeline:
    """A dlt pipeline loading into the DuckDB file at ``warehouse_path``; its state lives next to the data."""
    warehouse = resolve_warehouse_path(warehouse_path)
    pipelines_dir = os.path.join(os.path.dirname(warehouse), "dlt_pipelines")
    # arrow items carry no dlt bookkeeping columns unless asked; the raw-table contract includes both
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=dlt.destinations.duckdb(credentials=warehouse),
        dataset_name=dataset_name,
        pipelines_dir=pipelines_dir,
        progress="log" if os.environ.get("IDLINK_DLT_PROGRESS") else None,
    )


def run_b2c(
    settings: GraphSettings | None = None,
    warehouse_path: str | None = None,
    identity_ids: Sequence[str] = (),
    pipeline_name: str = "b2c",
    page_size: int = 999,
) -> LoadInfo:
    """Load B2C users into ``raw_b2c`` (full scan with change detection, or just ``identity_ids``)."""
    from ingestion.b2c import DATASET, b2c_source

    warehouse = resolve_warehouse_path(warehouse_path)
    pipeline = warehouse_pipeline(pipeline_name, DATASET, warehouse)
    return pipeline.run(
        b2c_source(
            settings=settings,
            warehouse_path=warehouse,
            identity_ids=identity_ids,
            dataset_name=DATASET,
            page_size=page_size,
        )
    )


def run_salesforce(
    settings: SalesforceSettings | None = None,
    warehouse_path: str | None = None,
    contact_ids: Sequence[str] = (),
    pipeline_name: str = "salesforce",
    page_size: int | None = None,
) -> LoadInfo:
    """Load Salesforce contacts into ``raw_salesforce`` (incremental on SystemModstamp, or just ``contact_ids``)."""
    from ingestion.salesforce import DATASET, salesforce_source

    warehouse = resolve_warehouse_path(warehouse_path)
    pipeline = warehouse_pipeline(pipeline_name, DATASET, warehouse)
    return pipeline.run(salesforce_source(settings=settings, contact_ids=contact_ids, page_size=page_size))
