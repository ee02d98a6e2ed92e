"""The inbox sensor: one targeted run per batch of events, a cursor that advances, run keys that dedupe."""
from __future__ import annotations

import dagster as dg

from inbox import Inbox, InboxEvent
from orchestration.defs import realtime
from orchestration.defs.resources import InboxResource


def akamai_event(n: int, kind: str = "entityCreated") -> InboxEvent:
    return InboxEvent(id=f"akamai:jti-{n}", source="akamai", kind=kind, subject=f"uuid-{n}", payload={})


def b2c_event(n: int, contact_id: str | None = None, object_id: str | None = "oid") -> InboxEvent:
    return InboxEvent(id=f"b2c:req-{n}", source="b2c", kind="signUp",
                      subject=f"{object_id}-{n}" if object_id else None,
                      payload={"contact_id": contact_id, "outcome": "linked" if contact_id else "crm_timeout"})


def evaluate(defs: dg.Definitions, cursor: str | None = None):
    context = dg.build_sensor_context(cursor=cursor, definitions=defs, resources=defs.resources)
    return realtime.inbox_sensor.evaluate_tick(context)


def test_without_events_the_sensor_skips_and_keeps_its_cursor(inbox, stand_in_defs) -> None:
    result = evaluate(stand_in_defs, cursor="0")
    assert result.run_requests == [] and result.skip_message
    assert result.cursor in (None, "0")


def test_pending_events_become_one_targeted_run_and_the_cursor_moves_past_them(
        inbox: Inbox, stand_in_defs, recorded_run_config) -> None:
    for n in range(3):
        inbox.put(akamai_event(n))
    inbox.put(b2c_event(9, contact_id="003A"))
    result = evaluate(stand_in_defs)
    [request] = result.run_requests
    assert result.cursor == str(inbox.stats()["last_seq"])
    assert inbox.pending() == []  # handed on
    assert ("akamai", ["uuid-0", "uuid-1", "uuid-2"]) in recorded_run_config
    assert ("targeted", ["oid-9"], ["003A"]) in recorded_run_config
    assert request.run_config["ops"]["raw_akamai_users"]["config"]["identity_ids"] == ["uuid-0", "uuid-1", "uuid-2"]
    assert request.run_config["ops"]["raw_b2c_users"]["config"]["identity_ids"] == ["oid-9"]
    assert request.tags["idlink/trigger"] == "inbox" and request.tags["idlink/events"] == "4"


def test_a_targeted_run_executes_in_one_process(inbox: Inbox, stand_in_defs, recorded_run_config) -> None:
    inbox.put(akamai_event(1))
    [request] = evaluate(stand_in_defs).run_requests
    assert request.run_config["execution"] == {"config": {"in_process": {}}}


def test_a_fast_lane_link_fetches_both_the_identity_and_its_contact(
        inbox: Inbox, stand_in_defs, recorded_run_config) -> None:
    inbox.put(InboxEvent(id="fast_lane:uuid-4:003B:created", source="fast_lane", kind="created",
                         subject="uuid-4", payload={"provider": "akamai", "crm": "salesforce", "contact_id": "003B"}))
    [request] = evaluate(stand_in_defs).run_requests
    assert ("akamai", ["uuid-4"]) in recorded_run_config
    assert ("targeted", [], ["003B"]) in recorded_run_config
    assert {dg.AssetKey("raw_akamai_users"), dg.AssetKey("raw_salesforce_contact")} <= set(
        request.asset_selection)
    assert dg.AssetKey("raw_b2c_users") not in request.asset_selection


def test_only_ingestion_assets_with_work_are_selected_plus_everything_downstream(
        inbox: Inbox, stand_in_defs, recorded_run_config) -> None:
    inbox.put(akamai_event(1, kind="entityDeleted"))
    [request] = evaluate(stand_in_defs).run_requests
    assert set(request.asset_selection) == {
        dg.AssetKey("raw_akamai_users"), dg.AssetKey("identity_contact_links"),
        dg.AssetKey(["reverse_etl", "salesforce_contacts"]),
    }
    assert recorded_run_config == [("akamai", ["uuid-1"])]  # no B2C or Salesforce scan for an Akamai event


