"""Loading Salesforce contacts into raw_salesforce.contact, incrementally on SystemModstamp."""

from __future__ import annotations

import dlt
import pytest

from clients.salesforce import SalesforceClient
from ingestion.pipeline import run_salesforce
from tests.ingestion.helpers import query, salesforce_settings, scalar

CONTACTS = "raw_salesforce.contact"
QUERY_ROUTE = "salesforce:query"


@pytest.fixture
def settings(private_sandbox):
    private_sandbox.configure(fault_rate=0.0)
    return salesforce_settings(private_sandbox.env)


def live_contact_ids(sandbox) -> set[str]:
    return {c["Id"] for c in sandbox.state("salesforce")["salesforce"]["Contact"] if not c.get("IsDeleted")}


def test_first_load_lands_every_contact(private_sandbox, settings, warehouse):
    run_salesforce(settings, warehouse)
    loaded = {r[0] for r in query(warehouse, f"select id from {CONTACTS} where not is_deleted")}
    assert loaded == live_contact_ids(private_sandbox)
    prelinked = scalar(warehouse, f"select count(*) from {CONTACTS} where external_user_id is not null")
    assert prelinked == sum(
        1
        for c in private_sandbox.state("salesforce")["salesforce"]["Contact"]
        if c.get("External_User_Id__c") and not c.get("IsDeleted")
    )


def test_incremental_load_asks_only_for_changed_contacts(private_sandbox, settings, warehouse):
    run_salesforce(settings, warehouse)
    total = scalar(warehouse, f"select count(*) from {CONTACTS}")
    contact_id = sorted(live_contact_ids(private_sandbox))[2]
    client = SalesforceClient(settings)
    assert (
        client.request("PATCH", f"sobjects/Contact/{contact_id}", json={"MailingCity": "Leeds"}).status_code
        == 204
    )
    private_sandbox.reset_stats()
    run_salesforce(settings, warehouse)
    returned = private_sandbox.stats()["records_returned"].get(QUERY_ROUTE, 0)
    assert 1 <= returned < total / 4  # the change plus at most the boundary second, not the whole org
    assert scalar(warehouse, f"select mailing_city from {CONTACTS} where id = ?", [contact_id]) == "Leeds"
    assert scalar(warehouse, f"select count(*) from {CONTACTS}") == total


def test_soft_deleted_contact_becomes_is_deleted(private_sandbox, settings, warehouse):
    run_salesforce(settings, warehouse)
    contact_id = min(live_contact_ids(private_sandbox))
    assert SalesforceClient(settings).request("DELETE", f"sobjects/Contact/{contact_id}").status_code == 204
    run_salesforce(settings, warehouse)
    deleted, deleted_at, last_name = query(
        warehouse, f"select is_deleted, deleted_at, last_name from {CONTACTS} where id = ?", [contact_id]
    )[0]
    assert deleted is True and deleted_at is not None and last_name


def test_targeted_run_fetches_only_the_given_contacts_and_keeps_the_cursor(
    private_sandbox, settings, warehouse
):
    run_salesforce(settings, warehouse)
    state_before = dlt.pipeline("salesforce", pipelines_dir=str(_pipelines_dir(warehouse))).state
    ids = sorted(live_contact_ids(private_sandbox))
    SalesforceClient(settings).request(
        "PATCH", f"sobjects/Contact/{ids[4]}", json={"Phone": "+44 20 7946 0018"}
    )
    private_sandbox.reset_stats()
    run_salesforce(settings, warehouse, contact_ids=[ids[4]])
    assert private_sandbox.stats()["records_returned"].get(QUERY_ROUTE) == 1
    assert scalar(warehouse, f"select phone_e164 from {CONTACTS} where id = ?", [ids[4]]) == "+442079460018"
    state_after = dlt.pipeline("salesforce", pipelines_dir=str(_pipelines_dir(warehouse))).state
    assert _cursor(state_before) is not None
    assert _cursor(state_after) == _cursor(state_before)


def test_requested_ids_that_are_not_salesforce_ids_are_refused(settings, warehouse):
    with pytest.raises(Exception, match="not Salesforce ids"):
        run_salesforce(settings, warehouse, contact_ids=["003' OR Name != '"])


def test_unknown_configured_field_is_named_in_a_clear_error(settings, warehouse):
    bad = salesforce_settings(
        {"SALESFORCE_CLIENT_ID": settings.client_id, "SALESFORCE_CLIENT_SECRET": settings.client_secret},
        login_url=settings.login_url,
        ca_bundle=settings.ca_bundle,
        extra_contact_fields=("Title", "Favourite_Colour__c"),
    )
    with pytest.raises(Exception) as info:
        run_salesforce(bad, warehouse)
    assert "Contact has no field(s) Favourite_Colour__c (" in str(info.value)


def test_extra_fields_land_as_json(private_sandbox, settings, warehouse):
    import dataclasses

    run_salesforce(dataclasses.replace(settings, extra_contact_fields=("Title", "LeadSource")), warehouse)
    keys = scalar(warehouse, f"select json_keys(extra_fields) from {CONTACTS} limit 1")
    assert sorted(keys) == ["LeadSource", "Title"]


def test_failed_run_leaves_the_cursor_so_the_next_run_loses_nothing(private_sandbox, settings, warehouse):
    import dataclasses

    run_salesforce(settings, warehouse)
    contact_id = sorted(live_contact_ids(private_sandbox))[7]
    SalesforceClient(settings).request(
        "PATCH", f"sobjects/Contact/{contact_id}", json={"MailingCity": "York"}
    )
    private_sandbox.configure(fault_rate=1.0)
    try:
        with pytest.raises(Exception) as info:
            run_salesforce(dataclasses.replace(settings, retry_max_s=1.0, timeout_s=1.0), warehouse)
        assert "still failing" in str(info.value) or "unreachable after" in str(info.value)
    finally:
        private_sandbox.configure(fault_rate=0.0)
    run_salesforce(settings, warehouse)
    assert scalar(warehouse, f"select mailing_city from {CONTACTS} where id = ?", [contact_id]) == "York"


def _pipelines_dir(warehouse: str):
    from pathlib import Path

    return Path(warehouse).parent / "dlt_pipelines"


def _cursor(state: dict):
    resources = state.get("sources", {}).get("salesforce", {}).get("resources", {})
    return resources.get("contact", {}).get("incremental", {}).get("system_modstamp", {}).get("last_value")
