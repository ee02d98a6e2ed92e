"""The Dagster code location: every stage's definitions merged, with resources bound from the environment.

Each module under `orchestration/` exports a module-level `defs`; nothing here touches the network, the
warehouse or the dbt parser at import time.
"""
import dagster as dg

from orchestration import (
    akamai_assets,
    ingestion_assets,
    jobs,
    linking_assets,
    realtime,
    reverse_etl_assets,
)
from orchestration.resources import build_resources


def build_definitions() -> dg.Definitions:
    """Merge the stages; resources read the environment now (tests call this after setting it)."""
    return dg.Definitions.merge(
        ingestion_assets.defs,
        akamai_assets.defs,
        linking_assets.defs,
        reverse_etl_assets.defs,
        jobs.defs,
        realtime.defs,
        dg.Definitions(resources=build_resources()),
    )


defs = build_definitions()
