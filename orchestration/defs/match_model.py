"""Training the match model as its own asset (group `match_model`): `dbt run-operation train_match_model` learns the
Fellegi-Sunter parameters from the warehouse's own identities and contacts (dbt_project/macros/matching/training.sql)
and adds a version to `match_model.versions` / `match_model.parameters`, the tables the link build applies. It runs
on demand (materialize it, or launch the job `train_match_model`) and on the weekly schedule; the linking jobs
never retrain, they apply the latest version trained for the configured comparisons.

Metadata carries counts, probabilities and weights only: no identifier and no value of any record.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.catalog import OWNERS, WAREHOUSE_KIND, storage
from orchestration.defs.linking import dbt_environment, dbt_target_path, linking_project
from orchestration.defs.resources import WarehouseResource
from warehouse import BUILD, Connection

VERSIONS_KEY = dg.AssetKey(["match_model", "versions"])
PARAMETERS_KEY = dg.AssetKey(["match_model", "parameters"])

_VERSION_COLUMNS = ("version", "iterations", "converged", "max_change", "prior", "prior_weight", "identities",
                    "contacts", "random_pairs", "training_pairs", "settled_pairs", "estimated_matches",
                    "seeded_from_settled_pairs", "training_keys", "usable_training_keys", "training_seconds",
                    "training_identities")


def latest_version(con: Connection) -> dict[str, Any]:
    """The newest trained version's row of match_model.versions (what it was trained on and how EM ended)."""
    row = con.fetchone(f"select {', '.join(_VERSION_COLUMNS)} from match_model.versions "
                       "order by version desc limit 1")
    if row is None:
        raise RuntimeError("training wrote no version to match_model.versions")
    return dict(zip(_VERSION_COLUMNS, row))


def parameters_table(con: Connection, version: int) -> str:
    """The levels of one version as a Markdown table (comparison, level, m, u, match weight)."""
    rows = con.execute("""select comparison, level_name, m, u, match_weight from match_model.parameters
        where version = ? order by comparison, level""", [version])
    lines = ["| comparison | level | m | u | weight |", "|---|---|---:|---:|---:|"]
    for comparison, level, m, u, weight in rows:
        m_text = "" if m is None else f"{m:.4g}"
        lines.append(f"| {comparison} | {level} | {m_text} | {u:.4g} | {weight:+.2f} |")
    return "\n".join(lines)


def version_metadata(version: dict[str, Any], table: str) -> dict[str, Any]:
    floats = {"max_change", "prior", "prior_weight", "estimated_matches", "training_seconds"}
    metadata: dict[str, Any] = {
        name: (dg.MetadataValue.float(float(value)) if name in floats else value)
        for name, value in version.items() if value is not None
    }
    metadata["parameters"] = dg.MetadataValue.md(table)
    return metadata


@dg.multi_asset(
    specs=[
        dg.AssetSpec(VERSIONS_KEY, deps=[dg.AssetKey("int_identities"), dg.AssetKey("int_contacts")],
                     kinds={"dbt", WAREHOUSE_KIND}, owners=OWNERS, metadata=storage("match_model.versions"),
                     description="One row per trained version of the match model: prior, EM convergence and the "
                                 "counts it was trained on."),
        dg.AssetSpec(PARAMETERS_KEY, deps=[dg.AssetKey("int_identities"), dg.AssetKey("int_contacts")],
                     kinds={"dbt", WAREHOUSE_KIND}, owners=OWNERS, metadata=storage("match_model.parameters"),
                     description="m, u and match weight of every comparison level, per version."),
    ],
    group_name="match_model",
    pool="warehouse",
)
def match_model(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult]:
    """Learns m (EM over blocked pairs, started from the pairs the deterministic tier settles), u (random pairs)
    and the prior from the warehouse's current identities and contacts, and stores them as a new version."""
    # training adds a version the link build reads: it holds the build's scope
    with warehouse.exclusive(BUILD, context.log):
        with dbt_environment(warehouse.warehouse):
            invocation = dbt.cli(["run-operation", "train_match_model"], manifest=linking_project.manifest_path,
                                 target_path=dbt_target_path(warehouse.warehouse), raise_on_error=True)
        invocation.wait()
        with warehouse.connect(read_only=True) as con:
            version = latest_version(con)
            table = parameters_table(con, version["version"])
    context.log.info("match model version %s trained in %.1f s (EM %s after %s iterations)", version["version"],
                     version["training_seconds"], "converged" if version["converged"] else "stopped",
                     version["iterations"])
    metadata = version_metadata(version, table)
    yield dg.MaterializeResult(asset_key=VERSIONS_KEY, metadata=metadata)
    yield dg.MaterializeResult(asset_key=PARAMETERS_KEY,
                               metadata={"version": version["version"], "parameters": metadata["parameters"]})


train_match_model_job = dg.define_asset_job(
    name="train_match_model",
    selection=dg.AssetSelection.groups("match_model"),
    description="Learn a new version of the match model from the warehouse's identities and contacts. The next "
    "link build applies it.",
)

weekly_match_model_training = dg.ScheduleDefinition(
    name="weekly_match_model_training",
    job=train_match_model_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sundays 03:00 UTC: retrain the match model on the week's data (the link build applies the newest "
    "version; the band-shift check on the golden table flags a model that decides very differently).",
)

defs = dg.Definitions(assets=[match_model], jobs=[train_match_model_job], schedules=[weekly_match_model_training])
