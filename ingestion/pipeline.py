"""dlt pipelines writing into the warehouse (the DuckDB file, or Postgres), and convenience runs usable without
Dagster."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
from warehouse import Warehouse

Location = Warehouse | str | os.PathLike  # a warehouse, or the path of a DuckDB file


def warehouse_pipeline(pipeline_name: str, dataset_name: str, location: Location,
                       progress: bool = False) -> dlt.Pipeline:
    """A dlt pipeline loading into the warehouse: dlt's DuckDB destination on the file (absolute path; its folder
    is created) or its Postgres destination. The pipeline's working folder is in the warehouse's local folder
    (on Postgres a cache: dlt restores its state from the destination where it is missing). ``progress`` logs
    dlt's load progress."""
    warehouse = Warehouse.of(location)
    # arrow items carry no dlt bookkeeping columns unless asked; the raw-table contract includes both
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True
    # a loaded package's job files are full copies of the rows: personal data stays in the warehouse only
    dlt.config["load.delete_completed_jobs"] = True
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination(warehouse),
        dataset_name=dataset_name,
        pipelines_dir=str(warehouse.local_dir / "dlt_pipelines"),
        progress="log" if progress else None,
    )


def destination(warehouse: Warehouse) -> Any:
    """dlt's destination for this warehouse."""
    if warehouse.url:
        return dlt.destinations.postgres(credentials=_with_password(warehouse.url))
    return dlt.destinations.duckdb(credentials=str(warehouse.path))


def _with_password(url: str) -> str:
    """dlt insists on a password; a URL without one (trust or ~/.pgpass authentication) gets an empty one, which
    libpq takes as none given."""
    parts = urlsplit(url)
    if parts.password is not None or "@" not in parts.netloc:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user}:@{host}"))


def run_b2c(
    settings: GraphSettings,
    location: Location,
    identity_ids: Sequence[str] = (),
    pipeline_name: str = "b2c",
    page_size: int = 999,
    workers: int | None = None,
) -> LoadInfo:
    """Load B2C users into ``raw_b2c`` (full scan with change detection, or just ``identity_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, B2C_DATASET, location)
    return pipeline.run(
        b2c_source(
            settings=settings,
            warehouse=Warehouse.of(location),
            identity_ids=identity_ids,
            dataset_name=B2C_DATASET,
            page_size=page_size,
            workers=workers,
        )
    )


def run_salesforce(
    settings: SalesforceSettings,
    location: Location,
    contact_ids: Sequence[str] = (),
    pipeline_name: str = "salesforce",
    page_size: int | None = None,
    workers: int | None = None,
) -> LoadInfo:
    """Load Salesforce contacts into ``raw_salesforce`` (incremental on SystemModstamp, or just ``contact_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, SALESFORCE_DATASET, location)
    return pipeline.run(salesforce_source(settings=settings, contact_ids=contact_ids, page_size=page_size,
                                          workers=workers))


def run_akamai(settings: AkamaiSettings, location: Location, identity_ids: Sequence[str] = (),
               pipeline_name: str = "akamai") -> LoadInfo:
    """Load Akamai users into ``raw_akamai`` (full scan, or just ``identity_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, AKAMAI_DATASET, location)
    return pipeline.run(akamai_source(settings=settings, warehouse=Warehouse.of(location),
                                      identity_ids=identity_ids, dataset_name=AKAMAI_DATASET))


def run_scim(settings: ScimSettings, location: Location, identity_ids: Sequence[str] = (),
             pipeline_name: str = "scim", workers: int | None = None) -> LoadInfo:
    """Load SCIM users into ``raw_scim`` (changes since the last load where the server filters, else a full scan;
    or just ``identity_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, SCIM_DATASET, location)
    return pipeline.run(scim_source(settings=settings, warehouse=Warehouse.of(location), identity_ids=identity_ids,
                                    dataset_name=SCIM_DATASET, workers=workers))


def run_dynamics(settings: DataverseSettings, location: Location, contact_ids: Sequence[str] = (),
                 pipeline_name: str = "dynamics", workers: int | None = None) -> LoadInfo:
    """Load Dynamics contacts into ``raw_dynamics`` (changes since the delta link, or just ``contact_ids``)."""
    pipeline = warehouse_pipeline(pipeline_name, DYNAMICS_DATASET, location)
    return pipeline.run(dynamics_source(settings=settings, warehouse=Warehouse.of(location),
                                        contact_ids=contact_ids, dataset_name=DYNAMICS_DATASET, workers=workers))
