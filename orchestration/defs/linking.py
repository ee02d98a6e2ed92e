"""The linking stage as Dagster assets: every dbt model, seed and snapshot of dbt_project/ (group `linking`),
dbt data tests as asset checks, and per-run link statistics (counts only) on `identity_contact_links`.

Import-time work is limited to reading an existing manifest: `make setup` runs `dbt parse` once, and under
`dagster dev` `prepare_if_dev()` re-parses when a project file is newer than the manifest, so model edits show up.
"""

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from orchestration.catalog import OWNERS, PIPELINE_FRESHNESS, TABLE_NAME, raw_table_key
from orchestration.dbt_checks import check_description, readable_test_names
from orchestration.defs.resources import (
    DBT_PROJECT_DIR,
    DataverseResource,
    SalesforceResource,
    WarehouseResource,
    configured_crms,
)
from publishing import ROLES
from warehouse import BUILD, Connection, Warehouse

LINKS_ASSET_KEY = dg.AssetKey("identity_contact_links")
# Runs launched by the near-real-time sensors carry this tag: they rebuild models and the link snapshot and run
# the data tests of the marts (the blocking checks that guard every push: one-to-one, uniqueness, consent), and
# leave the tests of staging and intermediate models to the scheduled syncs.
TARGETED_RUN_TAG = "idlink/targeted"

# dbt writes these; everything else in the project is source
_GENERATED_DIRS = frozenset({"target", "logs", "dbt_packages"})


def manifest_is_stale(project_dir: Path, manifest_path: Path) -> bool:
    """True when the manifest is missing or older than a file of the dbt project."""
    if not manifest_path.exists():
        return True
    built = manifest_path.stat().st_mtime
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = [d for d in dirs if d not in _GENERATED_DIRS]
        if any(Path(root, name).stat().st_mtime > built for name in files):
            return True
    return False


