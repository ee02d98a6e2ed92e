"""Fixtures of the ingestion tests: one private sandbox per module and a fresh warehouse per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures_sandbox import launch_sandbox


@pytest.fixture(scope="module")
def private_sandbox(tmp_path_factory):
    """A sandbox of ~150 people this module may change freely (deletes, edits, faults)."""
    running = launch_sandbox(
        tmp_path_factory.mktemp("ingestion-sandbox"), size=150, extra_args=("--seed", "11")
    )
    yield running
    running.stop()


@pytest.fixture
def warehouse(tmp_path: Path) -> str:
    return str(tmp_path / "wh" / "warehouse.duckdb")
