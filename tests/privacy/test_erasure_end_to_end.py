"""Erasure end to end, through the command and two full_sync runs against the sandbox: afterwards no file under the
data directory (warehouse, published databases, inbox, dlt and dbt working folders, the Dagster instance) holds
the person's email or name, only keys and the fact and time of erasure stay, the CRM policy was applied and
audited, and the person still signed up at the provider is never loaded again."""
from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from orchestration.definitions import build_definitions
from privacy.__main__ import main as privacy_command
from sandbox.synthetic import DEFAULT_EXTENSIONS_APP_ID

pytestmark = pytest.mark.slow

EXT = f"extension_{DEFAULT_EXTENSIONS_APP_ID.replace('-', '')}_"
ERASED_ID = "00000000-0000-4000-8000-00000000e4a5"
EMAIL = "zebulon.quixotewright@example.org"
FAMILY_NAME = "Quixotewright"
KEPT_EMAIL = "ada.lovelace@example.org"


def _user(uid: str, given: str, family: str, email: str) -> dict:
    return {"id": uid, "displayName": f"{given} {family}", "givenName": given, "surname": family,
            "accountEnabled": True, "createdDateTime": "2024-01-01T00:00:00Z", EXT + "CrmSyncConsent": True,
            "identities": [{"signInType": "emailAddress", "issuer": "t", "issuerAssignedId": email}]}


USERS = [_user(ERASED_ID, "Zebulon", FAMILY_NAME, EMAIL),
         _user("00000000-0000-4000-8000-0000000000a1", "Ada", "Lovelace", KEPT_EMAIL)]
CONTACTS = [{"FirstName": "Zebulon", "LastName": FAMILY_NAME, "Email": EMAIL},
            {"FirstName": "Ada", "LastName": "Lovelace", "Email": KEPT_EMAIL}]


def _traces(data_dir, needles: list[bytes]) -> list[str]:
    found = []
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            content = path.read_bytes().lower()
            found += [f"{path.relative_to(data_dir)}: {needle.decode()}" for needle in needles if needle in content]
    return found


def test_an_erased_person_leaves_no_trace_on_disk_and_their_contact_is_deleted(sandbox_factory, tmp_path,
                                                                                monkeypatch, capsys):
    sandbox = sandbox_factory(users=USERS, contacts=CONTACTS)
    sandbox.apply_env(monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("WAREHOUSE_PATH", str(data / "warehouse.duckdb"))
    monkeypatch.setenv("GATEWAY_INBOX_PATH", str(data / "inbox.sqlite3"))
    monkeypatch.setenv("ERASURE_CRM_POLICY", "delete")
    needles = [EMAIL.encode(), FAMILY_NAME.lower().encode()]
    (data / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(data / "dagster_home"))
    try:
        def full_sync():
            result = build_definitions().resolve_job_def("full_sync").execute_in_process(instance=instance)
            assert result.success
            return result

        full_sync()
        assert _traces(data, needles), "the scan finds the person before the erasure (it can see what it seeks)"

        assert privacy_command(["erase", "--provider", "b2c", "--identity-id", ERASED_ID,
                                "--requested-by", "ticket-4711"]) == 0
        assert '"requested":true' in capsys.readouterr().out
        erasing_run = full_sync()
        assert _traces(data, needles) == []
        full_sync()  # the person is still at the provider, and their deleted contact is a change in the CRM
        assert _traces(data, needles) == [], "an erased person is never loaded again"
    finally:
        instance.dispose()

    contacts = {c["Email"]: c for c in sandbox.state()["salesforce"]["Contact"]}
    assert contacts[EMAIL].get("IsDeleted") is True, "the CRM policy (delete) was applied"
    assert contacts[KEPT_EMAIL].get("IsDeleted") is not True
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        erasure = con.execute("select identity_provider, identity_id, requested_by, crm_policy, erased_at is not null, "
                              "compacted_at is not null from privacy.erasures").fetchall()
        deleted = con.execute("select run_id, system, outcome from reverse_etl.sync_log "
                              "where operation = 'delete_contact' order by system").fetchall()
        kept = con.execute("select crm, count(*) from marts.identity_contact_links where status = 'active' "
                               "group by crm order by crm").fetchall()
    assert erasure == [("b2c", ERASED_ID, "ticket-4711", "delete", True, True)]
    # the sandbox holds the person in both CRMs: each contact deleted, audited under the erasing run
    assert deleted == [(erasing_run.run_id, "dynamics", "succeeded"), (erasing_run.run_id, "salesforce", "succeeded")]
    assert kept == [("dynamics", 1), ("salesforce", 1)], "everyone else stays linked, in each CRM"
