"""Name comparisons of the fast paths, with the dbt match model's own configuration: the nickname seed and the
given_name comparison levels in ``dbt_project.yml`` (so a fast link is one the batch build would not veto)."""
from __future__ import annotations

import csv
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz.distance import OSA, JaroWinkler

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"


@cache
def _dbt_vars() -> dict[str, Any]:
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


@cache
def _name_variants() -> dict[str, frozenset[str]]:
    variants: dict[str, set[str]] = {}
    with (DBT_PROJECT_DIR / "seeds" / "nickname_equivalents.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            variants.setdefault(row["name"], set()).add(row["canonical_name"])
    return {name: frozenset(values) for name, values in variants.items()}


_NOT_NAME = re.compile(r"[^a-z0-9 ]+")


def name_key(value: str | None) -> str:
    """Case-folded, accent-free, letters, digits and single spaces: what the staging models compare; a name in a
    script without Latin letters keeps its case-folded self (macro name_in_any_script)."""
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(_NOT_NAME.sub(" ", bare).split()) or " ".join(value.casefold().split())


def _given_name_levels() -> list[dict[str, Any]]:
    comparisons = _dbt_vars()["match_comparisons"]
    return next(c for c in comparisons if c["name"] == "given_name")["levels"]


def _family_mailbox_levels() -> frozenset[str]:
    veto = next(v for v in _dbt_vars()["match_vetoes"] if v["reason"] == "family_mailbox")
    return frozenset(veto["when"]["given_name"])


def _level_holds(level: dict[str, Any], a: str, b: str) -> bool:
    if "all" in level:
        return all(_level_holds(condition, a, b) for condition in level["all"])
    kind = level["kind"]
    if kind == "exact":
        return a == b
    if kind == "nickname":
        variants = _name_variants()
        return bool(variants.get(a, frozenset()) & variants.get(b, frozenset()))
    if kind == "jaro_winkler":
        return JaroWinkler.similarity(a, b) >= float(level["at_least"])
    if kind == "edits":
        return OSA.distance(a, b) <= int(level["edits"])
    if kind == "prefix":
        return a.startswith(b) or b.startswith(a)
    return False  # swapped: compares the family names too, which the fast paths do not read


def first_names_differ(left: str | None, right: str | None) -> bool:
    """The family_mailbox veto's test (var match_vetoes): both present and at one of the given_name levels the veto
    lists, i.e. the first level of var match_comparisons that holds for the two first names (or 'different' when
    none does) — two people sharing a (family) mailbox."""
    a, b = name_key(left), name_key(right)
    if not a or not b:
        return False
    level = next((lv["name"] for lv in _given_name_levels() if _level_holds(lv, a, b)), "different")
    return level in _family_mailbox_levels()
