"""A contact deleted or merged in the CRM is respected: the link is kept as contact_deleted (the identity's
contact id cleared, no contact created again unless the policy asks) or follows the merge to the survivor; every
change is in the link history and the sync log."""
from __future__ import annotations

import duckdb
import pytest

from sandbox.salesforce.ids import to_18
from tests.dbt.test_linking_build import EXT, _contact, _graph_user
from tests.sync_cycle import sync_cycle

pytestmark = pytest.mark.slow

PEOPLE = [("u-del", "Dora", "Delete"), ("u-merge", "Mona", "Merge"), ("u-keep", "Kim", "Keep")]
CONTACT_IDS = [to_18(f"003T0000000000{n}") for n in range(len(PEOPLE))]
SURVIVOR = to_18("003T00000000009")


@pytest.fixture
def linked_world(sandbox_factory, tmp_path):
    """Three consented people, each linked to their contact by one sync; a second, unlinked contact of Mona's
    (another email) is what the CRM team will merge her linked contact into."""
    users = [_graph_user(uid, given, family, f"{given.lower()}@example.org", True) for uid, given, family in PEOPLE]
    contacts = [_contact(contact_id, given, family, f"{given.lower()}@example.org")
                for contact_id, (_, given, family) in zip(CONTACT_IDS, PEOPLE)]
    contacts.append(_contact(SURVIVOR, "Mona", "Merge", "mona.work@example.com"))
    sandbox = sandbox_factory(users=users, contacts=contacts, akamai_users=[])
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    sync_cycle(sandbox.env, warehouse, "setup")
    world = type("World", (), {})()
    world.sandbox, world.warehouse = sandbox, warehouse
    world.contact_of = {uid: contact_id for contact_id, (uid, _, _) in zip(CONTACT_IDS, PEOPLE)}
    assert links(world) == {uid: ("active", world.contact_of[uid]) for uid, _, _ in PEOPLE}
    assert contact_id_on_identity(world, "u-del") == world.contact_of["u-del"]
    return world


def links(world) -> dict[str, tuple[str, str]]:
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        return {i: (s, c) for i, s, c in con.execute(
            "select identity_id, status, contact_id from marts.identity_contact_links").fetchall()}


def crm(world) -> list[dict]:
    return world.sandbox.state("salesforce")["salesforce"]["Contact"]


def contact_id_on_identity(world, uid: str) -> str | None:
    users = {u["id"]: u for u in world.sandbox.state("b2c")["b2c"]["users"]}
    return users[uid].get(EXT + "CrmContactId")


def delete_and_merge_in_the_crm(world) -> None:
    admin = world.sandbox.client
    token = admin.post(world.sandbox.env["SALESFORCE_LOGIN_URL"] + "/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": world.sandbox.env["SALESFORCE_CLIENT_ID"],
        "client_secret": world.sandbox.env["SALESFORCE_CLIENT_SECRET"]}).json()
    base = f"{token['instance_url']}/services/data/v{world.sandbox.env['SALESFORCE_API_VERSION']}"
    answer = admin.delete(f"{base}/sobjects/Contact/{world.contact_of['u-del']}",
                          headers={"Authorization": f"Bearer {token['access_token']}"})
    assert answer.status_code == 204
    answer = admin.post(world.sandbox.url + "/__sandbox/salesforce/merge",
                        json={"master": SURVIVOR, "losers": [world.contact_of["u-merge"]]})
    assert answer.status_code == 200


def test_a_deleted_contact_is_not_created_again_and_a_merged_one_is_followed_to_the_survivor(linked_world):
    world = linked_world
    delete_and_merge_in_the_crm(world)
    sync_cycle(world.sandbox.env, world.warehouse, "after")

    assert links(world) == {"u-del": ("contact_deleted", world.contact_of["u-del"]),
                            "u-merge": ("active", SURVIVOR),
                            "u-keep": ("active", world.contact_of["u-keep"])}
    live = [c for c in crm(world) if not c.get("IsDeleted")]
    assert not [c for c in live if c.get("External_User_Id__c") == "u-del"], "the deleted contact came back"
    assert contact_id_on_identity(world, "u-del") is None
    survivor = next(c for c in live if c["Id"] == SURVIVOR)
    assert survivor["External_User_Id__c"] == "u-merge"
    assert contact_id_on_identity(world, "u-merge") == SURVIVOR

    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        history = con.execute("""select identity_id, status, contact_id, match_rule
            from snapshots.identity_contact_links_snapshot where identity_id in ('u-del', 'u-merge')
            order by identity_id, dbt_valid_from""").fetchall()
        cleared = con.execute("""select count(*) from reverse_etl.sync_log
            where system = 'b2c' and record_key = 'u-del:CrmContactId' and outcome = 'succeeded'""").fetchone()
    assert history == [("u-del", "active", world.contact_of["u-del"], "email"),
                       ("u-del", "contact_deleted", world.contact_of["u-del"], "email"),
                       ("u-merge", "active", world.contact_of["u-merge"], "email"),
                       ("u-merge", "active", SURVIVOR, "crm_merge")]
    assert cleared == (2,)  # written by the first sync, cleared by the second

    # the policy that re-creates a contact deleted (not merged) in the CRM
    sync_cycle(world.sandbox.env, world.warehouse, "recreate", dbt_vars={"recreate_deleted_contacts": True})
    recreated = [c for c in crm(world) if not c.get("IsDeleted") and c.get("External_User_Id__c") == "u-del"]
    assert len(recreated) == 1 and recreated[0]["Id"] != world.contact_of["u-del"]
    merged = [c for c in crm(world) if not c.get("IsDeleted") and c.get("External_User_Id__c") == "u-merge"]
    assert [c["Id"] for c in merged] == [SURVIVOR]  # a merge is never undone
