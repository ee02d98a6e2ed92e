"""Personal data lives in the warehouse only: a load leaves no user or contact values in dlt's working files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.parquet as pq

from ingestion.pipeline import run_b2c, run_salesforce
from tests.ingestion.helpers import graph_settings, salesforce_settings, scalar


def personal_values(state: dict) -> set[str]:
    """Emails and names of every B2C user and Salesforce contact the sandbox holds (long enough to be telling)."""
    values: set[str] = set()
    for user in state["b2c"]["users"]:
        values.update(i.get("issuerAssignedId") or "" for i in user.get("identities") or [])
        values.update((user.get("surname") or "", user.get("mail") or ""))
    for contact in state["salesforce"]["Contact"]:
        values.update((contact.get("Email") or "", contact.get("LastName") or ""))
    return {v for v in values if len(v) >= 6}


def file_texts(folder: Path):
    """Every file under ``folder`` as text: gzip-compressed job files unpacked, parquet files read."""
    for path in folder.rglob("*"):
        if path.is_file():
            if path.suffix == ".parquet":
                yield path, str(pq.read_table(path).to_pylist())
                continue
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            yield path, data.decode("utf-8", errors="replace")


def test_loads_leave_no_personal_data_in_the_pipelines_folder(private_sandbox, warehouse):
    run_b2c(graph_settings(private_sandbox.env), warehouse)
    run_salesforce(salesforce_settings(private_sandbox.env), warehouse)
    assert scalar(warehouse, "select count(*) from raw_b2c.users") > 100
    assert scalar(warehouse, "select count(*) from raw_salesforce.contact") > 100

    values = personal_values(private_sandbox.state())
    assert len(values) > 200
    pipelines_dir = Path(warehouse).parent / "dlt_pipelines"
    assert any(pipelines_dir.rglob("*")), "the pipelines keep their state there"
    leaks = {str(path.relative_to(pipelines_dir)) for path, text in file_texts(pipelines_dir)
             if any(value in text for value in values)}
    assert leaks == set()
