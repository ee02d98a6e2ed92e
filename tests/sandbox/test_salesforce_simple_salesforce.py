"""The simulator through the real client: simple-salesforce over HTTPS against a sandbox subprocess."""
from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMoreThanOneRecord, SalesforceResourceNotFound

EXT = "External_User_Id__c"
SEED_SIZE = 2300  # more than one 2000-row page


@pytest.fixture
def running(sandbox_factory):
    contacts = [{"LastName": f"Seed{i:04d}", "Email": f"seed{i}@example.com", EXT: f"ext-{i}"} for i in range(SEED_SIZE)]
    contacts.append({"LastName": "Twin", EXT: "twin"})
    contacts.append({"LastName": "Twin", EXT: "TWIN"})
    return sandbox_factory(contacts=contacts)


@pytest.fixture
def sf(running):
    env = running.env
    session = requests.Session()
    session.verify = env["SANDBOX_CA_BUNDLE"]
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would otherwise replace `verify`
    token = session.post(f"{env['SALESFORCE_LOGIN_URL']}/services/oauth2/token", data={
        "grant_type": "client_credentials",
        "client_id": env["SALESFORCE_CLIENT_ID"],
        "client_secret": env["SALESFORCE_CLIENT_SECRET"],
    }, timeout=30)
    token.raise_for_status()
    client = Salesforce(session_id=token.json()["access_token"], instance_url=token.json()["instance_url"],
                        session=session, version=env["SALESFORCE_API_VERSION"])
    yield client
    session.close()


def test_simple_salesforce_reads_writes_and_bulk_loads_against_the_sandbox(running, sf):
    everything = sf.query_all(f"SELECT Id, LastName, {EXT} FROM Contact")
    assert everything["totalSize"] == SEED_SIZE + 2 and len(everything["records"]) == SEED_SIZE + 2
    assert sf.api_usage["api-usage"].used >= 2  # two pages, usage parsed from Sforce-Limit-Info

    watermark = max(r["SystemModstamp"] for r in sf.query_all("SELECT SystemModstamp FROM Contact")["records"])
    assert sf.Contact.upsert(f"{EXT}/ext-new", {"LastName": "Fresh"}) == 201
    assert sf.Contact.upsert(f"{EXT}/ext-1", {"FirstName": "Changed"}) == 200
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Contact.upsert(f"{EXT}/twin", {"FirstName": "Ambiguous"})

    since = watermark.replace("+0000", "Z")
    changed = sf.query_all(f"SELECT {EXT} FROM Contact WHERE SystemModstamp > {since}")["records"]
    assert sorted(r[EXT] for r in changed) == ["ext-1", "ext-new"]

    fresh_id = sf.Contact.get_by_custom_id(EXT, "ext-new")["Id"]
    assert sf.Contact.delete(fresh_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(fresh_id)
    deleted = sf.query_all("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)["records"]
    assert [r["Id"] for r in deleted] == [fresh_id]

    assert {f["name"] for f in sf.Contact.describe()["fields"]} >= {"Id", "Email", EXT, "SystemModstamp"}

    outcome = sf.bulk2.Contact.upsert(
        records=[{EXT: "bulk-1", "LastName": "Bulk"}, {EXT: "bulk-2", "LastName": "Bulk", "Email": "broken"}],
        external_id_field=EXT, wait=1,
    )
    assert [(o["numberRecordsProcessed"], o["numberRecordsFailed"]) for o in outcome] == [(2, 1)]

    state = running.state("salesforce")["salesforce"]["Contact"]
    assert {r[EXT] for r in state} >= {"ext-new", "bulk-1"} and "bulk-2" not in {r[EXT] for r in state}
    assert running.stats()["records_returned"]["salesforce:query"] >= SEED_SIZE
