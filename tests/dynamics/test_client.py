"""The Dataverse client's pieces that need no server: key segments, $batch bodies and answers, metadata,
and the request gate that keeps service protection limits."""
from __future__ import annotations

import pytest

from clients.dataverse import (
    BatchRequest,
    EntityMetadata,
    batch_body,
    guid_in,
    is_deleted_entry,
    key_segment,
    parse_batch_response,
)
from clients.throttle import RequestGate
from settings import SettingsError, load_settings

GUID = "60c4e274-0d87-e711-80e5-00155db19e6d"


def test_an_alternate_key_value_is_quoted_and_percent_encoded_inside_its_segment():
    assert key_segment("contacts", "idlink_identityid", "u-1") == "contacts(idlink_identityid='u-1')"
    segment = key_segment("contacts", "idlink_identityid", "o'brien/../x?y#z")
    assert segment == "contacts(idlink_identityid='o''brien%2F..%2Fx%3Fy%23z')"
    assert key_segment("contacts", record_id=GUID) == f"contacts({GUID})"
    with pytest.raises(ValueError):
        key_segment("contacts", record_id="../accounts(1)")


def test_settings_want_https_and_batches_of_at_most_1000():
    base = {"DATAVERSE_URL": "https://org.crm.dynamics.com", "DATAVERSE_TENANT_ID": "t",
            "DATAVERSE_CLIENT_ID": "c", "DATAVERSE_CLIENT_SECRET": "s3cr3t"}
    settings = load_settings(base).dynamics
    assert (settings.batch_size, settings.page_size) == (1000, 5000) and "s3cr3t" not in repr(settings)
    for name, value in (("DATAVERSE_URL", "http://org.crm.dynamics.com"), ("DATAVERSE_BATCH_SIZE", "1001"),
                        ("DATAVERSE_AUTHORITY_HOST", "http://login.example")):
        with pytest.raises(SettingsError, match=name):
            load_settings({**base, name: value})


def test_each_request_of_a_batch_is_a_change_set_of_its_own():
    body = batch_body("https://org/api/data/v9.2", [
        BatchRequest("PATCH", "contacts(idlink_identityid='a')", {"lastname": "A"}, {"If-None-Match": "*"}),
        BatchRequest("PATCH", f"contacts({GUID})", {"idlink_identityid": None}, {"If-Match": "*"}),
    ], "batch_x").decode()
    assert body.count("Content-Type: multipart/mixed; boundary=changeset_") == 2
    assert "Content-ID: 1" in body and "Content-ID: 2" in body
    assert "PATCH https://org/api/data/v9.2/contacts(idlink_identityid='a') HTTP/1.1\r\n" in body
    assert "If-None-Match: *" in body and "If-Match: *" in body and body.endswith("--batch_x--\r\n")


def test_a_batch_answer_is_read_by_content_id_whether_a_change_set_succeeded_or_failed():
    answer = (
        "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
        "--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        "Content-ID: 1\r\n\r\nHTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\n"
        f"OData-EntityId: https://org/api/data/v9.2/contacts({GUID})\r\n\r\n\r\n--changesetresponse_2--\r\n"
        "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        "Content-ID: 2\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"
        '{"error":{"code":"0x80044331","message":"A validation error occurred."}}\r\n'
        "--batchresponse_1--\r\n").encode()
    (first_id, first), (second_id, second) = parse_batch_response("multipart/mixed; boundary=batchresponse_1",
                                                                   answer)
    assert (first_id, first.status, guid_in(first.headers["odata-entityid"])) == ("1", 204, GUID)
    assert (second_id, second.status, second.error()[0]) == ("2", 400, "0x80044331")


def test_metadata_names_the_alternate_key_made_of_one_column():
    metadata = EntityMetadata.from_definition({
        "LogicalName": "contact", "EntitySetName": "contacts", "PrimaryIdAttribute": "contactid",
        "ChangeTrackingEnabled": True, "Attributes": [{"LogicalName": "idlink_identityid"}],
        "Keys": [{"LogicalName": "both", "KeyAttributes": ["idlink_identityid", "emailaddress1"],
                  "EntityKeyIndexStatus": "Active"},
                 {"LogicalName": "pending", "KeyAttributes": ["idlink_identityid"], "EntityKeyIndexStatus": "Pending"},
                 {"LogicalName": "mine", "KeyAttributes": ["idlink_identityid"], "EntityKeyIndexStatus": "Active"}]})
    assert metadata.alternate_key_on("IDLINK_IDENTITYID") == "mine"
    assert metadata.alternate_key_on("emailaddress1") is None


def test_a_removed_record_of_a_delta_is_recognised():
    assert is_deleted_entry({"@odata.context": "https://org/api/data/v9.2/$metadata#contacts/$deletedEntity",
                             "id": GUID, "reason": "deleted"})
    assert not is_deleted_entry({"contactid": GUID})


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_gate_holds_requests_past_the_window_limit_until_the_oldest_leaves_the_window():
    time = FakeTime()
    gate = RequestGate(max_concurrent=4, max_requests=3, window_s=300, clock=time.clock, sleep=time.sleep)
    for _ in range(3):
        gate.acquire()
        gate.release()
    gate.acquire()
    assert time.now == 300 and gate.waited_s == 300


def test_a_429_pauses_every_request_for_its_retry_after():
    time = FakeTime()
    gate = RequestGate(max_concurrent=4, max_requests=100, window_s=300, clock=time.clock, sleep=time.sleep)
    gate.pause(7.5)
    gate.acquire()
    assert time.now == 7.5
