"""Run a job of the code location from Python or the command line so that the run shows on its job's page.

The Dagster UI lists a job's runs by the run's repository label (the tag ``.dagster/repository`` =
``<repository>@<code location>``), which Dagster sets only on runs launched through a code location (the UI, a
sensor, a schedule). A run executed in process (``execute_in_process``, and ``dg launch --job``, which executes
the job in process) has none: it shows in the run list but not on its job's page. Runs started here carry the
label of this code location, so the demo's runs and a command-line run sit with the scheduled ones.

    python -m orchestration.runs full_sync                 # on $DAGSTER_HOME's instance, like `make dev`
    python -m orchestration.runs ingest_and_link --config-json '{"ops": {...}}'
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence

import dagster as dg

from orchestration.definitions import build_definitions

# workspace.yaml's location_name and [tool.dg.project] code_location_name (tests hold the three equal)
CODE_LOCATION = "idlink"
# the tags Dagster gives a run launched through a code location (what the UI filters a job's runs by)
REPOSITORY_LABEL_TAG = ".dagster/repository"
CODE_LOCATION_TAG = "dagster/code_location"


def code_location_tags(defs: dg.Definitions) -> dict[str, str]:
    return {REPOSITORY_LABEL_TAG: f"{defs.get_repository_def().name}@{CODE_LOCATION}",
            CODE_LOCATION_TAG: CODE_LOCATION}


def run_job(defs: dg.Definitions, job_name: str, instance: dg.DagsterInstance, *,
            run_config: Mapping | None = None, tags: Mapping[str, str] | None = None,
            asset_selection: Sequence[dg.AssetKey] | None = None,
            raise_on_error: bool = False) -> dg.ExecuteInProcessResult:
    """Execute ``job_name`` (only ``asset_selection`` of it, when given) in this process on ``instance``, as a run
    of this code location's job."""
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, run_config=dict(run_config or {}), raise_on_error=raise_on_error,
        tags={**code_location_tags(defs), **(tags or {})}, asset_selection=list(asset_selection or []) or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", help="full_sync, ingest_and_link, ...")
    parser.add_argument("--config-json", default="{}", help="run config as JSON")
    parser.add_argument("--select", action="append", default=[], metavar="ASSET",
                        help="materialize only this asset of the job (repeatable; a/b for a key of two parts)")
    args = parser.parse_args(argv)
    defs = build_definitions()
    instance = dg.DagsterInstance.get()  # $DAGSTER_HOME's, which make sets (data/dagster_home)
    result = run_job(defs, args.job, instance, run_config=json.loads(args.config_json),
                     asset_selection=[dg.AssetKey.from_user_string(key) for key in args.select])
    print(f"{args.job}: {'succeeded' if result.success else 'failed'} (run {result.run_id})")
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
