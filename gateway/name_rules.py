"""Name comparisons of the fast paths, with the dbt match rules' own data: the nickname seed and the thresholds
in ``dbt_project.yml`` (so a fast link is one the batch rules would also make)."""
from __future__ import annotations

import csv
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz.distance import JaroWinkler

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


def first_names_differ(left: str | None, right: str | None) -> bool:
    """The email rule's veto (macro ``first_names_differ``): both present, no shared nickname, not a prefix of
    each other, and less similar than ``given_name_conflict`` — two people sharing a (family) mailbox."""
    a, b = name_key(left), name_key(right)
    if not a or not b:
        return False
    variants = _name_variants()
    if variants.get(a, frozenset()) & variants.get(b, frozenset()):
        return False
    if a.startswith(b) or b.startswith(a):
        return False
    return JaroWinkler.similarity(a, b) < float(_dbt_vars()["given_name_conflict"])
