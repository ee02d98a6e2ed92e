"""``python -m tests.chaos.full_sync``: one full_sync run in this process (settings from the environment), as the
chaos suite starts it so it can kill it at any point. Exit status 0 when the run succeeded."""
from __future__ import annotations

import sys

import dagster as dg

from orchestration.definitions import build_definitions


def main() -> int:
    job = build_definitions().resolve_job_def("full_sync")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
