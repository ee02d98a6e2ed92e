"""The Dynamics changes sensor follows change tracking (its cursor is the delta link) and asks for targeted runs of
the contacts created, changed, merged or deleted since; the watch starts from now, not with a backlog run."""
from __future__ import annotations

import uuid

import dagster as dg
import orjson
import pytest

from clients.dataverse import DataverseClient
from orchestration.defs import realtime
from orchestration.defs.resources import DataverseResource
from sandbox.synthetic import generate


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    from tests.fixtures_sandbox import launch_sandbox

    running = launch_sandbox(tmp_path_factory.mktemp("dynamics-sensor"), users=[], contacts=[], akamai_users=[],
                             seeds={"dynamics_contacts": generate(40, seed=9, dynamics_share=1.0).dynamics_contacts})
    yield running
    running.stop()


def resource_for(environment) -> DataverseResource:
    env = environment.env
    return DataverseResource(url=env["DATAVERSE_URL"], tenant_id=env["DATAVERSE_TENANT_ID"],
                             client_id=env["DATAVERSE_CLIENT_ID"], client_secret=env["DATAVERSE_CLIENT_SECRET"],
                             authority_host=env["DATAVERSE_AUTHORITY_HOST"], ca_bundle=env["IDLINK_CA_BUNDLE"],
                             page_size=7, http_timeout_s=10, retry_max_s=10)


def evaluate(dynamics: DataverseResource, cursor: str | None, defs: dg.Definitions):
    context = dg.build_sensor_context(cursor=cursor, definitions=defs, resources={"dynamics": dynamics})
    return realtime.dynamics_changes_sensor.evaluate_tick(context)


def write(dynamics: DataverseResource, method: str, path: str, body: dict | None = None) -> int:
    response = DataverseClient(dynamics.settings()).request(
        method, path, data=orjson.dumps(body) if body is not None else None,
        headers={"Content-Type": "application/json"})
    return response.status_code


def test_an_unconfigured_dynamics_is_skipped(stand_in_defs) -> None:
    result = evaluate(DataverseResource(), None, stand_in_defs)
    assert result.run_requests == [] and "not configured" in result.skip_message


def test_created_changed_merged_and_deleted_contacts_become_one_targeted_run(
        environment, stand_in_defs, recorded_run_config) -> None:
    dynamics = resource_for(environment)
    first = evaluate(dynamics, None, stand_in_defs)  # starts from now: 40 existing contacts make no run
    assert first.run_requests == [] and first.cursor
    assert evaluate(dynamics, first.cursor, stand_in_defs).run_requests == []

    existing = sorted(c["contactid"] for c in environment.state("dynamics")["dynamics"]["contacts"])
    created = str(uuid.uuid4())
    assert write(dynamics, "PATCH", f"contacts({created})", {"lastname": "Sensor"}) == 204
    assert write(dynamics, "PATCH", f"contacts({existing[0]})", {"firstname": "Changed"}) == 204
    assert write(dynamics, "DELETE", f"contacts({existing[1]})") == 204
    assert write(dynamics, "POST", "Merge", {"Target": {"contactid": existing[2]},
                                             "Subordinate": {"contactid": existing[3]}, "UpdateContent": {},
                                             "PerformParentingChecks": False}) == 204
    second = evaluate(dynamics, first.cursor, stand_in_defs)
    [request] = second.run_requests
    [(kind, ids)] = recorded_run_config
    assert kind == "dynamics" and set(ids) == {created, existing[0], existing[1], existing[2], existing[3]}
    assert dg.AssetKey("raw_dynamics_contact") in request.asset_selection
    assert dg.AssetKey("raw_salesforce_contact") not in request.asset_selection
    assert request.tags["idlink/trigger"] == "dynamics_changes"
    assert evaluate(dynamics, second.cursor, stand_in_defs).run_requests == []  # the cursor moved past them
