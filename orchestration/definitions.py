"""The Dagster code location: everything under `orchestration/defs/`, loaded with Dagster's defs-folder loader.

Each module of `defs/` contributes one `Definitions` object (its assets, checks, jobs, sensors or schedules);
`defs/resources.py` binds the resources from the environment each time the folder is loaded. Nothing here
touches the network, the warehouse or the dbt parser at import time. `dg check defs` and `dg list defs` read the
same folder (`[tool.dg]` in pyproject.toml).
"""
from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def build_definitions() -> dg.Definitions:
    """Load the defs folder; resources read the environment now (tests and the demo call this after setting it)."""
    return dg.load_from_defs_folder(project_root=PROJECT_ROOT)


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` and `dg` load: built when the code location loads, not when this module is imported."""
    return build_definitions()
