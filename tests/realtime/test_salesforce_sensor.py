"""The Salesforce changes sensor: watches SystemModstamp, asks for targeted runs of the changed Contacts."""
from __future__ import annotations

import dagster as dg
import orjson

from clients.salesforce import SalesforceClient
from orchestration.defs import realtime
from orchestration.defs.resources import SalesforceResource


def resource_for(sandbox) -> SalesforceResource:
    env = sandbox.env
    return SalesforceResource(client_id=env["SALESFORCE_CLIENT_ID"], client_secret=env["SALESFORCE_CLIENT_SECRET"],
                              login_url=env["SALESFORCE_LOGIN_URL"], ca_bundle=env["IDLINK_CA_BUNDLE"],
                              http_timeout_s="10", retry_max_s="10")


def evaluate(salesforce: SalesforceResource, cursor: str | None, defs: dg.Definitions):
    context = dg.build_sensor_context(cursor=cursor, definitions=defs, resources={"salesforce": salesforce})
    return realtime.salesforce_changes_sensor.evaluate_tick(context)


def create_contact(salesforce: SalesforceResource, last_name: str) -> str:
    response = SalesforceClient(salesforce.settings()).request(
        "POST", "sobjects/Contact", data=orjson.dumps({"LastName": last_name}),
        headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_an_unconfigured_salesforce_is_skipped(stand_in_defs) -> None:
    result = evaluate(SalesforceResource(), None, stand_in_defs)
    assert result.run_requests == [] and "not configured" in result.skip_message


def test_changed_contacts_become_a_targeted_run_and_the_cursor_follows_system_modstamp(
        sandbox, stand_in_defs, recorded_run_config) -> None:
    salesforce = resource_for(sandbox)
    first = evaluate(salesforce, None, stand_in_defs)  # starts watching from now, no backlog run
    assert first.run_requests == [] and first.cursor
    created = [create_contact(salesforce, f"Sensor{n}") for n in range(2)]
    second = evaluate(salesforce, first.cursor, stand_in_defs)
    [request] = second.run_requests
    assert recorded_run_config == [("targeted", [], sorted(created))]
    assert dg.AssetKey("raw_salesforce_contact") in request.asset_selection
    assert request.tags["idlink/trigger"] == "salesforce_changes"
    assert second.cursor > first.cursor
    third = evaluate(salesforce, second.cursor, stand_in_defs)
    assert third.run_requests == []


def test_a_contact_deleted_in_the_crm_is_a_change_too(sandbox, stand_in_defs, recorded_run_config) -> None:
    salesforce = resource_for(sandbox)
    contact_id = create_contact(salesforce, "SensorDeleted")
    first = evaluate(salesforce, None, stand_in_defs)
    response = SalesforceClient(salesforce.settings()).request("DELETE", f"sobjects/Contact/{contact_id}")
    assert response.status_code == 204
    second = evaluate(salesforce, first.cursor, stand_in_defs)
    assert len(second.run_requests) == 1 and recorded_run_config == [("targeted", [], [contact_id])]


def test_changes_within_the_cursor_second_are_compared_to_the_millisecond() -> None:
    since = realtime._parse_modstamp("2026-01-02T03:04:05.500+0000")
    records = [{"Id": "003A", "SystemModstamp": "2026-01-02T03:04:05.200+0000"},  # before the cursor
               {"Id": "003B", "SystemModstamp": "2026-01-02T03:04:05.500+0000"},  # at it, already handed on
               {"Id": "003C", "SystemModstamp": "2026-01-02T03:04:05.500+0000"},  # at it, new
               {"Id": "003D", "SystemModstamp": "2026-01-02T03:04:05.900Z"}]
    fresh = realtime.unseen_changes(records, since, {"003B"})
    assert [r["Id"] for r in fresh] == ["003C", "003D"]


def test_soql_datetime_literals_have_whole_seconds_in_utc() -> None:
    moment = realtime._parse_modstamp("2026-01-02T04:04:05.678+01:00")
    assert realtime._soql_datetime(moment) == "2026-01-02T03:04:05Z"


def test_a_contact_change_loads_only_salesforce_and_gives_no_config_to_unselected_loads(
        stand_in_defs, recorded_run_config) -> None:
    plan = realtime.TargetedRunPlan()
    plan.contact_ids.add("003A")
    repo = stand_in_defs.get_repository_def()
    request = plan.run_request("k", repo, {})
    assert dg.AssetKey("raw_b2c_users") not in request.asset_selection
    assert dg.AssetKey("raw_salesforce_contact") in request.asset_selection
    assert request.run_config == {"ops": {"raw_salesforce_contact": {"config": {"contact_ids": ["003A"]}}},
                                  "execution": {"config": {"in_process": {}}}}
