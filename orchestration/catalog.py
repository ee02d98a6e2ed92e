"""How idlink's assets present themselves in Dagster: who owns them, where each one is stored, how fresh it must
be. Every asset module takes these from here, and ``tests/orchestration/test_conventions.py`` holds every asset and
check of the code location to them, so an asset added later follows them or fails the tests.
"""
from __future__ import annotations

from datetime import timedelta

import dagster as dg

# The team answering for the pipeline: shown on every asset and used to route questions from the UI.
OWNERS = ["team:identity-data"]

# The warehouse is DuckDB (WAREHOUSE_PATH) unless WAREHOUSE_URL points every stage at Postgres; the storage kind
# shown in the UI is the default one, dbt's own assets say the adapter they were parsed with.
WAREHOUSE_KIND = "duckdb"

# incremental_sync runs every 15 minutes and the sensors in between: an asset not refreshed for half an hour has
# missed two runs (warn), one not refreshed for an hour has missed four (fail).
PIPELINE_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=1),
                                                   warn_window=timedelta(minutes=30))


TABLE_NAME = "dagster/table_name"
STORAGE_KIND = "dagster/storage_kind"
ROW_COUNT = "dagster/row_count"


def raw_table_key(schema: str, table: str) -> dg.AssetKey:
    """The key of a raw table loaded by dlt, ``raw_b2c_users`` for ``raw_b2c.users``: one name that says what
    the table is wherever Dagster shows only the last part of a key (the asset graph), and the key dbt's source
    of the same table maps to."""
    return dg.AssetKey(f"{schema}_{table}")


def storage(table_name: str, storage_kind: str = WAREHOUSE_KIND) -> dict[str, str]:
    """Where an asset lives, as the UI shows it (Dagster's table metadata keys): ``schema.table`` in the warehouse,
    or ``system.object`` in an outside system."""
    return {TABLE_NAME: table_name, STORAGE_KIND: storage_kind}
