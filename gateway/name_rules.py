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
    """Case-folded, accent-free, letters, digits and single spaces: what the staging models compare."""
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(_NOT_NAME.sub(" ", bare).split())


def _given_name_levels() -> list[dict[str, Any]]:
    comparisons = _dbt_vars()["match_comparisons"]
    return next(c for c in comparisons if c["name"] == "given_name")["levels"]


def _level_holds(level: dict[str, Any], a: str, b: str) -> bool:
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
    """The family_mailbox veto's test (var match_vetoes): both present and at the match model's given_name level
    'different', i.e. none of the levels var match_comparisons configures for first names holds (exact, nickname,
    Jaro-Winkler bands, edits, initial) — two people sharing a (family) mailbox."""
    a, b = name_key(left), name_key(right)
    if not a or not b:
        return False
    return not any(_level_holds(level, a, b) for level in _given_name_levels())