def test_the_run_key_is_the_same_for_the_same_events_so_a_repeated_tick_launches_nothing_new(
        tmp_path, stand_in_defs, recorded_run_config) -> None:
    keys = []
    for attempt in range(2):  # two inboxes holding the same events, as after a crash before the cursor moved
        path = tmp_path / f"inbox-{attempt}.sqlite3"
        box = Inbox(path)
        for n in (2, 1, 3)[:: 1 if attempt else -1]:
            box.put(akamai_event(n))
        box.close()
        defs = dg.Definitions(assets=stand_in_defs.assets, sensors=stand_in_defs.sensors,
                              resources={"inbox": InboxResource(path=str(path))})
        keys.append(evaluate(defs).run_requests[0].run_key)
    assert keys[0] == keys[1] and keys[0].startswith("inbox-")


def test_events_already_handed_on_are_not_requested_again(inbox: Inbox, stand_in_defs, recorded_run_config) -> None:
    inbox.put(akamai_event(1))
    first = evaluate(stand_in_defs)
    assert len(first.run_requests) == 1
    again = evaluate(stand_in_defs, cursor="0")  # even with a lost cursor
    assert again.run_requests == []
    inbox.put(akamai_event(2))
    later = evaluate(stand_in_defs, cursor=first.cursor)
    [request] = later.run_requests
    assert request.run_config["ops"]["raw_akamai_users"]["config"]["identity_ids"] == ["uuid-2"]
    assert request.run_key != first.run_requests[0].run_key


def test_events_that_name_no_identity_are_consumed_without_a_run(inbox: Inbox, stand_in_defs) -> None:
    inbox.put(b2c_event(1, contact_id=None, object_id=None))
    result = evaluate(stand_in_defs)
    assert result.run_requests == [] and result.skip_message
    assert inbox.pending() == [] and result.cursor == "1"


def test_run_keys_do_not_depend_on_event_order() -> None:
    assert realtime.run_key_for("inbox", ["b", "a"]) == realtime.run_key_for("inbox", ["a", "b", "a"])
    assert realtime.run_key_for("inbox", ["a"]) != realtime.run_key_for("inbox", ["b"])


def test_run_config_fragments_merge_deeply() -> None:
    left = {"ops": {"a": {"config": {"x": 1}}}}
    right = {"ops": {"a": {"config": {"y": 2}}, "b": {"config": {}}}}
    assert realtime.deep_merge(left, right) == {"ops": {"a": {"config": {"x": 1, "y": 2}}, "b": {"config": {}}}}


def test_while_a_targeted_run_waits_to_start_new_events_wait_for_the_next_run(
        inbox: Inbox, stand_in_defs, recorded_run_config) -> None:
    inbox.put(akamai_event(1))
    with dg.instance_for_test() as instance:
        instance.add_run(dg.DagsterRun(job_name="full_sync", run_id="a" * 32, status=dg.DagsterRunStatus.NOT_STARTED,
                                       tags={"idlink/trigger": "inbox"}))
        waiting = realtime.inbox_sensor.evaluate_tick(
            dg.build_sensor_context(cursor="0", definitions=stand_in_defs, instance=instance,
                                   resources=stand_in_defs.resources))
        assert waiting.run_requests == [] and "waiting to start" in waiting.skip_message
        assert waiting.cursor in (None, "0") and len(inbox.pending()) == 1  # nothing consumed

        instance.report_run_canceled(instance.get_run_by_id("a" * 32))  # no longer waiting
        [request] = realtime.inbox_sensor.evaluate_tick(
            dg.build_sensor_context(cursor="0", definitions=stand_in_defs, instance=instance,
                                   resources=stand_in_defs.resources)).run_requests
    assert request.run_config["ops"]["raw_akamai_users"]["config"]["identity_ids"] == ["uuid-1"]
