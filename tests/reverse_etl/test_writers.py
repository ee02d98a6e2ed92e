"""How each writer judges the remote system's answers, record by record (canned answers, no network)."""
from __future__ import annotations

import orjson
import pytest
import requests

from clients.http import ApiError, RequestLimitExceeded
from reverse_etl.attribute_writer import SET_ATTRIBUTE
from reverse_etl.b2c_writer import B2CWriter
from reverse_etl.salesforce_writer import (
    CREATE_CONTACT,
    SET_EXTERNAL_ID,
    BulkJob,
    SalesforceWriter,
    ValidationPolicy,
    bulk_error,
)
from reverse_etl.state import SyncRecord
from settings import GraphSettings, SalesforceSettings

GRAPH = GraphSettings(tenant_id="t", client_id="c", client_secret="s", extensions_app_id="app", retry_max_s=30)
SALESFORCE = SalesforceSettings(client_id="c", client_secret="s")


class FakeGraph:
    def __init__(self, *rounds):
        self.settings = GRAPH
        self.rounds = list(rounds)  # each: {user id: (status, headers)}
        self.sent: list[list[str]] = []

    def batch(self, sub_requests):
        answers = self.rounds.pop(0)
        if isinstance(answers, Exception):
            raise answers
        users = [r["url"].rsplit("/", 1)[1] for r in sub_requests]
        self.sent.append(users)
        return [{"id": r["id"], "status": answers[u][0], "headers": answers[u][1],
                 "body": {"error": {"code": "Code", "message": "m"}} if answers[u][0] >= 400 else None}
                for r, u in zip(sub_requests, users)]


def user_records(*users):
    return [SyncRecord(f"{u}:CrmContactId", SET_ATTRIBUTE, {"extension_app_CrmContactId": "003"}, target=u)
            for u in users]


def test_b2c_resends_only_throttled_sub_requests_after_the_pause_the_server_asks_for():
    graph = FakeGraph({"u1": (204, {}), "u2": (429, {"Retry-After": "2"})}, {"u2": (204, {})})
    pauses = []
    outcomes = B2CWriter(graph, sleep=pauses.append).send(user_records("u1", "u2"))
    assert [o.ok for o in outcomes] == [True, True]
    assert graph.sent == [["u1", "u2"], ["u2"]] and pauses == [2.0]


def test_b2c_leaves_throttled_records_pending_when_the_time_budget_is_spent():
    graph = FakeGraph({"u1": (503, {"Retry-After": "60"})})
    (outcome,) = B2CWriter(graph, retry_budget_s=5, sleep=lambda s: None).send(user_records("u1"))
    assert not outcome.ok and not outcome.permanent and outcome.error_code == "Code"


def test_b2c_dead_letters_a_missing_user_at_once_and_treats_a_bad_request_as_permanent():
    graph = FakeGraph({"gone": (404, {}), "bad": (400, {})})
    gone, bad = B2CWriter(graph).send(user_records("gone", "bad"))
    assert gone.give_up and gone.error_code == "Code"
    assert bad.permanent and not bad.give_up


def test_b2c_keeps_a_batch_pending_when_the_connection_breaks():
    graph = FakeGraph(requests.exceptions.ChunkedEncodingError("cut"))
    (outcome,) = B2CWriter(graph).send(user_records("u1"))
    assert not outcome.ok and not outcome.permanent and outcome.error_code == "ChunkedEncodingError"


def test_b2c_batches_hold_at_most_twenty_users():
    sizes = [len(b) for b in B2CWriter(FakeGraph()).batches(user_records(*[f"u{i}" for i in range(45)]))]
    assert sizes == [20, 20, 5]


class FakeSalesforce:
    def __init__(self, *answers):
        self.settings = SALESFORCE
        self.answers = list(answers)
        self.calls: list[tuple[str, str, dict]] = []

    def request(self, method, path, **kw):
        self.calls.append((method, path, kw))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else orjson.dumps(body)
        return response


def contact(n: int) -> SyncRecord:
    return SyncRecord(f"b2c:id-{n}", CREATE_CONTACT, {"External_User_Id__c": f"id-{n}", "LastName": f"L{n}",
                                                        "Phone": None})


def test_collection_upsert_judges_each_record_by_its_position_in_the_answer():
    sf = FakeSalesforce((200, [
        {"id": "003A", "success": True, "created": True, "errors": []},
        {"success": False, "errors": [{"statusCode": "INVALID_EMAIL_ADDRESS", "message": "bad", "fields": []}]},
        {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "busy", "fields": []}]},
    ]))
    ok, invalid, locked = SalesforceWriter(sf).send([contact(1), contact(2), contact(3)])
    assert ok.ok and ok.remote_id == "003A"
    assert invalid.give_up and invalid.error_code == "INVALID_EMAIL_ADDRESS"
    assert not locked.ok and not locked.permanent
    method, path, kw = sf.calls[0]
    body = orjson.loads(kw["data"])
    assert (method, path, body["allOrNone"]) == ("PATCH", "composite/sobjects/Contact/External_User_Id__c", False)
    assert "Phone" not in body["records"][0]  # an upsert never blanks a field


def test_setting_an_external_id_updates_the_contact_by_id_and_a_deleted_contact_is_given_up():
    record = SyncRecord("003X:External_User_Id__c", SET_EXTERNAL_ID, {"External_User_Id__c": "id-1"}, target="003X")
    sf = FakeSalesforce((200, [{"success": False, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "x"}]}]))
    (outcome,) = SalesforceWriter(sf).send([record])
    assert outcome.give_up
    method, path, kw = sf.calls[0]
    assert (method, path) == ("PATCH", "composite/sobjects")
    assert orjson.loads(kw["data"])["records"][0]["Id"] == "003X"