linking_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` every process that loads this code re-parses the project (a run's worker too: 10-20 s per
# near-real-time run): parse only when a model, macro or config changed since the manifest was written.
if manifest_is_stale(linking_project.project_dir, linking_project.manifest_path):
    linking_project.prepare_if_dev()

if not linking_project.manifest_path.exists():
    raise FileNotFoundError(
        f"dbt manifest {linking_project.manifest_path} is missing: run `make setup` "
        "(or `dbt parse --project-dir dbt_project --profiles-dir dbt_project`) first")


def dbt_target_path(warehouse: Warehouse) -> Path:
    """Where dbt keeps its artifacts for one warehouse. dbt re-parses the whole project when the profile changes
    and the profile names the warehouse, so the saved parse is only reusable per warehouse: one directory each
    (in the warehouse's local folder) lets every run after the first parse partially. Builds on one warehouse
    never overlap (they hold its build scope), so they never write this directory at the same time."""
    return warehouse.local_dir / "dbt_target" / warehouse.key


class IdlinkDbtTranslator(DagsterDbtTranslator):
    """Models, seeds and snapshots are keyed by their name alone (AssetKey("contacts_to_create"), no schema
    prefix) in group `linking`, owned by the pipeline's team, stored as ``schema.table``; the marts carry the
    pipeline's freshness policy. A source is keyed like the ingestion asset that loads its raw table
    (``raw_b2c_users``). Checks made of data tests get a description (``orchestration.dbt_checks``)."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str,
                       project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if unique_id.startswith("source."):  # a raw table keeps the key of the load that writes it
            if props["source_name"].startswith("raw_"):
                return spec.replace_attributes(key=raw_table_key(props["source_name"], props["name"]))
            return spec  # [schema, table], e.g. privacy/erased_subjects
        spec = spec.replace_attributes(
            key=dg.AssetKey(props["name"]), group_name="linking", owners=OWNERS,
            freshness_policy=PIPELINE_FRESHNESS if props.get("schema") == "marts" else None)
        return spec.merge_attributes(metadata={TABLE_NAME: f"{props['schema']}.{props.get('alias') or props['name']}"})

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        """A published view without a description of its own says what it publishes to whom."""
        path = Path(dbt_resource_props.get("original_file_path") or "")
        if not dbt_resource_props.get("description") and path.parts[:2] == ("models", "published"):
            schema, _, relation = dbt_resource_props["name"].partition("__")
            readers = " and ".join(role.name for role in ROLES if schema in role.schemas)
            return (f"`{schema}.{relation}` as the {readers} database{'s' if ' and ' in readers else ''} hold it: "
                    f"a view copied out of the warehouse after every linking run (published_databases).\n\n"
                    + super().get_description(dbt_resource_props).split("\n\n", 1)[-1])
        return super().get_description(dbt_resource_props)

    def get_asset_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                             project: DbtProject | None) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        return spec._replace(description=check_description(manifest["nodes"][unique_id]))


@contextlib.contextmanager
def dbt_environment(warehouse: Warehouse) -> Iterator[None]:
    """dagster-dbt hands its dbt process this process's environment: while the process starts, the environment
    points dbt's profile at ``warehouse`` (by absolute path: dbt would resolve a relative WAREHOUSE_PATH against
    dbt_project/); it is restored after, so one run's warehouse never leaks into the next."""
    values = warehouse.dbt_environment()
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


BAND_COUNTS = ("auto_links", "deterministic_links", "model_links", "review_items")


def decision_bands(con: Connection) -> dict[str, int]:
    """The decision bands of the build that made the current golden table, as marts.match_decision_bands counted
    them (the one definition: auto links are active links, review items the review queue's uncertain_match rows);
    empty when that build did not include the bands model (a targeted run that left it out)."""
    row = con.fetchone(f"""select {', '.join(BAND_COUNTS)} from marts.match_decision_bands
        where built_at = (select max(last_seen_at) from marts.identity_contact_links)
        order by built_at desc limit 1""")
    return dict(zip(BAND_COUNTS, row)) if row else {}


def link_summary(con: Connection) -> dict[str, Any]:
    """Counts describing the current links and what this build changed (no identifiers, no personal data).
    ``match_rate`` is the share of linkable identities (consent granted, not deleted) linked in at least one
    CRM; ``links_new_by_rule`` counts the links this build made (linked_at = the build's time)."""
    by_status = dict(con.execute(
        "select status, count(*) from marts.identity_contact_links group by status"))
    by_rule = dict(con.execute("""select match_rule, count(*) from marts.identity_contact_links
        where status = 'active' group by match_rule order by match_rule"""))
    new_by_rule = dict(con.execute("""select match_rule, count(*) from marts.identity_contact_links
        where status = 'active' and linked_at = (select max(last_seen_at) from marts.identity_contact_links)
        group by match_rule order by count(*) desc, match_rule"""))
    by_crm = dict(con.execute("""select crm, count(*) from marts.identity_contact_links where status = 'active'
        group by crm order by crm"""))
    linked = con.scalar("""select count(*) from (select distinct identity_provider, identity_id
        from marts.identity_contact_links where status = 'active') as linked""")
    conflicts = dict(con.execute(
        "select reason, count(*) from marts.link_conflicts group by reason order by reason"))
    eligible, consent_excluded = con.fetchone("""select
            count(*) filter (where consent_state = 'granted'),
            count(*) filter (where consent_state <> 'granted')
        from intermediate.int_identities where not is_deleted""")
    active = by_status.get("active", 0)
    return {
        # the decision bands, plotted per run by Dagster: rules first, then the match model's probability
        **decision_bands(con),
        "match_probability_distribution": dg.MetadataValue.md(probability_distribution(con)),
        "links_active": active,
        "links_active_by_crm": dg.MetadataValue.json(by_crm),
        "links_withdrawn": by_status.get("withdrawn", 0),
        "links_deleted": by_status.get("deleted", 0),
        "links_contact_deleted": by_status.get("contact_deleted", 0),
        "links_by_rule": dg.MetadataValue.json(by_rule),
        "links_new": sum(new_by_rule.values()),
        "links_new_by_rule": dg.MetadataValue.json(new_by_rule),
        "match_rate": round(linked / eligible, 4) if eligible else 0.0,
        "conflicts": sum(conflicts.values()),
        "conflicts_by_reason": dg.MetadataValue.json(conflicts),
        "consent_excluded_identities": consent_excluded,
        "contacts_to_create": con.scalar("select count(*) from marts.contacts_to_create"),
        "external_ids_to_push": con.scalar("select count(*) from marts.external_ids_to_push"),
        "crm_duplicate_contacts": con.scalar("select count(*) from marts.crm_duplicate_contacts"),
    }


# upper bounds of the match probability bins the golden table's metadata counts (the last bin ends at 1)
PROBABILITY_BINS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999)


def probability_distribution(con: Connection) -> str:
    """How many pairs the match model scored in each match probability bin, by decision (link or review), as a
    Markdown table: where the model's decisions sit relative to the thresholds."""
    bounds = (0.0, *PROBABILITY_BINS)
    cases = " ".join(f"when match_confidence < {upper} then {n}" for n, upper in enumerate(PROBABILITY_BINS))
    counts = {(b, d): c for b, d, c in con.execute(f"""select case {cases} else {len(PROBABILITY_BINS)} end,
            decision, count(*)
        from intermediate.int_link_candidates where model_version is not null group by 1, 2""")}
    lines = ["| match probability | link | review |", "|---|---:|---:|"]
    for n, lower in enumerate(bounds):
        upper = PROBABILITY_BINS[n] if n < len(PROBABILITY_BINS) else 1.0
        if lower == 0.0 and not any(counts.get((0, d)) for d in ("link", "review")):
            continue
        lines.append(f"| [{lower}, {upper}{']' if upper == 1.0 else ')'} | {counts.get((n, 'link'), 0)} | "
                     f"{counts.get((n, 'review'), 0)} |")
    return "\n".join(lines)


class LinkingConfig(dg.Config):
    # a person's word that a large drop of active links is real: the test active_link_volume lets this build pass
    accept_link_drop: bool = False


def dbt_build_args(targeted: bool, crms: list[str] | None = None, accept_link_drop: bool = False) -> list[str]:
    """dbt unit tests check the SQL, not the data: `make test` runs them, production builds skip them. Every
    build runs the marts' data tests: a failing one fails the build, so no push follows it. ``crms`` (var crms)
    are the CRMs to link in: the configured ones; ``accept_link_drop`` lets one build through active_link_volume."""
    args = ["build", "--exclude-resource-type", "unit_test"]
    if targeted:
        args += ["--exclude", "tag:upstream_check"]  # tests of staging and intermediate models (dbt_project.yml)
    dbt_vars = {**({"crms": crms} if crms else {}), **({"accept_link_drop": True} if accept_link_drop else {})}
    if dbt_vars:
        args += ["--vars", orjson.dumps(dbt_vars).decode()]
    return args


def _is_links_event(event: Any) -> bool:
    return isinstance(event, (dg.Output, dg.MaterializeResult, dg.AssetMaterialization)) and (
        getattr(event, "asset_key", None) == LINKS_ASSET_KEY
        or getattr(event, "output_name", None) == "identity_contact_links")


def linking_assets_for(project: DbtProject) -> dg.AssetsDefinition:
    """Every node of a dbt project as assets, its data tests as checks (blocking when their severity is error)
    with readable names and descriptions (``orchestration.dbt_checks``). No ``project=``: dagster-dbt would put it
    in every asset's metadata as an object the UI can only show as "(unserializable)"; so dbt runs in the ``dbt``
    resource's project directory, which must be ``project``'s."""

    @dbt_assets(
        manifest=readable_test_names(json.loads(project.manifest_path.read_text())),
        dagster_dbt_translator=IdlinkDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
        pool="warehouse",
    )
    def linking_dbt_assets(context: dg.AssetExecutionContext, config: LinkingConfig, dbt: DbtCliResource,
                           warehouse: WarehouseResource, salesforce: SalesforceResource,
                           dynamics: DataverseResource) -> Iterator[Any]:
        with warehouse.exclusive(BUILD, context.log):
            yield from _build(context, dbt, warehouse, configured_crms(salesforce, dynamics),
                              accept_link_drop=config.accept_link_drop)

    return linking_dbt_assets


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
           crms: list[str], accept_link_drop: bool) -> Iterator[Any]:
    """dbt build (tests of the marts included, see dbt_build_args), then the link summary on the links event."""
    # DuckDB admits no reader while dbt writes, so the link summary is computed once dbt has exited. Dagster
    # wants a multi-asset's outputs in dependency order: hold back the links event and everything after it.
    held_back: list[Any] = []
    args = dbt_build_args(targeted=context.run.tags.get(TARGETED_RUN_TAG) == "true", crms=crms,
                          accept_link_drop=accept_link_drop)
    try:
        with dbt_environment(warehouse.warehouse):
            invocation = dbt.cli(args, context=context, target_path=dbt_target_path(warehouse.warehouse))
        for event in invocation.stream():
            if held_back or _is_links_event(event):
                held_back.append(event)
            else:
                yield event
    except DagsterDbtCliRuntimeError:
        # a failed test fails the build (and so stops every push after it): its check result, and what dbt
        # built before, still reach Dagster
        yield from held_back
        raise
    if not held_back:
        return
    with warehouse.connect(read_only=True) as con:
        summary = link_summary(con)
    context.log.info("identity_contact_links: %s active links, match rate %s, %s conflicts",
                     summary["links_active"], summary["match_rate"], summary["conflicts"])
    links_event, *rest = held_back
    yield links_event.with_metadata({**(links_event.metadata or {}), **summary})
    yield from rest


linking_dbt_assets = linking_assets_for(linking_project)

defs = dg.Definitions(assets=[linking_dbt_assets])
