"""Consent per purpose against the sandbox, through full_sync: marketing reaches the CRM as the contact's opt-out
(on creation and on linked contacts, once), and an expired CRM-sync consent creates nothing."""
from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from orchestration.definitions import build_definitions
from sandbox.synthetic import DEFAULT_EXTENSIONS_APP_ID

pytestmark = pytest.mark.slow

EXT = f"extension_{DEFAULT_EXTENSIONS_APP_ID.replace('-', '')}_"


def _user(n: int, **attributes) -> dict:
    email = f"person{n}@example.org"
    user = {"id": f"00000000-0000-4000-8000-00000000000{n}", "displayName": f"Ada Family{n}", "givenName": "Ada",
            "surname": f"Family{n}", "accountEnabled": True, "createdDateTime": "2024-01-01T00:00:00Z",
            "identities": [{"signInType": "emailAddress", "issuer": "t", "issuerAssignedId": email}]}
    user.update({EXT + name: value for name, value in attributes.items()})
    return user


USERS = [
    _user(1, CrmSyncConsent=True, MarketingConsent=True),  # linked; stays opted in
    _user(2, CrmSyncConsent=True, MarketingConsent=False),  # linked; opted out on its contact
    _user(3, CrmSyncConsent=True),  # created, opted out (marketing never answered)
    _user(4, CrmSyncConsent=True, CrmSyncConsentExpiresAt="2001-01-01T00:00:00Z"),  # expired: nothing
]
CONTACTS = [{"FirstName": "Ada", "LastName": f"Family{n}", "Email": f"person{n}@example.org"} for n in (1, 2)]


def test_marketing_consent_reaches_the_crm_as_an_opt_out_and_expired_consent_creates_nothing(
        sandbox_factory, tmp_path, monkeypatch):
    sandbox = sandbox_factory(users=USERS, contacts=CONTACTS)
    sandbox.apply_env(monkeypatch)
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    with dg.instance_for_test() as instance:
        runs = [build_definitions().resolve_job_def("full_sync").execute_in_process(instance=instance)
                for _ in range(2)]
    by_email = {c["Email"]: c for c in sandbox.state()["salesforce"]["Contact"]}
    assert by_email["person1@example.org"]["HasOptedOutOfEmail"] is False
    assert by_email["person2@example.org"]["HasOptedOutOfEmail"] is True
    assert by_email["person3@example.org"]["HasOptedOutOfEmail"] is True
    assert "person4@example.org" not in by_email, "an expired consent creates no contact"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        field_writes = con.execute("select run_id, count(*) from reverse_etl.sync_log where operation = 'set_field' "
                                   "group by run_id").fetchall()
    assert dict(field_writes) == {runs[0].run_id: 1}, "one opt-out written, and not again once the CRM holds it"
