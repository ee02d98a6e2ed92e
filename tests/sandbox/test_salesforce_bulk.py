"""Bulk API 2.0 ingest: job lifecycle, asynchronous processing, result CSVs, state rules and whole-job failures."""
from __future__ import annotations

import csv
import io
import time

import pytest

from sandbox.salesforce import bulk as salesforce_bulk
from sandbox.salesforce.harness import InProcessSalesforce

EXT = "External_User_Id__c"
FINAL_STATES = ("JobComplete", "Failed", "Aborted")


@pytest.fixture
def sf():
    harness = InProcessSalesforce([{"LastName": "Existing", EXT: "ext-1", "Email": "old@example.com"}])
    yield harness
    harness.close()


def create_job(sf, **spec) -> dict:
    body = {"object": "Contact", "contentType": "CSV", "operation": "upsert", "externalIdFieldName": EXT,
            "lineEnding": "LF", "columnDelimiter": "COMMA", **spec}
    response = sf.post("jobs/ingest", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def upload(sf, job_id: str, data: str):
    return sf.put(f"jobs/ingest/{job_id}/batches", content=data.encode(), headers={"Content-Type": "text/csv"})


def close(sf, job_id: str, state: str = "UploadComplete"):
    return sf.patch(f"jobs/ingest/{job_id}", json={"state": state})


def wait_until_final(sf, job_id: str, timeout_s: float = 10.0) -> tuple[dict, list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = sf.get(f"jobs/ingest/{job_id}").json()
        if not seen or seen[-1] != info["state"]:
            seen.append(info["state"])
        if info["state"] in FINAL_STATES:
            return info, seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish; states seen: {seen}")


def results(sf, job_id: str, kind: str) -> list[dict]:
    response = sf.get(f"jobs/ingest/{job_id}/{kind}/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def run_job(sf, data: str, **spec) -> tuple[dict, dict, list[str]]:
    job = create_job(sf, **spec)
    assert upload(sf, job["id"], data).status_code == 201
    assert close(sf, job["id"]).json()["state"] == "UploadComplete"
    info, seen = wait_until_final(sf, job["id"])
    return job, info, seen


def test_a_new_job_is_open_and_describes_itself(sf):
    job = create_job(sf)
    assert job["id"].startswith("750") and len(job["id"]) == 18
    assert (job["state"], job["object"], job["operation"], job["externalIdFieldName"]) == (
        "Open", "Contact", "upsert", EXT)
    assert job["contentUrl"] == f"services/data/v62.0/jobs/ingest/{job['id']}/batches"
    assert job["id"] in [j["id"] for j in sf.get("jobs/ingest").json()["records"]]
    assert sf.get("limits").json()["BulkV2IngestJobsInFlight"] == {"Current": 1}


def test_upsert_job_processes_asynchronously_and_reports_successes_and_failures(sf):
    data = (f"{EXT},LastName,Email\n"
            "ext-1,Existing,new@example.com\n"
            "ext-2,Created,created@example.com\n"
            "ext-3,Broken,not-an-email\n")
    job, info, seen = run_job(sf, data)
    assert seen[0] in ("UploadComplete", "InProgress") and seen[-1] == "JobComplete"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (3, 1)

    successes = results(sf, job["id"], "successfulResults")
    assert [(r["sf__Created"], r[EXT], r["Email"]) for r in successes] == [
        ("false", "ext-1", "new@example.com"), ("true", "ext-2", "created@example.com")]
    assert all(sf.contacts[r["sf__Id"]][EXT] == r[EXT] for r in successes)

    failures = results(sf, job["id"], "failedResults")
    assert [(r["sf__Id"], r["sf__Error"], r[EXT]) for r in failures] == [
        ("", "INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email", "ext-3")]
    assert results(sf, job["id"], "unprocessedrecords") == []
    assert [event for _, event, _ in sf.events] == ["updated", "created"]


def test_result_files_quote_every_value_with_the_sf_columns_first(sf):
    job, _, _ = run_job(sf, f"{EXT},LastName\next-9,Quoted\n")
    text = sf.get(f"jobs/ingest/{job['id']}/successfulResults").text
    header, row = text.splitlines()
    assert header == f'"sf__Id","sf__Created","{EXT}","LastName"'
    assert row.endswith('"true","ext-9","Quoted"')


def test_insert_update_and_delete_jobs(sf):
    _, inserted, _ = run_job(sf, "LastName,Email\nIns,ins@example.com\n", operation="insert", externalIdFieldName=None)
    assert inserted["numberRecordsFailed"] == 0
    new_id = next(i for i, r in sf.contacts.items() if r["LastName"] == "Ins")

    _, updated, _ = run_job(sf, f"Id,FirstName\n{new_id},Bulk\n0035g00000ZZZZZ,Ghost\n", operation="update",
                            externalIdFieldName=None)
    assert (updated["numberRecordsProcessed"], updated["numberRecordsFailed"]) == (2, 1)
    assert sf.contacts[new_id]["FirstName"] == "Bulk"

    _, deleted, _ = run_job(sf, f"Id\n{new_id}\n", operation="delete", externalIdFieldName=None)
    assert deleted["numberRecordsFailed"] == 0 and sf.contacts[new_id]["IsDeleted"] is True


def test_empty_cells_leave_fields_alone_and_na_clears_them(sf):
    run_job(sf, f"{EXT},FirstName,Email\next-1,,#N/A\n")
    existing = next(r for r in sf.contacts.values() if r[EXT] == "ext-1")
    assert existing["Email"] is None and existing["LastName"] == "Existing"


def test_uploads_are_refused_once_the_job_is_closed(sf):
    job = create_job(sf)
    upload(sf, job["id"], f"{EXT},LastName\next-5,Five\n")
    close(sf, job["id"])
    refused = upload(sf, job["id"], f"{EXT},LastName\next-6,Six\n")
    assert refused.status_code == 409 and refused.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    wait_until_final(sf, job["id"])
    assert {r[EXT] for r in sf.contacts.values()} == {"ext-1", "ext-5"}


def test_uploads_beyond_the_size_limit_are_refused(sf, monkeypatch):
    monkeypatch.setattr(salesforce_bulk, "MAX_UPLOAD_BYTES", 64)
    job = create_job(sf)
    response = upload(sf, job["id"], f"{EXT},LastName\n" + "ext-7,Seven\n" * 10)
    assert response.status_code == 413
    assert sf.get(f"jobs/ingest/{job['id']}").json()["state"] == "Open"


def test_an_aborted_job_processes_nothing(sf, monkeypatch):
    monkeypatch.setattr(salesforce_bulk, "PROCESSING_DELAY_S", 0.5)
    job = create_job(sf)
    upload(sf, job["id"], f"{EXT},LastName\next-8,Eight\n")
    close(sf, job["id"])
    assert close(sf, job["id"], "Aborted").json()["state"] == "Aborted"
    time.sleep(0.7)
    info = sf.get(f"jobs/ingest/{job['id']}").json()
    assert (info["state"], info["numberRecordsProcessed"]) == ("Aborted", 0)
    assert len(sf.contacts) == 1


def test_an_unknown_column_fails_the_whole_job(sf):
    _, info, _ = run_job(sf, f"{EXT},LastName,Shoe_Size__c\next-4,Four,42\n")
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Shoe_Size__c"
    assert len(sf.contacts) == 1


def test_data_with_a_different_line_ending_than_declared_fails_the_job(sf):
    _, info, _ = run_job(sf, f"{EXT},LastName\r\next-4,Four\r\n")
    assert info["state"] == "Failed" and "LineEnding" in info["errorMessage"]
    _, crlf, _ = run_job(sf, f"{EXT},LastName\r\next-4,Four\r\n", lineEnding="CRLF")
    assert crlf["state"] == "JobComplete" and crlf["numberRecordsFailed"] == 0


def test_rows_with_the_wrong_number_of_columns_fail_individually(sf):
    job, info, _ = run_job(sf, f"{EXT},LastName\next-4,Four,extra\next-5,Five\n")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 1)
    assert results(sf, job["id"], "failedResults")[0]["sf__Error"].startswith("INVALID_FIELD:")


@pytest.mark.parametrize("spec, message", [
    ({"object": "Account"}, "Unable to find object"),
    ({"operation": "hardDelete"}, "Operation must be one of"),
    ({"externalIdFieldName": "Email"}, "External ID"),
    ({"columnDelimiter": "SPACE"}, "columnDelimiter"),
])
def test_invalid_job_definitions_are_refused(sf, spec, message):
    body = {"object": "Contact", "contentType": "CSV", "operation": "upsert", "externalIdFieldName": EXT, **spec}
    response = sf.post("jobs/ingest", json=body)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALIDJOB" and message in response.json()[0]["message"]


def test_finished_jobs_can_be_deleted_but_open_ones_cannot(sf):
    open_job = create_job(sf)
    assert sf.delete(f"jobs/ingest/{open_job['id']}").status_code == 409
    job, _, _ = run_job(sf, f"{EXT},LastName\next-4,Four\n")
    assert sf.delete(f"jobs/ingest/{job['id']}").status_code == 204
    assert sf.get(f"jobs/ingest/{job['id']}").status_code == 404
