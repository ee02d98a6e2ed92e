"""The variable registry is the one list of configuration: the docs, .env.example, the make targets and the dbt
profile agree with it."""

from __future__ import annotations

import re
from pathlib import Path

from settings import VARIABLES, load_settings
from settings.registry import docs_table

REPO = Path(__file__).resolve().parents[2]
_EXAMPLE_LINE = re.compile(r"^#?\s?([A-Z][A-Z0-9_]+)=(.*)$")


def _docs_section() -> str:
    text = (REPO / "docs" / "architecture.md").read_text()
    return text[text.index("## Environment variables"):text.index("## Raw warehouse tables")]


def test_the_docs_table_is_the_registry():
    assert docs_table() in _docs_section(), (
        "docs/architecture.md's variables table differs from settings/registry.py: "
        "paste the output of `python -m settings docs`")


def test_env_example_lists_every_variable_once_and_no_other():
    names = [m.group(1) for line in (REPO / ".env.example").read_text().splitlines()
             if (m := _EXAMPLE_LINE.match(line))]
    assert sorted(set(VARIABLES) - set(names)) == [], "variables missing from .env.example"
    assert sorted(set(names) - set(VARIABLES)) == [], ".env.example names variables the registry does not know"
    assert len(names) == len(set(names)), "a variable appears twice in .env.example"


def test_env_example_holds_no_secret_value():
    for line in (REPO / ".env.example").read_text().splitlines():
        if (m := _EXAMPLE_LINE.match(line)) and VARIABLES[m.group(1)].secret:
            assert m.group(2) == "", f"{m.group(1)} is a secret: .env.example must leave it empty"


def test_env_example_is_a_valid_environment_apart_from_its_empty_secrets():
    values = {m.group(1): m.group(2) for line in (REPO / ".env.example").read_text().splitlines()
              if not line.startswith("#") and (m := _EXAMPLE_LINE.match(line))}
    secrets = {name: "placeholder" for name, value in values.items() if VARIABLES[name].secret and not value}
    settings = load_settings({**values, **secrets})
    assert settings.graph is not None and settings.salesforce is not None


def test_make_dev_and_the_make_targets_read_only_registered_variables():
    makefile = (REPO / "Makefile").read_text()
    dev = (REPO / "deploy" / "dev.sh").read_text()
    read = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", dev)) | set(re.findall(r"\$\$([A-Z][A-Z0-9_]+)", makefile))
    read |= set(re.findall(r"^export ([A-Z][A-Z0-9_]+) \?=", makefile, flags=re.MULTILINE))
    assert sorted(read - set(VARIABLES)) == []


def test_the_dbt_profile_defaults_are_the_registered_ones():
    profile = (REPO / "dbt_project" / "profiles.yml").read_text()
    pairs = re.findall(r"env_var\('([A-Z][A-Z0-9_]+)', '([^']*)'\)", profile)
    assert pairs, "no env_var() found in profiles.yml"
    for name, default in pairs:
        assert name in VARIABLES, f"profiles.yml reads {name}, which the registry does not know"
        expected = VARIABLES[name].default
        if VARIABLES[name].kind.name == "PATH":  # dbt runs in dbt_project/: its relative paths start one level up
            expected = f"../{expected}"
        assert default == expected, f"profiles.yml's default of {name} is {default!r}, the registry's {expected!r}"
