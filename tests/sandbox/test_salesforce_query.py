"""query / queryAll over HTTP: record shape, paging through server-side cursors, incremental and deleted rows."""
from __future__ import annotations

import pytest

from sandbox.salesforce import query as salesforce_query
from sandbox.salesforce.harness import InProcessSalesforce


def contact(i: int, **extra):
    return {"LastName": f"Last{i:05d}", "FirstName": f"First{i}", "Email": f"user{i}@example.com",
            "External_User_Id__c": f"ext-{i}", **extra}


@pytest.fixture
def sf():
    harness = InProcessSalesforce([contact(i) for i in range(4500)])
    yield harness
    harness.close()


def follow(sf: InProcessSalesforce, body: dict, **kwargs) -> list[dict]:
    records = list(body["records"])
    while not body["done"]:
        body = sf.get(body["nextRecordsUrl"], **kwargs).json()
        records.extend(body["records"])
    return records


def test_records_carry_attributes_and_exactly_the_selected_fields_in_canonical_case(sf):
    body = sf.query("select id, EMAIL from contact where External_User_Id__c = 'EXT-7'").json()
    assert body["totalSize"] == 1 and body["done"] is True and "nextRecordsUrl" not in body
    record_id = body["records"][0]["Id"]
    assert body["records"] == [{
        "attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{record_id}"},
        "Id": record_id,
        "Email": "user7@example.com",
    }]


def test_large_results_page_by_next_records_url_in_pages_of_2000(sf):
    first = sf.query("SELECT Id, LastName FROM Contact ORDER BY LastName").json()
    assert first["totalSize"] == 4500 and first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    records = follow(sf, first)
    assert [r["LastName"] for r in records] == [f"Last{i:05d}" for i in range(4500)]


def test_batch_size_option_sets_the_page_size_within_salesforce_bounds(sf):
    small = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=300"}).json()
    assert len(small["records"]) == 300
    tiny = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=5"}).json()
    assert len(tiny["records"]) == 200  # Salesforce's minimum
    huge = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=9000"}).json()
    assert len(huge["records"]) == 2000


def test_a_query_is_evaluated_once_and_pages_come_from_its_cursor(sf):
    first = sf.query("SELECT Id FROM Contact WHERE LastName LIKE 'Last0%'").json()
    assert first["totalSize"] == 4500
    # a contact created after the query started does not appear in its later pages
    sf.post("sobjects/Contact", json={"LastName": "Last0late"})
    records = follow(sf, first)
    assert len(records) == 4500 and len({r["Id"] for r in records}) == 4500
    assert sf.ctx.stats()["records_returned"][salesforce_query.RECORDS_ROUTE] == 4500


def test_a_page_can_be_fetched_again_after_a_failed_transfer(sf):
    first = sf.query("SELECT Id FROM Contact").json()
    again = sf.get(first["nextRecordsUrl"]).json()
    assert sf.get(first["nextRecordsUrl"]).json() == again


def test_unknown_or_expired_query_locators_are_rejected(sf, monkeypatch):
    response = sf.get("query/01g000000000000000-2000")
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    first = sf.query("SELECT Id FROM Contact").json()
    monkeypatch.setattr(salesforce_query, "CURSOR_IDLE_S", -1)
    assert sf.get(first["nextRecordsUrl"]).json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_open_cursors_are_capped_by_evicting_the_least_recently_used(sf):
    first = sf.query("SELECT Id FROM Contact").json()
    for _ in range(salesforce_query.MAX_CURSORS):
        sf.query("SELECT Id FROM Contact")
    assert sf.get(first["nextRecordsUrl"]).json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_incremental_query_by_system_modstamp_returns_only_changed_contacts(sf):
    latest = sf.query("SELECT SystemModstamp FROM Contact ORDER BY SystemModstamp DESC LIMIT 1").json()
    watermark = latest["records"][0]["SystemModstamp"]
    some = sf.query("SELECT Id FROM Contact WHERE External_User_Id__c IN ('ext-1', 'ext-2')").json()["records"]
    for record in some:
        assert sf.patch(f"sobjects/Contact/{record['Id']}", json={"FirstName": "Changed"}).status_code == 204
    soql_time = watermark.replace("+0000", "Z")
    changed = sf.query(f"SELECT Id, FirstName, SystemModstamp FROM Contact WHERE SystemModstamp > {soql_time}").json()
    assert sorted(r["Id"] for r in changed["records"]) == sorted(r["Id"] for r in some)
    assert all(r["SystemModstamp"] > watermark for r in changed["records"])


def test_query_skips_deleted_contacts_and_query_all_includes_them(sf):
    victim = sf.query("SELECT Id FROM Contact WHERE External_User_Id__c = 'ext-3'").json()["records"][0]["Id"]
    assert sf.delete(f"sobjects/Contact/{victim}").status_code == 204
    soql = f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{victim}'"
    assert sf.query(soql).json()["totalSize"] == 0
    assert sf.query(soql, all_rows=True).json()["records"][0]["IsDeleted"] is True
    assert sf.query("SELECT COUNT() FROM Contact").json() == {"totalSize": 4499, "done": True, "records": []}
    assert sf.query("SELECT COUNT() FROM Contact", all_rows=True).json()["totalSize"] == 4500


def test_query_errors_use_the_salesforce_error_shape(sf):
    bad_field = sf.query("SELECT Id, Nope FROM Contact")
    assert bad_field.status_code == 400
    assert bad_field.json() == [{"message": "No such column 'Nope' on entity 'Contact'.", "errorCode": "INVALID_FIELD"}]
    syntax = sf.query("SELECT Id FROM Contact WHERE")
    assert syntax.status_code == 400 and syntax.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert sf.get("query").json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_trailing_slashes_reach_the_same_endpoints(sf):
    body = sf.get("query/", params={"q": "SELECT Id FROM Contact LIMIT 1"}).json()
    assert body["totalSize"] == 1