def test_a_request_that_fails_for_good_leaves_its_records_pending_and_the_limit_propagates():
    sf = FakeSalesforce(ApiError("down", status=503, retryable=True),
                        RequestLimitExceeded("limit", status=403, code="REQUEST_LIMIT_EXCEEDED"))
    writer = SalesforceWriter(sf)
    (outcome,) = writer.send([contact(1)])
    assert not outcome.ok and not outcome.permanent
    with pytest.raises(RequestLimitExceeded):
        writer.send([contact(1)])


def test_above_the_threshold_records_go_as_one_bulk_job_and_failed_rows_keep_their_error_code():
    records = [contact(n) for n in range(3)]
    success = b'"sf__Id","sf__Created","External_User_Id__c","LastName","Phone"\n"003A","true","id-0","L0",""\n'
    failed = (b'"sf__Id","sf__Error","External_User_Id__c","LastName","Phone"\n'
              b'"","STRING_TOO_LONG:Last Name: data value too large:LastName","id-1","L1",""\n')
    sf = FakeSalesforce((200, {"id": "750J"}), (201, b""), (200, {"state": "UploadComplete"}),
                        (200, {"state": "JobComplete"}), (200, success), (200, failed))
    writer = SalesforceWriter(sf, bulk_threshold=2, sleep=lambda s: None)
    (batch,) = writer.batches(records)
    assert isinstance(batch, BulkJob)
    ok, too_long, unreported = writer.send(batch)
    assert ok.ok and ok.remote_id == "003A"
    assert too_long.permanent and too_long.error_code == "STRING_TOO_LONG"
    assert not unreported.ok and unreported.error_code == "BULK_UNPROCESSED" and not unreported.permanent
    job = orjson.loads(sf.calls[0][2]["data"])
    assert (job["operation"], job["externalIdFieldName"]) == ("upsert", "External_User_Id__c")
    assert sf.calls[1][2]["data"].decode().splitlines()[0] == "External_User_Id__c,LastName,Phone"


def test_a_bulk_job_that_fails_as_a_whole_leaves_every_record_pending():
    sf = FakeSalesforce((200, {"id": "750J"}), (201, b""), (200, {"state": "UploadComplete"}),
                        (200, {"state": "Failed", "errorMessage": "InvalidBatch : unknown column"}))
    outcomes = SalesforceWriter(sf, bulk_threshold=1, sleep=lambda s: None).send(BulkJob([contact(1), contact(2)]))
    assert {(o.ok, o.permanent, o.error_code) for o in outcomes} == {(False, False, "BULK_JOB_FAILED")}


def refusal(code: str, *fields: str, message: str = "refused") -> dict:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": list(fields)}]}


def test_a_new_contact_refused_for_optional_fields_is_upserted_again_without_each_of_them():
    record = SyncRecord("b2c:id-1", CREATE_CONTACT, {"External_User_Id__c": "id-1", "LastName": "Lee",
                                                       "Email": "zoë@x.org", "Phone": "+1 bad"})
    sf = FakeSalesforce((200, [refusal("INVALID_EMAIL_ADDRESS", "Email")]),
                        (200, [refusal("INVALID_TYPE_ON_FIELD_IN_RECORD", "Phone")]),
                        (200, [{"id": "003A", "success": True, "created": True, "errors": []}]))
    (outcome,) = SalesforceWriter(sf).send([record])
    assert outcome.ok and outcome.remote_id == "003A"
    assert (outcome.dropped_fields, outcome.error_code) == (("Email", "Phone"), "INVALID_EMAIL_ADDRESS")
    sent = [set(orjson.loads(kw["data"])["records"][0]) - {"attributes"} for _, _, kw in sf.calls]
    assert sent == [{"External_User_Id__c", "LastName", "Email", "Phone"}, {"External_User_Id__c", "LastName", "Phone"},
                    {"External_User_Id__c", "LastName"}]


def test_a_refused_required_field_or_external_id_is_given_up_without_a_second_request():
    sf = FakeSalesforce((200, [refusal("STRING_TOO_LONG", "LastName"), refusal("STRING_TOO_LONG", "External_User_Id__c"),
                               refusal("FIELD_CUSTOM_VALIDATION_EXCEPTION")]))
    outcomes = SalesforceWriter(sf).send([contact(1), contact(2), contact(3)])
    assert [(o.give_up, o.fields) for o in outcomes] == [
        (True, ("LastName",)), (True, ("External_User_Id__c",)), (True, ())]
    assert len(sf.calls) == 1


def test_under_the_dead_letter_policy_nothing_is_sent_again():
    sf = FakeSalesforce((200, [refusal("INVALID_EMAIL_ADDRESS", "Phone")]))
    (outcome,) = SalesforceWriter(sf, validation_policy=ValidationPolicy.DEAD_LETTER).send([contact(1)])
    assert outcome.give_up and len(sf.calls) == 1


def test_a_bulk_error_yields_its_code_and_only_field_names_the_record_carried():
    fields = ("External_User_Id__c", "LastName", "Email")
    assert bulk_error("INVALID_EMAIL_ADDRESS:Email: invalid email address: a:b@c:Email", fields) == (
        "INVALID_EMAIL_ADDRESS", ("Email",))
    assert bulk_error("STRING_TOO_LONG:Last Name: data value too large: Lee (max length=80):lastname", fields) == (
        "STRING_TOO_LONG", ("LastName",))
    assert bulk_error("FIELD_CUSTOM_VALIDATION_EXCEPTION:Refused: Smith", fields) == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION", ())
