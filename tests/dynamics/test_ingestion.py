"""Dynamics contacts land in raw_dynamics.contact: everything the first time, then only what changed since the
delta link, deletions as tombstones; a delta link the environment no longer honours means one full read."""
from __future__ import annotations

import dataclasses
import time

import duckdb
import pytest

from clients.dataverse import DataverseClient, key_segment
from ingestion.columns import DYNAMICS_CONTACT
from ingestion.dynamics import ConfigurationError
from ingestion.pipeline import run_dynamics, warehouse_pipeline


def rows(warehouse: str) -> dict[str, dict]:
    with duckdb.connect(warehouse, read_only=True) as con:
        cursor = con.execute("select * from raw_dynamics.contact")
        names = [d[0] for d in cursor.description]
        return {r[0]: dict(zip(names, r)) for r in cursor.fetchall()}


def write(settings, method: str, contact_id: str, body: bytes = b"") -> int:
    client = DataverseClient(settings)
    headers = {"Content-Type": "application/json", "If-Match": "*"} if body else {}
    return client.request(method, key_segment("contacts", record_id=contact_id), data=body or None,
                          headers=headers).status_code


def data_requests(environment) -> dict[str, int]:
    return {k: v for k, v in environment.stats()["requests"].items() if "/dynamics/" in k}


def test_the_first_load_reads_every_contact_page_by_page(environment, settings, warehouse, contacts):
    run_dynamics(settings, warehouse)
    loaded = rows(warehouse)
    assert set(loaded) == {c["contactid"] for c in contacts}
    with duckdb.connect(warehouse, read_only=True) as con:
        columns = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'raw_dynamics' "
            "and table_name = 'contact' order by ordinal_position").fetchall()]
    assert [c for c in columns if not c.startswith("_dlt_")] == [name for name, _ in DYNAMICS_CONTACT]
    sample = next(c for c in contacts if c["emailaddress1"] and c["lastname"])
    row = loaded[sample["contactid"]]
    assert (row["last_name"], row["is_active"], row["is_deleted"]) == (sample["lastname"].strip(), True, False)
    assert environment.stats()["records_returned"]["GET /dynamics/api/data/v9.2/contacts"] == len(contacts)
    # 20 per page (odata.maxpagesize): the nextLinks were followed
    assert data_requests(environment)["GET /dynamics/api/data/v9.2/{rest:path}"] >= len(contacts) // 20 + 1


def test_a_later_load_follows_the_delta_link_and_marks_deleted_contacts(environment, settings, warehouse,
                                                                        contacts):
    run_dynamics(settings, warehouse)
    first = rows(warehouse)
    changed, removed = contacts[3]["contactid"], contacts[4]["contactid"]
    assert write(settings, "PATCH", changed, b'{"firstname": "Renamed"}') == 204
    assert write(settings, "DELETE", removed) == 204
    environment.reset_stats()
    run_dynamics(settings, warehouse)

    returned = environment.stats()["records_returned"]
    assert returned == {"GET /dynamics/api/data/v9.2/contacts (delta)": 2}  # one change, one $deletedEntity
    second = rows(warehouse)
    assert second[changed]["first_name"] == "Renamed"
    assert second[removed]["is_deleted"] is True and second[removed]["last_name"] == first[removed]["last_name"]
    rewritten = {k for k in second if second[k]["_dlt_load_id"] != first[k]["_dlt_load_id"]}
    assert rewritten == {changed, removed}


def test_a_delta_link_no_longer_honoured_means_one_full_read_with_change_detection(environment, settings,
                                                                                   warehouse, contacts):
    run_dynamics(settings, warehouse)
    pipeline = warehouse_pipeline("dynamics", "raw_dynamics", warehouse)
    with pipeline.managed_state(extract_state=True) as state:
        resource = state["sources"]["dynamics"]["resources"]["contact"]
        resource["delta_link"] = resource["delta_link"].split("$deltatoken=")[0] + "$deltatoken=999999999!expired"
    pipeline.normalize()
    pipeline.load()  # the state travels with a load package
    removed = contacts[7]["contactid"]
    assert write(settings, "DELETE", removed) == 204
    run_dynamics(settings, warehouse)
    loaded = rows(warehouse)
    assert loaded[removed]["is_deleted"] is True
    assert sum(r["is_deleted"] for r in loaded.values()) == 1
    environment.reset_stats()
    run_dynamics(settings, warehouse)  # and a fresh delta link from then on
    assert environment.stats()["records_returned"] == {"GET /dynamics/api/data/v9.2/contacts (delta)": 0}


def test_a_targeted_load_fetches_its_contacts_and_a_missing_one_is_deleted(environment, settings, warehouse,
                                                                          contacts):
    run_dynamics(settings, warehouse)
    kept, removed = contacts[1]["contactid"], contacts[2]["contactid"]
    assert write(settings, "DELETE", removed) == 204
    environment.reset_stats()
    run_dynamics(settings, warehouse, contact_ids=[kept.upper(), removed])
    assert environment.stats()["records_returned"] == {}  # no collection read, only the two records
    assert rows(warehouse)[removed]["is_deleted"] is True
    with pytest.raises(ValueError, match="GUID"):
        run_dynamics(settings, warehouse, contact_ids=["../accounts"])


def test_a_configured_column_the_table_does_not_have_stops_the_load(environment, settings, warehouse):
    with pytest.raises(Exception) as info:
        run_dynamics(dataclasses.replace(settings, extra_contact_fields=("new_segment",)), warehouse)
    assert isinstance(info.value.__cause__.__cause__, ConfigurationError) or "new_segment" in str(info.value)


def test_service_protection_429s_are_waited_out_and_the_load_completes(environment, settings, warehouse,
                                                                       contacts):
    environment.configure(dataverse_requests_per_window=1, dataverse_window_s=1)
    started = time.monotonic()
    run_dynamics(settings, warehouse)
    assert len(rows(warehouse)) == len(contacts)
    # every request after the first in a second is refused with 429 + Retry-After, and each pause is waited out
    assert time.monotonic() - started >= 2
