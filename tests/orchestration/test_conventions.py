"""What a Dagster user sees of every asset and check, held for all of them, present and future: each test walks the
code location as the UI receives it (its serialized snapshot), so an asset or check added later that leaves
something out fails here, naming it."""
from __future__ import annotations

import re

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap

from orchestration.definitions import build_definitions

# metadata the Dagster UI never shows (dagster-dbt needs both at run time, objects that do not serialize)
UI_HIDDEN_METADATA = {"dagster_dbt/manifest", "dagster_dbt/dagster_dbt_translator"}
# assets that are not one table; each materialization names the files it wrote
NOT_ONE_TABLE = {dg.AssetKey("published_databases"), dg.AssetKey(["privacy", "warehouse_compaction"]),
                 dg.AssetKey(["privacy", "retention_purge"])}
STORAGE_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*$")  # schema.table or system.object


@pytest.fixture(scope="module")
def snapshot() -> RepositorySnap:
    return RepositorySnap.from_def(build_definitions().get_repository_def())


@pytest.fixture(scope="module")
def assets(snapshot):
    return [node for node in snapshot.asset_nodes if node.is_materializable]


def _failures(items, problem) -> list[str]:
    return sorted(f"{name}: {message}" for name, message in ((name, problem(item)) for name, item in items)
                  if message)


def test_every_asset_has_an_owner_a_kind_and_a_description(assets):
    def problem(node):
        kinds = [tag for tag in node.tags or {} if tag.startswith("dagster/kind/")]
        # dagster-dbt's stand-in for a model without a description: "dbt model <name>" and its SQL
        described = (node.description or "").strip() and not re.match(r"dbt (model|seed|snapshot) ",
                                                                       node.description)
        missing = [what for what, ok in (("owners", node.owners), ("kinds", kinds),
                                         ("description", described)) if not ok]
        return f"no {', '.join(missing)}" if missing else None

    assert _failures(((n.asset_key.to_user_string(), n) for n in assets), problem) == []


def test_every_asset_says_where_it_is_stored_in_full(assets):
    def problem(node):
        metadata = node.metadata
        if "dagster/storage_kind" not in metadata:
            return "no dagster/storage_kind"
        if node.asset_key in NOT_ONE_TABLE:
            return None
        table = metadata.get("dagster/table_name")
        if table is None or not STORAGE_NAME.match(table.value):
            return f"dagster/table_name should be schema.table, is {table.value if table else None!r}"
        return None

    assert _failures(((n.asset_key.to_user_string(), n) for n in assets), problem) == []


def test_no_two_assets_claim_the_same_storage(assets):
    """The UI links assets that name the same table ("Linked asset"): only one asset may name each."""
    seen: dict[tuple, str] = {}
    clashes = []
    for node in assets:
        table = node.metadata.get("dagster/table_name")
        if table is None:
            continue
        address = (table.value, node.metadata["dagster/storage_kind"].value)
        if address in seen:
            clashes.append(f"{seen[address]} and {node.asset_key.to_user_string()} both name {address}")
        seen[address] = node.asset_key.to_user_string()
    assert clashes == []


def test_no_asset_shows_unserializable_metadata(snapshot):
    def problem(node):
        shown = [key for key, value in node.metadata.items() if key not in UI_HIDDEN_METADATA
                 and "(unserializable)" in str(getattr(value, "value", ""))]
        return f"{', '.join(shown)} cannot be shown" if shown else None

    assert _failures(((n.asset_key.to_user_string(), n) for n in snapshot.asset_nodes), problem) == []


def test_raw_tables_and_marts_carry_a_freshness_policy(assets):
    def problem(node):
        table = node.metadata.get("dagster/table_name")
        is_raw = node.group_name == "ingestion"
        is_mart = table is not None and table.value.startswith("marts.")
        if (is_raw or is_mart) and node.freshness_policy is None:
            return "no freshness policy"
        return None

    assert _failures(((n.asset_key.to_user_string(), n) for n in assets), problem) == []


def test_raw_tables_are_named_after_their_storage_and_checked_for_volume(assets, snapshot):
    checks = {(c.asset_key, c.name): c for c in snapshot.asset_check_nodes}
    raw = [node for node in assets if node.group_name == "ingestion"]
    assert raw
    for node in raw:
        table = node.metadata["dagster/table_name"].value
        assert node.asset_key == dg.AssetKey(table.replace(".", "_")), table
        volume = checks.get((node.asset_key, "live_row_volume"))
        assert volume is not None and volume.blocking, f"{table} has no blocking volume check"


def test_every_check_has_a_readable_name_and_a_description(snapshot):
    def problem(check):
        asset = check.asset_key.path[-1]
        name = check.name
        if not (check.description or "").strip():
            return "no description"
        # dbt's generated names: the test, the model, every argument, double underscores, a hash at the end
        if len(name) > 64 or "__" in name or re.search(r"_[0-9a-f]{10}$", name):
            return "a generated name"
        if f"_{asset}_" in f"_{name}_" and not name.endswith(f"exists_in_{asset}"):
            return "repeats its asset's name"
        return None

    found = _failures(((f"{c.asset_key.to_user_string()}:{c.name}", c) for c in snapshot.asset_check_nodes),
                      problem)
    assert found == []


def test_every_column_of_the_golden_table_is_described(assets):
    [links] = [node for node in assets if node.asset_key == dg.AssetKey("identity_contact_links")]
    columns = links.metadata["dagster/column_schema"].value.columns
    assert len(columns) >= 13
    assert [column.name for column in columns if not (column.description or "").strip()] == []
