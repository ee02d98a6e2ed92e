"""What a writing step holds the warehouse for (``Warehouse.exclusive(scope)``).

On Postgres each scope is its own advisory lock: loads of different datasets, a build and pushes to different
systems run side by side, while two loads of one dataset (they share dlt's staging schema and pipeline state),
two dbt builds (they swap the same tables) or two pushes to one system (they would send the same records twice)
wait for each other. On DuckDB every scope is the one lock of the file.
"""

BUILD = "dbt_build"  # the dbt build: every model, snapshot and test
PUBLISH = "publish"  # the publication of the role schemas
PRIVACY = "privacy"  # applying erasures (raw rows, reverse-ETL state) and retention purges
DECISIONS = "link_decisions"  # a steward's decision appended to link_decisions.decisions


def load_scope(dataset: str) -> str:
    """A dlt load into ``dataset`` (``raw_b2c``, ``raw_salesforce``, ...)."""
    return f"load:{dataset}"


def push_scope(system: str) -> str:
    """A reverse-ETL push to ``system`` (its diff, intent and outcome bookkeeping)."""
    return f"push:{system}"
