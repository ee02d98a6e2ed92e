"""Readable names and descriptions for the asset checks dagster-dbt makes of dbt's data tests.

dbt names a generic test after the test, the model and every argument
(``accepted_values_identity_contact_links_status__active__withdrawn__deleted``); dagster-dbt names the check after
the test node, at definition time and when it matches a test's result to its check. So the names are made
readable in the manifest the assets are built from: a test the yml names itself (``name:``) keeps that name, every
other one gets ``<column>_<what it checks>`` (``status_accepted_values``) — the check sits on its model's page, so
the model's name is left out. Only ``name`` changes: dbt still selects tests by their ``fqn``.

Descriptions come from the test's ``description:`` in the yml, else from what the test checks; a test of a kind
not described here must say itself what it checks (the conventions test fails otherwise).
"""
from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

_REF = re.compile(r"""ref\(\s*['"](\w+)['"]\s*\)""")
_VAR = re.compile(r"""\{\{\s*var\(\s*['"](\w+)['"]\s*\)\s*\}\}""")
_NOT_A_NAME = re.compile(r"[^0-9A-Za-z_]+")


class CheckNameClash(ValueError):
    """Two tests of one model would get the same check name: name one of them in its yml (``name:``)."""


def readable_test_names(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the manifest in which every generic data test dbt named carries a readable name."""
    readable = copy.deepcopy(dict(manifest))
    taken: dict[tuple[str, str], str] = {}
    for unique_id, node in sorted(readable["nodes"].items()):
        if node.get("resource_type") != "test":
            continue
        if _named_by_dbt(node, readable):
            node["name"] = _readable_name(node)
        place = (node.get("attached_node") or unique_id, node["name"])
        if place in taken:
            raise CheckNameClash(f"tests {taken[place]} and {unique_id} would both be the check {node['name']!r} "
                                 f"of {place[0]}: give one of them a `name:` in its yml")
        taken[place] = unique_id
    return readable


def check_description(node: Mapping[str, Any]) -> str | None:
    """What a data test checks, in a sentence: its yml ``description``, else one derived from its kind."""
    if node.get("description"):
        return str(node["description"]).strip()
    metadata = node.get("test_metadata") or {}
    kwargs = metadata.get("kwargs") or {}
    columns = _columns(kwargs)
    subject = _listing(columns)
    where = f" (rows where {kwargs['where']})" if kwargs.get("where") else ""
    describe = {
        "not_null": lambda: f"Every row has {subject}.",
        "not_null_columns": lambda: f"Every row has {subject}.",
        "unique": lambda: f"No two rows have the same {subject}.",
        "unique_combination": lambda: f"One row per {subject}{where}.",
        "accepted_values": lambda: f"{subject} is one of: {', '.join(map(str, kwargs.get('values', [])))}.",
        "relationships": lambda: f"Every {subject} exists as {kwargs.get('field')} in {_target(kwargs.get('to'))}.",
        "between": lambda: f"{subject} lies between {kwargs.get('min_value')} and {kwargs.get('max_value')}.",
        "consented_identities": lambda: f"Every identity named here{where} has granted CRM-sync consent and is "
                                        "not deleted: nothing reaches a CRM for any other.",
        "max_length": lambda: f"{subject} {'is' if len(columns) == 1 else 'are'} at most "
                              f"{_value(kwargs.get('max_length'))} characters long.",
    }.get(metadata.get("name", ""))
    return describe() if describe else None


def _named_by_dbt(node: Mapping[str, Any], manifest: Mapping[str, Any]) -> bool:
    """dbt's own name for a generic test starts with [namespace_]test_model_; a name from the yml does not."""
    metadata = node.get("test_metadata")
    attached = manifest["nodes"].get(node.get("attached_node") or "") or {}
    if not metadata or not attached:
        return False
    prefix = "_".join(part for part in (metadata.get("namespace"), metadata["name"], attached.get("name")) if part)
    return node["name"].startswith(prefix + "_") or node["name"] == prefix


def _readable_name(node: Mapping[str, Any]) -> str:
    metadata = node["test_metadata"]
    kwargs = metadata.get("kwargs") or {}
    columns = _columns(kwargs)
    test = metadata["name"]
    if test == "unique_combination":
        name = "one_row_per_" + "_".join(columns)
    else:
        verb = {
            "not_null_columns": "not_null",
            "relationships": f"exists_in_{_target(kwargs.get('to'))}",
            "between": f"between_{kwargs.get('min_value')}_and_{kwargs.get('max_value')}",
        }.get(test, test)
        name = f"{_phrase(columns)}_{verb}" if columns else verb
    return _NOT_A_NAME.sub("_", name).strip("_")


def _columns(kwargs: Mapping[str, Any]) -> list[str]:
    if kwargs.get("column_name"):
        return [str(kwargs["column_name"])]
    for key in ("columns", "combination_of_columns", "column_names"):
        if isinstance(kwargs.get(key), Sequence) and not isinstance(kwargs.get(key), str):
            return [str(column) for column in kwargs[key]]
    return []


def _phrase(columns: Sequence[str]) -> str:
    """One or two columns by name, more as "columns" (``columns_not_null``; the description lists them)."""
    return "_and_".join(columns) if len(columns) <= 2 else "columns"


def _listing(columns: Sequence[str]) -> str:
    if len(columns) <= 1:
        return "".join(columns) or "the model"
    return ", ".join(columns[:-1]) + " and " + columns[-1]


def _target(to: Any) -> str:
    match = _REF.search(str(to or ""))
    return match.group(1) if match else str(to)


def _value(value: Any) -> str:
    match = _VAR.search(str(value))
    return f"var {match.group(1)}" if match else str(value)
