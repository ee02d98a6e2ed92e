"""Fixtures of the Dynamics tests: a private sandbox process (the Dataverse stand-in behind the simulated
identity platform, over HTTPS) seeded with synthetic contacts."""
from __future__ import annotations

import dataclasses

import pytest

from sandbox.synthetic import generate
from settings import DataverseSettings, load_settings


@pytest.fixture
def contacts() -> list[dict]:
    return generate(120, seed=4, dynamics_share=0.5).dynamics_contacts


@pytest.fixture
def environment(sandbox_factory, contacts):
    return sandbox_factory(seeds={"dynamics_contacts": contacts})


@pytest.fixture
def settings(environment) -> DataverseSettings:
    return dataclasses.replace(load_settings(environment.env).dynamics, page_size=20, timeout_s=5,
                               retry_max_s=20)


@pytest.fixture
def warehouse(tmp_path) -> str:
    return str(tmp_path / "warehouse.duckdb")
