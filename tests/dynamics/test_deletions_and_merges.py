"""A contact deleted or merged in Dynamics is respected like one in Salesforce: Dataverse's merge deactivates the
subordinate and points its masterid at the survivor, and the link follows it; a deleted contact (a change-tracking
tombstone) is not created again and its id leaves the identity."""
from __future__ import annotations

import duckdb
import orjson
import pytest

from clients.dataverse import DataverseClient
from settings import load_settings
from tests.dbt.test_linking_build import EXT, _graph_user
from tests.sync_cycle import sync_crms

pytestmark = pytest.mark.slow

PEOPLE = [("u-del", "Dora", "Delete"), ("u-merge", "Mona", "Merge"), ("u-keep", "Kim", "Keep")]
CONTACT_IDS = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(len(PEOPLE))]
SURVIVOR = "00000000-0000-4000-8000-000000000009"


def dataverse_contact(contact_id: str, first: str, last: str, email: str) -> dict:
    return {"contactid": contact_id, "firstname": first, "lastname": last, "emailaddress1": email,
            "address1_country": "Germany", "createdon": "2024-01-01T00:00:00Z", "modifiedon": "2024-02-01T00:00:00Z"}


def links(warehouse) -> dict[str, tuple[str, str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {i: (s, c) for i, s, c in con.execute(
            "select identity_id, status, contact_id from marts.identity_contact_links where crm = 'dynamics'").fetchall()}


def test_a_deleted_contact_is_not_created_again_and_a_merged_one_is_followed_to_the_survivor(sandbox_factory,
                                                                                            tmp_path):
    users = [_graph_user(uid, given, family, f"{given.lower()}@example.org", True) for uid, given, family in PEOPLE]
    contacts = [dataverse_contact(cid, given, family, f"{given.lower()}@example.org")
                for cid, (_, given, family) in zip(CONTACT_IDS, PEOPLE)]
    contacts.append(dataverse_contact(SURVIVOR, "Mona", "Merge", "mona.work@example.com"))
    sandbox = sandbox_factory(users=users, contacts=[], akamai_users=[], seeds={"dynamics_contacts": contacts})
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    contact_of = {uid: cid for cid, (uid, _, _) in zip(CONTACT_IDS, PEOPLE)}
    sync_crms(sandbox.env, warehouse, "setup", ["dynamics"])
    assert links(warehouse) == {uid: ("active", contact_of[uid]) for uid, _, _ in PEOPLE}

    # the CRM team deletes Dora's contact and merges Mona's into her other one, through the Web API
    client = DataverseClient(load_settings(sandbox.env).dynamics)
    assert client.request("DELETE", f"contacts({contact_of['u-del']})").status_code == 204
    assert client.request("POST", "Merge", data=orjson.dumps({
        "Target": {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": SURVIVOR},
        "Subordinate": {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": contact_of["u-merge"]},
        "UpdateContent": {"@odata.type": "Microsoft.Dynamics.CRM.contact"},
        "PerformParentingChecks": False}), headers={"Content-Type": "application/json"}).status_code == 204

    sync_crms(sandbox.env, warehouse, "after", ["dynamics"])
    assert links(warehouse) == {"u-del": ("contact_deleted", contact_of["u-del"]), "u-merge": ("active", SURVIVOR),
                                "u-keep": ("active", contact_of["u-keep"])}
    crm = {c["contactid"]: c for c in sandbox.state("dynamics")["dynamics"]["contacts"]}
    assert not [c for c in crm.values() if c.get("idlink_identityid") == "u-del"], "the deleted contact came back"
    assert crm[SURVIVOR]["idlink_identityid"] == "u-merge"
    merged = crm[contact_of["u-merge"]]
    assert (merged["statecode"], merged["merged"], merged["_masterid_value"]) == (1, True, SURVIVOR)
    users_now = {u["id"]: u for u in sandbox.state("b2c")["b2c"]["users"]}
    assert users_now["u-del"].get(EXT + "CrmContactId") is None
    assert users_now["u-merge"].get(EXT + "CrmContactId") == SURVIVOR
