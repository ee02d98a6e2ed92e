"""The fast paths judge first names as the dbt email rule does: same nickname seed, same threshold."""
from __future__ import annotations

import pytest

from gateway.name_rules import first_names_differ, name_key


@pytest.mark.parametrize(("left", "right", "differ"), [
    ("Michael", "Jennifer", True), ("Anna", "Peter", True),
    ("Rosina", "Karolina", True), ("Brian", "Erin", True),  # alike, but further apart than typos or a nickname
    ("محمد", "John", True),  # a name in another script is a name too
    ("Bob", "Robert", False),  # nickname
    ("José", "jose", False), ("Cora", "Clra", False),  # accent, typo
    ("Chris", "Christopher", False),  # spelled out
    ("Michelle", "Michael", False),  # alike enough that the email rule links them, as dbt does
    ("", "Anna", False), (None, "Anna", False),  # a missing name neither agrees nor differs
])
def test_first_names_differ_as_the_dbt_email_rule_judges_them(left, right, differ) -> None:
    assert first_names_differ(left, right) is differ


def test_name_keys_fold_case_accents_punctuation_and_spaces() -> None:
    assert name_key("  Zoë-Anne  O'Brien ") == "zoe anne o brien"
    assert name_key(None) == ""
