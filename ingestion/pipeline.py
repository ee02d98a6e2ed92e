"""dlt pipelines writing into the one DuckDB warehouse, and convenience runs usable without Dagster."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import dlt
from dlt.common.pipeline import LoadInfo

from ingestion.akamai import DATASET as AKAMAI_DATASET
from ingestion.akamai import akamai_source
from ingestion.b2c import DATASET as B2C_DATASET
from ingestion.b2c import b2c_source
from ingestion.dynamics import DATASET as DYNAMICS_DATASET
from ingestion.dynamics import dynamics_source
from ingestion.salesforce import DATASET as SALESFORCE_DATASET
from ingestion.salesforce import salesforce_source
from ingestion.scim import DATASET as SCIM_DATASET
from ingestion.scim import scim_source
from settings import AkamaiSettings, DataverseSettings, GraphSettings, SalesforceSettings, ScimSettings


def warehouse_pipeline(pipeline_name: str, dataset_name: str, warehouse_path: str | os.PathLike,
                       progress: bool = False) -> dlt.Pipeline:
    """A dlt pipeline loading into the DuckDB file at ``warehouse_path`` (absolute; its folder is created);
    its state lives next to the data. ``progress`` logs dlt's load progress."""
    warehouse = Path(warehouse_path)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    # arrow items carry no dlt bookkeeping columns unless asked; the raw-table contract includes both
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True
    # a loaded package's job files are full copies of the rows: personal data stays in the warehouse only
    dlt.config["load.delete_completed_jobs"] = True
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=dlt.destinations.duckdb(credentials=str(warehouse)),
        dataset_name=dataset_name,
        pipelines_dir=str(warehouse.parent / "dlt_pipelines"),
        progress="log" if progress else None,
    )


def run_b2c(
    settings: GraphSettings,
    warehouse_path: str | os.PathLike,
    identity_ids: Sequence[str] = (),
    pipeline_name: str = "b2c",
    page_size: int = 999,
    workers: int | None = None,
) -> LoadInfo:
    """Load B2C users into ``raw_b2c`` (full scan with change detection, or just ``identity_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, B2C_DATASET, warehouse_path)
    return pipeline.run(
        b2c_source(
            settings=settings,
            warehouse_path=str(warehouse_path),
            identity_ids=identity_ids,
            dataset_name=B2C_DATASET,
            page_size=page_size,
            workers=workers,
        )
    )


def run_salesforce(
    settings: SalesforceSettings,
    warehouse_path: str | os.PathLike,
    contact_ids: Sequence[str] = (),
    pipeline_name: str = "salesforce",
    page_size: int | None = None,
    workers: int | None = None,
) -> LoadInfo:
    """Load Salesforce contacts into ``raw_salesforce`` (incremental on SystemModstamp, or just ``contact_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, SALESFORCE_DATASET, warehouse_path)
    return pipeline.run(salesforce_source(settings=settings, contact_ids=contact_ids, page_size=page_size,
                                          workers=workers))


def run_akamai(settings: AkamaiSettings, warehouse_path: str | os.PathLike, identity_ids: Sequence[str] = (),
               pipeline_name: str = "akamai") -> LoadInfo:
    """Load Akamai users into ``raw_akamai`` (full scan, or just ``identity_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, AKAMAI_DATASET, warehouse_path)
    return pipeline.run(akamai_source(settings=settings, warehouse_path=str(warehouse_path),
                                      identity_ids=identity_ids, dataset_name=AKAMAI_DATASET))


def run_scim(settings: ScimSettings, warehouse_path: str | os.PathLike, identity_ids: Sequence[str] = (),
             pipeline_name: str = "scim", workers: int | None = None) -> LoadInfo:
    """Load SCIM users into ``raw_scim`` (changes since the last load where the server filters, else a full scan;
    or just ``identity_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, SCIM_DATASET, warehouse_path)
    return pipeline.run(scim_source(settings=settings, warehouse_path=str(warehouse_path), identity_ids=identity_ids,
                                    dataset_name=SCIM_DATASET, workers=workers))


def run_dynamics(settings: DataverseSettings, warehouse_path: str | os.PathLike, contact_ids: Sequence[str] = (),
                 pipeline_name: str = "dynamics", workers: int | None = None) -> LoadInfo:
    """Load Dynamics contacts into ``raw_dynamics`` (changes since the delta link, or just ``contact_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, DYNAMICS_DATASET, warehouse_path)
    return pipeline.run(dynamics_source(settings=settings, warehouse_path=str(warehouse_path),
                                        contact_ids=contact_ids, dataset_name=DYNAMICS_DATASET, workers=workers))
